/**
 * `npm run experiment:eras`: the same guests on the two THP designs (host.kernel 2.6.38 and
 * 6.x, each with the KVM of its era) — docs/thp-eras.md's tables.
 *
 *   node --import tsx scripts/experiment-eras.ts [--jobs N] [--keep] [--no-stress] [--write-doc]
 *
 * 1. The sweep experiments/thp-eras.json (guests × host.kernel, plus mem-scan on an
 *    overcommitted host with swap) into build/thp-eras-results/ (the results database, as
 *    `hugevisor sweep` writes it): EPT violations, EPT leaves 4K/2M, THP splits, deferred
 *    splits, collapses, swap traffic — deterministic counts.
 * 2. A partial unmap, scripted on the host side (the guest ABI has no madvise): a guest
 *    fills 32 MiB of its RAM, then the VMM madvises MADV_DONTNEED the second half of every
 *    2 MiB range of guest RAM (as a balloon driver would), then the host reclaims under
 *    pressure. Host memory after each step (counts, deterministic).
 * 3. Dirty logging started between two passes of a guest: the KVM of each era.
 * 4. The reference-count path under concurrent splits with real threads (src/mm/stress):
 *    get_page/put_page on tails with compound_lock (2.6.38) vs folio references (6.x), in
 *    operations per second of wall time — the only figures here that vary between runs and
 *    machines (and with load).
 *
 * Prints the tables on stdout; --write-doc rewrites them between docs/thp-eras.md's
 * `eras-*` markers. test/experiment-eras.test.ts reruns part of it and checks the doc.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runSweep } from '../src/experiments/pool.ts';
import { expandSpec } from '../src/experiments/spec.ts';
import { openResults, selectPoints } from '../src/experiments/store.ts';
import { replaceBetweenMarkers } from '../src/experiments/doc-table.ts';
import { createVm } from '../src/kvm/vm.ts';
import type { EptMemoryBackend } from '../src/kvm/mmu/ept-memory.ts';
import { hva as asHva, HPAGE_PMD_SIZE, type Hva } from '../src/util/address.ts';
import { runCompoundLockStress } from '../src/mm/stress/compound-lock.ts';
import { countDirty } from '../src/kvm/mmu/dirty-log.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SPEC = join(ROOT, 'experiments', 'thp-eras.json');
export const DOC = join(ROOT, 'docs', 'thp-eras.md');
const KERNELS = ['2.6.38', '6.x'] as const;
type Kernel = (typeof KERNELS)[number];

type Row = Record<string, unknown>;
const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, any>;
const int = (v: unknown) => (v === null || v === undefined || Number.isNaN(Number(v)) ? '—' : Number(v).toLocaleString('en-US'));

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** A host vmstat counter of a stored point (0 when the kernel has no such counter). */
const vm = (r: Row, name: string) => Number(json(r.result).memory?.host?.[name] ?? 0);
/** ', sizes 64kB' when the point enables mTHP sizes other than 2 MiB (and 2 MiB is off: ', 2048kB never'). */
const mthpSizes = (c: Record<string, any>) => {
  const sizes = (c.host?.thp?.sizes ?? {}) as Record<string, string>;
  const on = Object.entries(sizes).filter(([size, mode]) => size !== '2048kB' && mode !== 'never').map(([size]) => size);
  return on.length ? `, mTHP ${on.join(' ')}${sizes['2048kB'] === 'never' ? ', 2048kB never' : ''}` : '';
};
/** Folios below 2 MiB faulted in (per-size stats anon_fault_alloc, 6.x); 0 under 2.6.38. */
const mthpFolios = (r: Row) =>
  Object.entries((json(r.result).memory?.mthp ?? {}) as Record<string, Record<string, number>>)
    .filter(([size]) => size !== '2048kB')
    .reduce((a, [, st]) => a + (st.anon_fault_alloc ?? 0), 0);
const eptStat = (r: Row, name: string) => Number(json(r.result).memory?.ept?.[name] ?? 0);

