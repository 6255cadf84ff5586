/**
 * The compound_lock race made real: gup users in worker threads
 * release pins on tail pages with put_page while this thread runs
 * __split_huge_page_refcount on the same compound pages, all on one shared struct page
 * array with Atomics. With compound_lock every reference is accounted for; without it
 * (refops.ts NO_COMPOUND_LOCK) put_compound_page's re-check of PageTail and its
 * decrements race with the split and references are lost or gained.
 *
 * Each round: prep_compound_page on `compound` THPs (head _count 1 for the PMD mapping,
 * _mapcount 0); every worker pins every tail `pinsPerTail` times; then, compound page by
 * compound page, the workers release their pins while this thread splits it. At the end
 * of a round every frame is a single page mapped once: _count must be exactly 1.
 *
 * `folio: true` runs the same rounds on the 6.x host's folio references (refops.ts
 * bindFolioRefOps): tails hold no counts, get_page/put_page touch only the folio's one
 * refcount, and the split freezes it — so the comparison with compound_lock is of
 * operations per second with both correct.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HPAGE_PMD_NR, pfn, type Pfn } from '../../util/address.ts';
import { ConfigError } from '../../util/errors.ts';
import { PG_anon, PG_head, PG_lru, PG_swapbacked, PG_tail, PG_uptodate, PageArray } from '../page.ts';
import { ENTIRELY_MAPPED } from '../folio.ts';
import { bindFolioRefOps, bindRefOps } from './refops.ts';
import { CTL, PMD_HUGE, PMD_SPLIT, PMD_SPLITTING, ctlWords, type StressWorkerData } from './shared.ts';

export interface CompoundLockStressOptions {
  /** Take compound_lock in put_compound_page and the split (false: refops.ts NO_COMPOUND_LOCK). */
  compoundLock: boolean;
  /** 6.x folio references instead of 2.6.38's compound pages (compoundLock then ignored). */
  folio?: boolean;
  /** THPs split per round (default 16). */
  compound?: number;
  /**
   * gup users (worker threads). Default: one per spare CPU (at least 1); the splitter is
   * this thread, and the race needs the threads on CPU at the same time.
   */
  workers?: number;
  /** gup pins per worker per tail page per round (default 4). */
  pinsPerTail?: number;
  /** Fixed number of rounds (deterministic work), or... */
  rounds?: number;
  /** ...rounds until this much wall time has passed (benches). */
  durationMs?: number;
  /**
   * Keep going after `rounds`/`durationMs` until the chasing worker saw this many
   * crossings (the split's walk overtaking a release in progress): on a loaded machine
   * the two threads are not always on CPU together. Capped by maxMs.
   */
  minCrossings?: number;
  /**
   * Keep going until the audit found a reference lost or gained (the race without
   * compound_lock happened), however long the machine's load makes that take: a test of the
   * race then asserts what happened, not that it happened within some time. Capped by maxMs.
   */
  untilDamaged?: boolean;
  /** Hard cap on wall time for minCrossings / untilDamaged: a hang guard (default 20000). */
  maxMs?: number;
}

export interface CompoundLockStressResult {
  compoundLock: boolean;
  folio: boolean;
  rounds: number;
  splits: number;
  /** get_page + put_page calls performed by the gup users. */
  operations: number;
  /** Sum over frames of (expected − actual) _count where actual is lower. */
  lost: number;
  /** Sum over frames of (actual − expected) _count where actual is higher. */
  extra: number;
  /** Frames whose count reached zero (freed while still mapped). */
  freed: number;
  /** Chased releases the split's walk overtook mid-way (chances for the race). */
  crossings: number;
  /** BUG_ONs that fired on a corrupted count (in put_page or the split). */
  bugs: number;
  ms: number;
}

const bootstrap = new URL('./bootstrap.mjs', import.meta.url);
const workerModule = new URL('./gup-worker.ts', import.meta.url).href;

