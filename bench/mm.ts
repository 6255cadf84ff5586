/**
 * `npm run bench -- mm`: speed of the host memory model beside the real kernel.
 *
 *  - first-touch faults/s of the model, huge (thp_fault_alloc + clear_huge_page) and
 *    4 KiB (do_anonymous_page + clear_highpage), with the real zeroing of the native arena;
 *  - the host kernel's own first touch of the same size, MADV_HUGEPAGE vs MADV_NOHUGEPAGE,
 *    by a small C program compiled with gcc here (skipped when gcc is missing);
 *  - split_huge_page/s, collapse/s (khugepaged), gup + put_page pairs/s;
 *  - the compound_lock stress: operations, references lost/extra with the lock on and off.
 *
 * Each figure is the median of REPS runs (machines here are shared and noisy).
 * `--quick` shrinks sizes for a smoke run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHost, type HostConfig } from '../src/mm/index.ts';
import { runCompoundLockStress } from '../src/mm/stress/compound-lock.ts';
import { loadAddon } from '../src/native/addon.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE, type Hva } from '../src/util/address.ts';
import { figure } from './_figures.ts';

const quick = process.argv.includes('--quick');
const MiB = 1024 * 1024;
const TOUCH = (quick ? 64 : 256) * MiB;
const REPS = quick ? 1 : 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));

/** A host over a fresh native arena (lazily reserved, like the VMM's guest RAM). */
function newHost(bytes: number, thp: HostConfig['thp'], resident = false) {
  const arena = new (loadAddon().Arena)(bytes);
  if (resident) {
    // fault the arena in beforehand: what is left is the model's own cost (+ its zeroing)
    for (const c of arena.chunks) {
      const u = new Uint8Array(c);
      for (let o = 0; o < u.length; o += PAGE_SIZE) u[o] = 1;
    }
  }
  const host = createHost({ memoryBytes: bytes, physmem: arena, thp });
  // give the memory back at close instead of waiting for the GC to unmap the arena
  const close = () => {
    host.close();
    arena.discard(0, bytes);
  };
  return { host, close };
}

/** Faults/s of one first touch of TOUCH bytes, huge or 4 KiB, over a fresh or resident arena. */
function modelFirstTouch(huge: boolean, resident: boolean): number {
  const { host, close } = newHost(TOUCH + 64 * MiB, { enabled: huge ? 'always' : 'never' }, resident);
  const mm = host.newProcess();
  const a = mm.mmap(TOUCH, { alignHuge: true });
  const step = huge ? HPAGE_PMD_SIZE : PAGE_SIZE;
  const t0 = performance.now();
  for (let off = 0; off < TOUCH; off += step) mm.handle_mm_fault((a + off) as Hva, true);
  const s = (performance.now() - t0) / 1000;
  const v = host.vmstat();
  if (huge && v.thp_fault_alloc !== TOUCH / HPAGE_PMD_SIZE) throw new Error('bench: huge faults fell back');
  close();
  return TOUCH / step / s;
}