/** Run the sweep (only `guests` when given) into `outDir` and return its rows, spec order, kernel by kernel. */
export async function runEraPoints(outDir: string, opts: { guests?: readonly string[]; jobs?: number; log?: (s: string) => void } = {}): Promise<Row[]> {
  const sweep = expandSpec(SPEC);
  if (opts.guests) sweep.points = sweep.points.filter((p) => opts.guests!.includes(p.guest));
  const s = await runSweep(sweep, {
    outDir,
    jobs: opts.jobs ?? 2,
    events: opts.log ? { pointDone: (p, _o, done, n) => opts.log!(`[${done}/${n}] ${p.label}`) } : undefined,
  });
  if (s.failed.length) throw new Error(`points failed: ${s.failed.map((f) => `${f.point.label}: ${f.error.message}`).join('; ')}`);
  const order = new Map(sweep.points.map((p, i) => [p.key, i]));
  const db = openResults(outDir);
  try {
    return selectPoints(db)
      .filter((r) => order.has(String(r.key)))
      .sort((a, b) => order.get(String(a.key))! - order.get(String(b.key))!);
  } finally {
    db.close();
  }
}

/** The sweep's table: one row per point. */
export function sweepTable(rows: Row[]): string {
  const head = ['guest', 'host', 'KVM nx_huge_pages', 'swap', 'EPT violations', 'EPT leaves 4K / 2M', 'host faults (pgfault)', 'thp_fault_alloc', 'mTHP folios (anon_fault_alloc, < 2 MiB)', 'thp_split (2.6.38) / thp_split_page', 'thp_split_pmd', 'thp_deferred_split_page', 'thp_collapse_alloc', 'nx_lpage_splits', 'pswpout / pswpin', 'thp_swpout', 'simulated ms'];
  return table(
    head,
    rows.map((r) => {
      const c = json(r.config);
      return [
        `${r.guest} ${(json(r.result).args ?? c.args ?? []).join(' ')}`.trim(),
        String(c.host?.kernel) + mthpSizes(c),
        String(c.kvm?.nx_huge_pages ?? '—'),
        c.host?.swap?.bytes ? `${c.host.memory / 2 ** 20}M host + ${c.host.swap.bytes / 2 ** 20}M swap ${c.host.swap.type ?? 'file'}` : '—',
        int(r.ept_violations),
        `${int(r.ept_pages_4k)} / ${int(r.ept_pages_2m)}`,
        int(vm(r, 'pgfault')),
        int(vm(r, 'thp_fault_alloc')),
        int(mthpFolios(r)),
        int(vm(r, 'thp_split') + vm(r, 'thp_split_page')),
        int(vm(r, 'thp_split_pmd')),
        int(vm(r, 'thp_deferred_split_page')),
        int(vm(r, 'thp_collapse_alloc')),
        int(eptStat(r, 'nx_lpage_splits')),
        `${int(vm(r, 'pswpout'))} / ${int(vm(r, 'pswpin'))}`,
        int(vm(r, 'thp_swpout')),
        (Number(r.simulated_seconds) * 1e3).toFixed(3),
      ];
    }),
  );
}

/** Host memory after the guest filled 32 MiB, after the VMM dropped half of every 2 MiB range, after reclaim. */
export interface PartialUnmapRow {
  kernel: Kernel;
  step: string;
  AnonPages_kB: number;
  AnonHugePages_kB: number;
  MemFree_kB: number;
  thp_split: number;
  thp_split_pmd: number;
  thp_deferred_split_page: number;
  pages_4k: number;
  pages_2m: number;
}

/**
 * The partial unmap: mem-scan writes 32 MiB of a 64 MiB guest (host THP always); the VMM then
 * madvises MADV_DONTNEED the upper 1 MiB of each of the 16 2-MiB ranges it touched (host
 * side: the guest keeps running on the lower halves); then the host reclaims 4096 frames.
 */
