/**
 * One gup user in the compound_lock stress, run in a worker thread (loaded through
 * bootstrap.mjs). Per round it pins every tail page of every compound page the way
 * get_user_pages does (get_page under the page_table_lock while the PMD is huge and not
 * splitting), then releases the pins with put_page as a driver does after I/O — while the
 * splitter runs __split_huge_page_refcount on the same compound page. Worker 0 holds more
 * pins and releases them right ahead of the split's walk over the tails (see
 * releaseChasing); the others release in descending order and cross the walk once.
 */
import { workerData } from 'node:worker_threads';
import { HPAGE_PMD_NR, pfn, pfnAdd, type Pfn } from '../../util/address.ts';
import { PageArray } from '../page.ts';
import { bindFolioRefOps, bindRefOps } from './refops.ts';
import { CTL, PMD_SPLIT, PMD_SPLITTING, type StressWorkerData } from './shared.ts';

const d = workerData as StressWorkerData;
const pages = new PageArray(d.nrFrames, d.pagesSab);
const ctl = new Int32Array(d.ctlSab);
const onFree = () => {
  Atomics.add(ctl, CTL.freed, 1);
};
const ops = d.folio ? bindFolioRefOps(pages, onFree) : bindRefOps(pages, d.compoundLock, onFree);
const ptl = (c: number) => CTL.pmdBase + 3 * c;
const pmdState = (c: number) => CTL.pmdBase + 3 * c + 1;
const started = (c: number) => CTL.pmdBase + 3 * c + 2;

function spinLock(i: number): void {
  while (Atomics.compareExchange(ctl, i, 0, 1) !== 0) {
    /* spin */
  }
}

/** Worker 0 holds CHASE_PINS× more pins per tail and releases them as the split's walk passes. */
const CHASE_PINS = 8;
/** Leads (tails ahead of the split's walk) tried in turn: covers fast and slow (cold JIT) splits. */
const CHASE_LEADS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48];
const myPins = d.worker === 0 ? d.pinsPerTail * CHASE_PINS : d.pinsPerTail;

let count = 0;
function addOps(n: number): void {
  count += n;
  if (count >= 1 << 20) {
    flushOps();
  }
}
function flushOps(): void {
  const lo = Atomics.add(ctl, CTL.opsLo, count) + count;
  if (lo >= 1 << 30) {
    Atomics.sub(ctl, CTL.opsLo, 1 << 30);
    Atomics.add(ctl, CTL.opsHi, 1);
  }
  count = 0;
}

/** gup of one tail: pin it only while its PMD is huge (a splitting PMD makes gup wait). */
function gupTail(c: number, pfn: Pfn, pins: number): void {
  for (;;) {
    spinLock(ptl(c));
    if (Atomics.load(ctl, pmdState(c)) !== PMD_SPLITTING) {
      for (let k = 0; k < pins; k++) ops.get_page(pfn);
      Atomics.store(ctl, ptl(c), 0);
      return;
    }
    Atomics.store(ctl, ptl(c), 0); // wait_split_huge_page, then retry
  }
}

function round(): void {
  for (let c = 0; c < d.compound; c++) {
    const head = pfn(c * HPAGE_PMD_NR);
    for (let i = 1; i < HPAGE_PMD_NR; i++) {
      gupTail(c, pfnAdd(head, i), myPins);
      addOps(myPins);
    }
  }
  Atomics.add(ctl, CTL.pinned, 1);
  Atomics.notify(ctl, CTL.pinned);

  for (let c = 0; c < d.compound; c++) {
    while (Atomics.load(ctl, CTL.go) < c) {
      /* the splitter announces each compound page just before splitting it */
    }
    Atomics.add(ctl, started(c), 1);
    // Chasing needs the split to walk the tails while pins are held: a folio split cannot
    // (it waits for the pins), so the folio variant releases in order.
    if (d.worker === 0 && !d.folio) releaseChasing(c);
    else for (let i = HPAGE_PMD_NR - 1; i >= 1; i--) release(c, i);
  }
  flushOps();
  Atomics.add(ctl, CTL.released, 1);
  Atomics.notify(ctl, CTL.released);
}

function release(c: number, i: number): void {
  const tail = pfn(c * HPAGE_PMD_NR + i);
  try {
    for (let k = 0; k < myPins; k++) ops.put_page(tail);
  } catch {
    Atomics.add(ctl, CTL.bugs, 1);
  }
  addOps(myPins);
}

const done = new Uint8Array(HPAGE_PMD_NR);
/**
 * Steer the timing (never the code under test): find where the split's walk over the
 * tails is (the first tail still PageTail), and release all pins of a tail a few places
 * ahead of it, so the walk passes that tail while its pins are being put. The lead varies
 * from attempt to attempt to sweep the race window whatever the relative speeds.
 */
function releaseChasing(c: number): void {
  const head = pfn(c * HPAGE_PMD_NR);
  done.fill(0);
  // Start once the walk is under way (tail 1 lost PG_tail): with compound_lock on, the
  // split then holds the lock, and every chased put meets it instead of starving it.
  while (pages.PageTail(pfnAdd(head, 1)) && Atomics.load(ctl, pmdState(c)) !== PMD_SPLIT) {
    /* spin */
  }
  let pos = 1;
  let attempt = c;
  for (;;) {
    while (pos < HPAGE_PMD_NR && !pages.PageTail(pfnAdd(head, pos))) pos++;
    // done, or the split stopped early on a BUG_ON (possible only without the lock)
    if (pos >= HPAGE_PMD_NR || Atomics.load(ctl, pmdState(c)) === PMD_SPLIT) break;
    const target = pos + CHASE_LEADS[attempt++ % CHASE_LEADS.length];
    if (target >= HPAGE_PMD_NR || done[target]) continue;
    done[target] = 1;
    release(c, target);
    if (!pages.PageTail(pfnAdd(head, target))) Atomics.add(ctl, CTL.crossings, 1);
  }
  for (let i = 1; i < HPAGE_PMD_NR; i++) if (!done[i]) release(c, i);
}

let gen = 0;
for (;;) {
  Atomics.wait(ctl, CTL.gen, gen);
  if (Atomics.load(ctl, CTL.quit)) break;
  gen = Atomics.load(ctl, CTL.gen);
  round();
}