const C_SOURCE = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
/* first touch of N bytes of fresh anonymous memory, one write per 4 KiB */
int main(int argc, char **argv) {
  size_t n = strtoull(argv[1], 0, 10);
  int huge = atoi(argv[2]);
  size_t align = 2u << 20;
  char *raw = mmap(0, n + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return 1;
  char *p = (char *)(((unsigned long)raw + align - 1) & ~(align - 1));
  if (madvise(p, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) return 2;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (size_t o = 0; o < n; o += 4096) p[o] = 1;
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.0f\\n", (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec));
  return 0;
}
`;

/** Builds the C program; returns a function giving GB/s of one first touch, or null without gcc. */
function kernelFirstTouch(): { run: (huge: boolean) => number; cleanup: () => void } | null {
  const dir = mkdtempSync(join(tmpdir(), 'hugevisor-bench-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const src = join(dir, 'touch.c');
  const bin = join(dir, 'touch');
  writeFileSync(src, C_SOURCE);
  try {
    execFileSync('gcc', ['-O2', '-o', bin, src], { stdio: 'pipe' });
  } catch {
    cleanup();
    return null;
  }
  // bytes per ns = GB/s
  const run = (huge: boolean) => TOUCH / Number(execFileSync(bin, [String(TOUCH), huge ? '1' : '0']).toString());
  return { run, cleanup };
}

function splitAndCollapse(): { splitsPerSec: number; collapsesPerSec: number } {
  const n = (quick ? 16 : 128) * HPAGE_PMD_SIZE;
  const splits: number[] = [];
  const collapses: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const { host, close } = newHost(2 * n + 64 * MiB, { khugepaged: { pages_to_scan: 1 << 30 } });
    const mm = host.newProcess();
    const a = mm.mmap(n, { alignHuge: true });
    for (let off = 0; off < n; off += HPAGE_PMD_SIZE) mm.handle_mm_fault((a + off) as Hva, true);
    const heads = [];
    for (let off = 0; off < n; off += HPAGE_PMD_SIZE) heads.push(mm.follow_page((a + off) as Hva)!.pfn);
    let t0 = performance.now();
    for (const h of heads) host.split_huge_page(h);
    splits.push(heads.length / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    host.khugepaged_scan();
    const made = host.khugepagedStats().pages_collapsed;
    if (made !== heads.length) throw new Error(`bench: collapsed ${made} of ${heads.length}`);
    collapses.push(made / ((performance.now() - t0) / 1000));
    close();
  }
  return { splitsPerSec: median(splits), collapsesPerSec: median(collapses) };
}

function gupPairs(huge: boolean): number {
  const rates: number[] = [];
  const N = quick ? 100_000 : 1_000_000;
  for (let r = 0; r < REPS; r++) {
    const { host, close } = newHost(64 * MiB, { enabled: huge ? 'always' : 'never' });
    const mm = host.newProcess();
    const a = mm.mmap(HPAGE_PMD_SIZE, { alignHuge: true });
    mm.writeBytes(a, new Uint8Array(HPAGE_PMD_SIZE));
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const [p] = mm.get_user_pages((a + ((i * 7) & 511) * PAGE_SIZE) as Hva, 1, true);
      host.put_page(p);
    }
    rates.push(N / ((performance.now() - t0) / 1000));
    close();
  }
  return median(rates);
}

// Side by side: every rep runs the kernel and each model variant back to back.
const kernel = kernelFirstTouch();
const runs: Record<string, number[]> = { kh: [], ks: [], mhf: [], mhr: [], msf: [], msr: [] };
kernel?.run(true); // warm-up: the first touch of memory new to this machine is much slower
for (let r = 0; r < REPS; r++) {
  if (kernel) {
    runs.kh.push(kernel.run(true));
    runs.ks.push(kernel.run(false));
  }
  runs.mhf.push(modelFirstTouch(true, false));
  runs.mhr.push(modelFirstTouch(true, true));
  runs.msf.push(modelFirstTouch(false, false));
  runs.msr.push(modelFirstTouch(false, true));
}
kernel?.cleanup();
const H = HPAGE_PMD_SIZE / 1e9;
const S = PAGE_SIZE / 1e9;
const line = (what: string, faults: number, size: number, vs?: number) => {
  console.log(`  ${what}: ${fmt(faults)} faults/s = ${fmt(faults * size)} GB/s${vs ? `  (${((faults * size) / vs).toFixed(2)}× the kernel)` : ''}`);
  figure(`first touch, ${what.trim()}`, faults, 'faults/s', 'higher');
};
console.log(`first touch of ${TOUCH / MiB} MiB, one write per 4 KiB (median of ${REPS})`);
const kh = kernel ? median(runs.kh) : undefined;
const ks = kernel ? median(runs.ks) : undefined;
if (kh && ks) {
  line('kernel MADV_HUGEPAGE  ', kh / H, H);
  line('kernel MADV_NOHUGEPAGE', ks / S, S);
} else console.log('  kernel: skipped (gcc not available)');
line('model THP, fresh arena    ', median(runs.mhf), H, kh);
line('model THP, arena resident ', median(runs.mhr), H, kh);
line('model 4 KiB, fresh arena  ', median(runs.msf), S, ks);
line('model 4 KiB, arena resident', median(runs.msr), S, ks);
console.log('  (fresh arena: the host kernel also faults the arena in under the model\'s zeroing;');
console.log('   resident: the model\'s own work — fault path, struct page, clear_huge_page)');

const sc = splitAndCollapse();
figure('split_huge_page', sc.splitsPerSec, '/s', 'higher');
figure('collapse (khugepaged)', sc.collapsesPerSec, '/s', 'higher');
console.log(`split_huge_page: ${fmt(sc.splitsPerSec)}/s   collapse (khugepaged): ${fmt(sc.collapsesPerSec)}/s`);
console.log(`gup + put_page pairs: ${fmt(gupPairs(true))}/s on THP tails, ${fmt(gupPairs(false))}/s on 4 KiB pages`);

const ms = quick ? 1000 : 3000;
for (const lock of [true, false]) {
  const r = await runCompoundLockStress({ compoundLock: lock, durationMs: ms, minCrossings: lock ? 0 : 100 });
  console.log(
    `compound_lock ${lock ? 'on ' : 'off'}: ${fmt(r.operations)} get_page/put_page in ${(r.ms / 1000).toFixed(1)} s ` +
      `(${fmt(r.operations / (r.ms / 1000))}/s), ${r.splits} splits racing them, ${r.crossings} chased crossings: ` +
      `references lost ${r.lost}, extra ${r.extra}, BUG_ONs ${r.bugs}`,
  );
}
{
  // 6.x: the same gup users and splits on folio references (no compound_lock; the split freezes the refcount)
  const r = await runCompoundLockStress({ compoundLock: false, folio: true, durationMs: ms });
  console.log(
    `folio (6.x)     : ${fmt(r.operations)} get_page/put_page in ${(r.ms / 1000).toFixed(1)} s ` +
      `(${fmt(r.operations / (r.ms / 1000))}/s), ${r.splits} splits racing them: ` +
      `references lost ${r.lost}, extra ${r.extra}, BUG_ONs ${r.bugs}`,
  );
}
