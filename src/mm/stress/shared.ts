/**
 * Shared-memory layout of the compound_lock stress (compound-lock.ts drives it,
 * gup-worker.ts runs in each worker thread). Everything the threads race on lives in
 * SharedArrayBuffers: the struct page array (page.ts) and this control block.
 */

/** Control block slots (Int32Array). */
export const CTL = {
  /** Round generation; workers start pinning when it moves. */
  gen: 0,
  /** 1 = workers exit. */
  quit: 1,
  /** Workers that finished pinning in the current round. */
  pinned: 2,
  /** Workers that finished releasing in the current round. */
  released: 3,
  /** Next compound page the splitter is about to split (workers release it meanwhile). */
  go: 4,
  /** Pages freed by a put reaching zero (a correct run frees none). */
  freed: 5,
  /** Operations (get_page + put_page) performed, summed over workers. */
  opsLo: 6,
  opsHi: 7,
  /** Exceptions a worker caught (a VM_BUG_ON firing on a corrupted count). */
  bugs: 8,
  /** Chased releases that the split's walk passed while they ran (the race window hit). */
  crossings: 9,
  /** Per compound page from here, 3 words each: page_table_lock, pmd state, releasers started. */
  pmdBase: 16,
} as const;

export const PMD_HUGE = 0;
export const PMD_SPLITTING = 1;
export const PMD_SPLIT = 2;

export interface StressWorkerData {
  module: string;
  pagesSab: SharedArrayBuffer;
  nrFrames: number;
  ctlSab: SharedArrayBuffer;
  compound: number;
  compoundLock: boolean;
  /** 6.x folio references instead (refops.ts bindFolioRefOps; compoundLock ignored). */
  folio: boolean;
  /** gup pins each worker takes on every tail page per round. */
  pinsPerTail: number;
  worker: number;
}

export const ctlWords = (compound: number) => CTL.pmdBase + 3 * compound;