export function partialUnmap(kernel: Kernel): PartialUnmapRow[] {
  const bytes = readFileSync(join(ROOT, 'build', 'guests', 'mem-scan.elf'));
  const v = createVm({ memory: 64 << 20, args: [32 << 20, 1], host: { kernel, memory: 128 << 20, thp: { enabled: 'always' }, clock: false } }, { bytes, name: 'mem-scan' });
  try {
    const backend = v.backend as EptMemoryBackend;
    const { host, mm, kvmMmu } = backend;
    const slot = kvmMmu.slots.byId(0);
    const out: PartialUnmapRow[] = [];
    const snap = (step: string) => {
      const m = host.meminfo();
      const s = host.vmstat();
      out.push({
        kernel,
        step,
        AnonPages_kB: m.AnonPages ?? 0,
        AnonHugePages_kB: m.AnonHugePages ?? 0,
        MemFree_kB: m.MemFree ?? 0,
        thp_split: (s.thp_split ?? 0) + (s.thp_split_page ?? 0),
        thp_split_pmd: s.thp_split_pmd ?? 0,
        thp_deferred_split_page: s.thp_deferred_split_page ?? 0,
        pages_4k: kvmMmu.pages_4k,
        pages_2m: kvmMmu.pages_2m,
      });
    };
    const r = v.run();
    if (r.stopReason !== 'exit') throw new Error(`mem-scan on ${kernel}: ${r.stopReason}`);
    snap('guest wrote 32 MiB');
    // mem-scan's region starts at the first 2 MiB boundary above its image; drop the upper
    // half of every huge range the host maps in guest RAM's first 48 MiB.
    for (let off = 0; off < 48 << 20; off += HPAGE_PMD_SIZE) {
      const h = (slot.hva + off) as Hva;
      const m = mm.follow_page(h);
      if (!m || !m.huge) continue;
      mm.madvise(asHva(h + HPAGE_PMD_SIZE / 2), HPAGE_PMD_SIZE / 2, 'MADV_DONTNEED');
    }
    snap('VMM dropped the upper 1 MiB of each huge range');
    host.reclaim(4096);
    snap('host reclaim(4096 frames)');
    return out;
  } finally {
    v.close();
  }
}

export function partialUnmapTable(rows: PartialUnmapRow[]): string {
  return table(
    ['host', 'step', 'AnonPages kB', 'AnonHugePages kB', 'MemFree kB', 'thp_split / thp_split_page', 'thp_split_pmd', 'thp_deferred_split_page', 'EPT 4K / 2M'],
    rows.map((r) => [r.kernel, r.step, int(r.AnonPages_kB), int(r.AnonHugePages_kB), int(r.MemFree_kB), int(r.thp_split), int(r.thp_split_pmd), int(r.thp_deferred_split_page), `${int(r.pages_4k)} / ${int(r.pages_2m)}`]),
  );
}

/** Dirty logging started between mem-scan's two passes over 32 MiB: what the second pass costs. */
export interface DirtyLogRow {
  kernel: Kernel;
  leavesBefore: string;
  leavesAfterEnable: string;
  split: number;
  zapped: number;
  exitsSecondPass: number;
  dirtyPages: number;
  leavesAfterDisable: string;
}

export function dirtyLogPass(kernel: Kernel): DirtyLogRow {
  const bytes = readFileSync(join(ROOT, 'build', 'guests', 'mem-scan.elf'));
  const config = { memory: 64 << 20, args: [32 << 20, 2], host: { kernel, thp: { enabled: 'always' as const }, clock: false } };
  // The first pass's instruction count: a run of one pass.
  const one = createVm({ ...config, args: [32 << 20, 1] }, { bytes, name: 'mem-scan' });
  const firstPass = one.run().counters.instructions;
  one.close();
  const v = createVm(config, { bytes, name: 'mem-scan' });
  try {
    const k = (v.backend as EptMemoryBackend).kvmMmu;
    const leaves = () => `${int(k.pages_4k)} / ${int(k.pages_2m)}`;
    v.run({ maxInstructions: firstPass - 64 }); // stop just before the exit sequence of a one-pass run
    const before = leaves();
    const zapped0 = k.stats.mmu_zapped_leaves;
    const exits0 = v.counters().exits_ept_violation;
    k.enableDirtyLog(0);
    const afterEnable = leaves();
    const zapped = k.stats.mmu_zapped_leaves - zapped0;
    const r = v.run();
    if (r.stopReason !== 'exit') throw new Error(`mem-scan on ${kernel}: ${r.stopReason}`);
    const dirty = countDirty(k.getDirtyLog(0));
    k.disableDirtyLog(0);
    return {
      kernel,
      leavesBefore: before,
      leavesAfterEnable: afterEnable,
      split: k.stats.kvm_mmu_split_huge_page,
      zapped,
      exitsSecondPass: r.counters.exits_ept_violation - exits0,
      dirtyPages: dirty,
      leavesAfterDisable: leaves(),
    };
  } finally {
    v.close();
  }
}