export async function runCompoundLockStress(opts: CompoundLockStressOptions): Promise<CompoundLockStressResult> {
  const compound = opts.compound ?? 16;
  const nWorkers = opts.workers ?? Math.max(1, availableParallelism() - 1);
  const pinsPerTail = opts.pinsPerTail ?? 4;
  for (const [k, v] of Object.entries({ compound, workers: nWorkers, pinsPerTail })) {
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`compound_lock stress: ${k} must be a positive integer, got ${v}`);
  }
  if (opts.rounds === undefined && opts.durationMs === undefined) {
    throw new ConfigError('compound_lock stress: give rounds or durationMs');
  }
  const nrFrames = compound * HPAGE_PMD_NR;
  const pages = new PageArray(nrFrames);
  const ctlSab = new SharedArrayBuffer(ctlWords(compound) * 4);
  const ctl = new Int32Array(ctlSab);
  let freedHere = 0;
  const folio = opts.folio ?? false;
  const onFree = () => {
    freedHere++;
  };
  const ops = folio ? bindFolioRefOps(pages, onFree) : bindRefOps(pages, opts.compoundLock, onFree);
  let bugsHere = 0;
  const split = (head: Pfn) => {
    try {
      ops.__split_huge_page_refcount(head);
    } catch {
      // a BUG_ON fired on a count the race corrupted (only ever without the lock)
      bugsHere++;
    }
  };

  const workers: Worker[] = [];
  const exited: Promise<void>[] = [];
  for (let w = 0; w < nWorkers; w++) {
    const data: StressWorkerData = {
      module: workerModule,
      pagesSab: pages.sab,
      nrFrames,
      ctlSab,
      compound,
      compoundLock: opts.compoundLock,
      folio,
      pinsPerTail,
      worker: w,
    };
    const worker = new Worker(bootstrap, { workerData: data });
    workers.push(worker);
    exited.push(
      new Promise((resolve, reject) => {
        worker.once('error', reject);
        worker.once('exit', () => resolve());
      }),
    );
  }

  const result: CompoundLockStressResult = {
    compoundLock: opts.compoundLock,
    folio,
    rounds: 0,
    splits: 0,
    operations: 0,
    lost: 0,
    extra: 0,
    freed: 0,
    bugs: 0,
    crossings: 0,
    ms: 0,
  };
  const t0 = performance.now();
  try {
    const maxMs = opts.maxMs ?? 20000;
    for (;;) {
      const elapsed = performance.now() - t0;
      const enough =
        (opts.rounds !== undefined && result.rounds >= opts.rounds) ||
        (opts.rounds === undefined && elapsed >= (opts.durationMs ?? 0));
      const crossed = Atomics.load(ctl, CTL.crossings) >= (opts.minCrossings ?? 0);
      const damaged = !opts.untilDamaged || result.lost + result.extra > 0;
      if (enough && ((crossed && damaged) || elapsed >= maxMs)) break;
      runRound(pages, ctl, compound, nWorkers, split, folio);
      result.rounds++;
      result.splits += compound;
      const { lost, extra } = audit(pages, nrFrames);
      result.lost += lost;
      result.extra += extra;
    }
  } finally {
    Atomics.store(ctl, CTL.quit, 1);
    Atomics.add(ctl, CTL.gen, 1);
    Atomics.notify(ctl, CTL.gen);
    await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 5000))]);
    for (const w of workers) await w.terminate();
  }
  result.ms = performance.now() - t0;
  result.operations = Atomics.load(ctl, CTL.opsHi) * 2 ** 30 + Atomics.load(ctl, CTL.opsLo);
  result.freed = Atomics.load(ctl, CTL.freed) + freedHere;
  result.crossings = Atomics.load(ctl, CTL.crossings);
  result.bugs = Atomics.load(ctl, CTL.bugs) + bugsHere;
  return result;
}

/**
 * prep_compound_page for THP c, mapped by one huge PMD (head _count 1, _mapcount 0); as a
 * 6.x folio the PMD is counted in _entire_mapcount / _large_mapcount instead.
 */
function prepCompound(pages: PageArray, c: number, folio: boolean): void {
  const head = c * HPAGE_PMD_NR;
  pages.flags[head] = PG_head | PG_anon | PG_lru | PG_uptodate | PG_swapbacked;
  pages._count[head] = 1;
  pages._mapcount[head] = 0;
  pages.private[head] = 9;
  pages.mapping[head] = 1;
  pages.index[head] = head;
  for (let i = 1; i < HPAGE_PMD_NR; i++) {
    pages.flags[head + i] = PG_tail | PG_anon | PG_uptodate | PG_swapbacked;
    pages._count[head + i] = 0;
    pages._mapcount[head + i] = -1;
    pages.private[head + i] = head;
    pages.mapping[head + i] = 0;
    pages.index[head + i] = 0;
  }
  if (folio) {
    pages._mapcount[head] = -1;
    pages.mapping[head + 1] = 0; // _entire_mapcount 1
    pages.index[head + 1] = 0; // _large_mapcount 1
    pages.mapping[head + 2] = ENTIRELY_MAPPED; // _nr_pages_mapped
  }
}

function runRound(
  pages: PageArray,
  ctl: Int32Array,
  compound: number,
  nWorkers: number,
  split: (head: Pfn) => void,
  folio: boolean,
): void {
  for (let c = 0; c < compound; c++) {
    prepCompound(pages, c, folio);
    Atomics.store(ctl, CTL.pmdBase + 3 * c, 0);
    Atomics.store(ctl, CTL.pmdBase + 3 * c + 1, PMD_HUGE);
    Atomics.store(ctl, CTL.pmdBase + 3 * c + 2, 0);
  }
  Atomics.store(ctl, CTL.pinned, 0);
  Atomics.store(ctl, CTL.released, 0);
  Atomics.store(ctl, CTL.go, -1);
  Atomics.add(ctl, CTL.gen, 1);
  Atomics.notify(ctl, CTL.gen);
  waitFor(ctl, CTL.pinned, nWorkers);

  for (let c = 0; c < compound; c++) {
    Atomics.store(ctl, CTL.go, c);
    // start the split as the releases start, so the two walks over the tails overlap
    while (Atomics.load(ctl, CTL.pmdBase + 3 * c + 2) < nWorkers) {
      /* spin */
    }
    // split_huge_page pass 1 (__split_huge_page_splitting): gup must now wait
    const ptl = CTL.pmdBase + 3 * c;
    while (Atomics.compareExchange(ctl, ptl, 0, 1) !== 0) {
      /* spin */
    }
    Atomics.store(ctl, ptl + 1, PMD_SPLITTING);
    Atomics.store(ctl, ptl, 0);
    split(pfn(c * HPAGE_PMD_NR));
    Atomics.store(ctl, ptl + 1, PMD_SPLIT);
  }
  waitFor(ctl, CTL.released, nWorkers);
}

function waitFor(ctl: Int32Array, slot: number, target: number): void {
  for (;;) {
    const v = Atomics.load(ctl, slot);
    if (v >= target) return;
    Atomics.wait(ctl, slot, v, 1000);
  }
}

/** After a round every frame is a single page mapped once: _count 1, not compound. */
function audit(pages: PageArray, nrFrames: number): { lost: number; extra: number } {
  let lost = 0;
  let extra = 0;
  for (let p = 0; p < nrFrames; p++) {
    const diff = Atomics.load(pages._count, p) - 1;
    if (diff < 0) lost -= diff;
    else extra += diff;
  }
  return { lost, extra };
}
