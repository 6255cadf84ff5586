/**
 * Swap (src/mm/swap.ts): the swap file, swap-out and swap-in (major faults) with the bytes
 * intact, swap entries across fork and zap, the swap cache, and cleanup of the file.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHost, type MmStructApi } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE, type Hva } from '../src/util/address.ts';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function pattern(bytes: number, seed: number): Uint8Array {
  const d = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    d[i] = x;
    d[i + 1] = x >>> 8;
    d[i + 2] = x >>> 16;
    d[i + 3] = x >>> 24;
  }
  return d;
}

function hostWithThp(memMiB = 16, swapMiB = 8) {
  const host = createHost({ memoryBytes: memMiB * MiB, swap: { bytes: swapMiB * MiB }, debugChecks: true });
  const mm = host.newProcess();
  const a = mm.mmap(HPAGE_PMD_SIZE, { alignHuge: true });
  const data = pattern(HPAGE_PMD_SIZE, 7);
  mm.writeBytes(a, data);
  return { host, mm, a, data };
}

test('swap-out of a THP splits it first: thp_split +1, pswpout 512, the frames freed', (t) => {
  const { host, mm, a } = hostWithThp();
  t.true(mm.follow_page(a)!.huge);
  const free0 = host.vmstat().nr_free_pages;
  t.is(host.reclaim(512), 512);
  const v = host.vmstat();
  t.is(v.thp_split, 1);
  t.is(v.pswpout, 512);
  t.is(v.nr_free_pages, free0 + 512);
  t.is(v.nr_anon_transparent_hugepages, 0);
  t.is(v.nr_anon_pages, 0);
  t.is(mm.follow_page(a), null);
  t.is(host.meminfo().SwapFree, host.meminfo().SwapTotal - 512 * 4);
  host.close();
});

test('swap-in is a major fault per page: pgmajfault and pswpin 512, the bytes read back intact', (t) => {
  const { host, mm, a, data } = hostWithThp();
  host.reclaim(512);
  const before = host.vmstat();
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(data));
  const v = host.vmstat();
  t.is(v.pgmajfault - before.pgmajfault, 512);
  t.is(v.pswpin, 512);
  t.is(v.nr_anon_pages, 512);
  t.is(host.meminfo().SwapFree, host.meminfo().SwapTotal); // slots freed once read back
  host.close();
});

test('data intact through split, collapse, swap-out and swap-in', (t) => {
  const { host, mm, a, data } = hostWithThp(16, 8);
  host.split_huge_page(mm.follow_page(a)!.pfn);
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(data));
  host.khugepaged_scan();
  t.true(mm.follow_page(a)!.huge);
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(data));
  t.is(host.reclaim(512), 512);
  const more = pattern(PAGE_SIZE, 99);
  mm.writeBytes((a + 3 * PAGE_SIZE) as Hva, more); // a write fault on a swapped page
  const expect = data.slice();
  expect.set(more, 3 * PAGE_SIZE);
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(expect));
  // Read faults map swapped-in pages read-only (do_swap_page only makes a write fault's
  // PTE writable), and khugepaged wants every PTE writable:
  host.khugepaged_scan();
  t.false(mm.follow_page(a)!.huge);
  mm.writeBytes(a, expect); // write faults reuse the pages: writable again
  host.khugepaged_scan(); // back to a THP after swap-in
  t.true(mm.follow_page(a)!.huge);
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(expect));
  const v = host.vmstat();
  t.is(v.thp_split, 2);
  t.is(v.thp_collapse_alloc, 2); // the refused scan never allocated
  t.is(v.pswpout, 512);
  t.is(v.pswpin, 512);
  host.close();
});

test('swap-out tells secondary MMUs about every unmapped page', (t) => {
  const { host, mm, a } = hostWithThp();
  const ranges: string[] = [];
  mm.mmu_notifier_register({
    invalidate_range_start: (_m, s, e) => ranges.push(`${(s - a) / PAGE_SIZE}+${(e - s) / PAGE_SIZE}`),
    invalidate_range_end: () => {},
  });
  host.reclaim(512);
  // split pass 1 (the whole PMD), then one 4 KiB invalidation per swapped page
  t.is(ranges.length, 1 + 512);
  t.is(ranges[0], '0+512');
  t.is(ranges[1], '0+1');
  t.is(ranges[512], '511+1');
  host.close();
});

test('the swap file is a real file of the configured size while the host lives and is removed on close', (t) => {
  const { host, mm, a, data } = hostWithThp(16, 4);
  const si = (host as Host).swap.device!;
  t.true(existsSync(si.path));
  t.is(statSync(si.path).size, 4 * MiB);
  host.reclaim(512);
  // the page at slot 1 holds the first swapped page's bytes; slot 0 is the header
  const file = readFileSync(si.path);
  t.is(file.subarray(PAGE_SIZE - 10, PAGE_SIZE).toString('latin1'), 'SWAPSPACE2');
  t.is(sha(file.subarray(PAGE_SIZE, 2 * PAGE_SIZE)), sha(data.subarray(0, PAGE_SIZE)));
  t.is(host.meminfo().SwapTotal, 4 * 1024 - 4);
  void mm;
  void a;
  host.close();
  t.false(existsSync(si.path));
});

test('a configured swap path is used, and one that already exists is refused with EIO', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-swap-test-'));
  try {
    const path = join(dir, 'swap0');
    const host = createHost({ memoryBytes: 8 * MiB, swap: { bytes: MiB, path } });
    t.true(existsSync(path));
    t.throws(() => createHost({ memoryBytes: 8 * MiB, swap: { bytes: MiB, path } }), { code: 'EIO', message: /already exists/ });
    host.close();
    t.false(existsSync(path));
    writeFileSync(path, 'keep me');
    t.throws(() => createHost({ memoryBytes: 8 * MiB, swap: { bytes: MiB, path } }), { code: 'EIO' });
    t.is(readFileSync(path, 'utf8'), 'keep me');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad swap size is a ConfigError naming the field', (t) => {
  t.throws(() => createHost({ memoryBytes: 8 * MiB, swap: { bytes: 12345 } }), {
    code: 'EINVAL_CONFIG',
    message: 'host.swap.bytes: expected 0 (no swap) or a multiple of 4096 from 8192 (header + one slot) up to 8 TiB, got 12345',
  });
});

test('fork shares swapped pages: both processes read the same bytes; the slots are freed when both are gone', (t) => {
  const { host, mm, a, data } = hostWithThp(16, 8);
  const child: MmStructApi = mm.fork();
  t.is(host.reclaim(512), 512); // each page unmapped from both mms
  const total = host.meminfo().SwapTotal;
  t.is(host.meminfo().SwapFree, total - 512 * 4);
  t.is(sha(child.readBytes(a, HPAGE_PMD_SIZE)), sha(data));
  t.is(host.vmstat().pswpin, 512);
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(data)); // from the swap cache: no more reads
  t.is(host.vmstat().pswpin, 512);
  t.is(host.meminfo().SwapFree, total);
  child.writeBytes(a, new Uint8Array([1, 2, 3])); // copy-on-write: the parent keeps its bytes
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(data));
  child.exit_mmap();
  host.close(); // debugChecks: every frame free
  t.pass();
});

test('a swapped page is released by munmap without reading it back', (t) => {
  const { host, mm, a } = hostWithThp();
  host.reclaim(512);
  mm.munmap(a, HPAGE_PMD_SIZE);
  t.is(host.vmstat().pswpin, 0);
  t.is(host.meminfo().SwapFree, host.meminfo().SwapTotal);
  host.close();
  t.pass();
});

test('a host never closed leaves no swap file once its process exits', (t) => {
  const script = `
    import { createHost } from ${JSON.stringify(new URL('../src/mm/index.ts', import.meta.url).href)};
    const host = createHost({ memoryBytes: 4 * 1024 * 1024, swap: { bytes: 1024 * 1024 } });
    console.log(host.swap.device.path);
  `;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const path = r.stdout.trim();
  t.regex(path, /hugevisor-swap-.*swapfile$/);
  t.false(existsSync(path));
});