export function dirtyLogTable(rows: DirtyLogRow[]): string {
  return table(
    ['KVM', 'EPT 4K / 2M before', 'after enabling dirty logging', 'kvm_mmu_split_huge_page', 'leaves zapped at enable', 'EPT violations, second pass (reads)', 'dirty pages logged', 'EPT 4K / 2M after disabling'],
    rows.map((r) => [r.kernel, r.leavesBefore, r.leavesAfterEnable, int(r.split), int(r.zapped), int(r.exitsSecondPass), int(r.dirtyPages), r.leavesAfterDisable]),
  );
}

/** The reference-count path under concurrent splits: operations per wall second (varies run to run). */
export async function refcountStress(rounds: number): Promise<string> {
  const rows: string[][] = [];
  const runs = [
    ['2.6.38: get_page/put_page on tails, compound_lock', { compoundLock: true }],
    ['6.x: folio references (folio_get/folio_put on the head), no lock', { compoundLock: false, folio: true }],
  ] as const;
  for (const [label, o] of runs) {
    const r = await runCompoundLockStress({ ...o, rounds, workers: 1 });
    rows.push([label, int(r.operations), int(r.splits), `${int(r.lost)} / ${int(r.extra)}`, int(Math.round(r.operations / (r.ms / 1000)))]);
  }
  return table(['reference path', 'get/put operations', 'splits', 'lost / extra refs', 'operations per second'], rows);
}

async function main(argv: string[]): Promise<void> {
  const j = argv.indexOf('--jobs');
  const jobs = j >= 0 ? Number(argv[j + 1]) : 2;
  const out = join(ROOT, 'build', 'thp-eras-results');
  if (!argv.includes('--keep')) rmSync(out, { recursive: true, force: true });
  const log = (s: string) => process.stderr.write(s + '\n');
  const rows = await runEraPoints(out, { jobs, log });
  const sweep = sweepTable(rows);
  const partial = partialUnmapTable([...partialUnmap('2.6.38'), ...partialUnmap('6.x')]);
  const dirty = dirtyLogTable([dirtyLogPass('2.6.38'), dirtyLogPass('6.x')]);
  const stress = argv.includes('--no-stress') ? null : await refcountStress(20);
  process.stdout.write(`## The guests (${SPEC.slice(ROOT.length + 1)}; results database ${out.slice(ROOT.length + 1)})\n\n${sweep}\n\n## Partial unmap of guest RAM\n\n${partial}\n\n## Dirty logging between two passes\n\n${dirty}\n`);
  if (stress) process.stdout.write(`\n## Reference counts under concurrent splits (wall-clock rates: they vary)\n\n${stress}\n`);
  if (argv.includes('--write-doc')) {
    let text = readFileSync(DOC, 'utf8');
    text = replaceBetweenMarkers(text, 'eras-sweep', sweep + '\n');
    text = replaceBetweenMarkers(text, 'eras-partial-unmap', partial + '\n');
    text = replaceBetweenMarkers(text, 'eras-dirty-log', dirty + '\n');
    if (stress) text = replaceBetweenMarkers(text, 'eras-refcount', stress + '\n');
    writeFileSync(DOC, text);
    log(`experiment:eras: tables → ${DOC}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`experiment:eras: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
