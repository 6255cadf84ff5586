/**
 * Host page tables of one process (x86-64, 4 levels: pgd → pud → pmd → pte), sparse: a
 * table exists only where something was mapped. Every table costs one real kernel frame
 * from the buddy (pte_alloc_one, pmd_alloc_one...), PG_reserved, so page-table overhead
 * shows in MemFree like on Linux; the entries themselves are kept in JS typed arrays next
 * to that frame (the host walker never reads them from RAM).
 *
 * A PMD entry is one of: none, a pointer to a PTE table, or a huge mapping of an order-9
 * compound page (pmd_trans_huge) which may be marked splitting (pmd_trans_splitting).
 * A PTE is none, present (pfn + bits), or a swap entry (not present, pfn field = swap
 * offset, swap.ts).
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_SIZE, alignDown, hvaAdd, minAddress, pfn } from '../util/address.ts';

export const PTRS_PER_TABLE = 512;

// PTE / PMD bits (names after arch/x86 _PAGE_*).
export const _PAGE_PRESENT = 1;
export const _PAGE_RW = 2;
export const _PAGE_ACCESSED = 4; // young
export const _PAGE_DIRTY = 8;
/** pte_special: the shared zero page (no refcount, no mapcount). */
export const _PAGE_SPECIAL = 16;
/** A swap entry (not present); the pfn slot holds the swap offset. */
export const _PAGE_SWP = 32;
/** _PAGE_SPLITTING: a huge PMD under split_huge_page (pass 1 set it). */
export const _PAGE_SPLITTING = 64;

/** Allocates / frees the kernel frames that hold page tables. */
export interface PgtableFrames {
  alloc_kernel_page(): Pfn;
  free_kernel_page(pfn: Pfn): void;
}

export class PteTable {
  readonly pfn = new Int32Array(PTRS_PER_TABLE);
  readonly bits = new Uint8Array(PTRS_PER_TABLE);
  constructor(readonly frame: Pfn) {}
  pte_none(i: number): boolean {
    return this.bits[i] === 0;
  }
  pte_present(i: number): boolean {
    return (this.bits[i] & _PAGE_PRESENT) !== 0;
  }
  is_swap_pte(i: number): boolean {
    return (this.bits[i] & _PAGE_SWP) !== 0;
  }
  /** pte_pfn: the frame a present PTE maps (for a swap PTE, pfn[] holds the slot instead). */
  pte_pfn(i: number): Pfn {
    return pfn(this.pfn[i]);
  }
  pte_write(i: number): boolean {
    return (this.bits[i] & _PAGE_RW) !== 0;
  }
  pte_clear(i: number): void {
    this.bits[i] = 0;
    this.pfn[i] = 0;
  }
  set_pte(i: number, pfn: Pfn | number, bits: number): void {
    this.pfn[i] = pfn;
    this.bits[i] = bits;
  }
  isEmpty(): boolean {
    for (let i = 0; i < PTRS_PER_TABLE; i++) if (this.bits[i] !== 0) return false;
    return true;
  }
}

export class PmdTable {
  readonly pte: (PteTable | null)[] = new Array(PTRS_PER_TABLE).fill(null);
  /** Head PFN of the huge page a huge PMD maps, −1 when not huge. */
  readonly huge = new Int32Array(PTRS_PER_TABLE).fill(-1);
  /** Bits of a huge PMD (_PAGE_RW, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_SPLITTING). */
  readonly hbits = new Uint8Array(PTRS_PER_TABLE);
  constructor(readonly frame: Pfn) {}
  pmd_none(i: number): boolean {
    return this.pte[i] === null && this.huge[i] < 0;
  }
  pmd_trans_huge(i: number): boolean {
    return this.huge[i] >= 0;
  }
  pmd_trans_splitting(i: number): boolean {
    return this.huge[i] >= 0 && (this.hbits[i] & _PAGE_SPLITTING) !== 0;
  }
  /** pmd_page: the head frame of the THP a huge PMD maps. */
  pmd_page(i: number): Pfn {
    return pfn(this.huge[i]);
  }
  pmd_write(i: number): boolean {
    return (this.hbits[i] & _PAGE_RW) !== 0;
  }
  set_pmd_huge(i: number, head: Pfn, bits: number): void {
    this.pte[i] = null;
    this.huge[i] = head;
    this.hbits[i] = bits | _PAGE_PRESENT;
  }
  pmd_clear(i: number): void {
    this.pte[i] = null;
    this.huge[i] = -1;
    this.hbits[i] = 0;
  }
  /** pmd_populate: point the entry at a PTE table. */
  pmd_populate(i: number, t: PteTable): void {
    this.huge[i] = -1;
    this.hbits[i] = 0;
    this.pte[i] = t;
  }
  isEmpty(): boolean {
    for (let i = 0; i < PTRS_PER_TABLE; i++) if (!this.pmd_none(i)) return false;
    return true;
  }
}

export class PudTable {
  readonly pmd: (PmdTable | null)[] = new Array(PTRS_PER_TABLE).fill(null);
  constructor(readonly frame: Pfn) {}
}

const P39 = 2 ** 39;
const P30 = 2 ** 30;
const P21 = 2 ** 21;

export const pgd_index = (a: number) => Math.floor(a / P39) % PTRS_PER_TABLE;
export const pud_index = (a: number) => Math.floor(a / P30) % PTRS_PER_TABLE;
export const pmd_index = (a: number) => Math.floor(a / P21) % PTRS_PER_TABLE;
export const pte_index = (a: number) => Math.floor(a / 4096) % PTRS_PER_TABLE;

/** pmd_addr_end: the end of the walk step from `a`: the next 2 MiB boundary, or `end` if sooner. */
export const pmd_addr_end = (a: Hva, end: Hva): Hva => minAddress(alignDown(hvaAdd(a, HPAGE_PMD_SIZE), HPAGE_PMD_SIZE), end);

/** The process's top-level table and the walk/allocation helpers below it. */
export class Pgd {
  readonly pud: (PudTable | null)[] = new Array(PTRS_PER_TABLE).fill(null);
  readonly frame: Pfn;

  constructor(private readonly frames: PgtableFrames) {
    this.frame = frames.alloc_kernel_page();
  }

  /** pmd_offset without allocating: the PMD table covering `a`, or null. */
  pmd_table(a: Hva | number): PmdTable | null {
    const pud = this.pud[pgd_index(a)];
    return pud ? pud.pmd[pud_index(a)] : null;
  }

  /** pud_alloc + pmd_alloc: the PMD table covering `a`, allocating missing levels. */
  pmd_alloc(a: Hva | number): PmdTable {
    const gi = pgd_index(a);
    let pud = this.pud[gi];
    if (!pud) {
      pud = new PudTable(this.frames.alloc_kernel_page());
      this.pud[gi] = pud;
    }
    const ui = pud_index(a);
    let pmd = pud.pmd[ui];
    if (!pmd) {
      pmd = new PmdTable(this.frames.alloc_kernel_page());
      pud.pmd[ui] = pmd;
    }
    return pmd;
  }

  /** pte_alloc_one: a new empty PTE table in a fresh kernel frame. */
  pte_alloc_one(): PteTable {
    return new PteTable(this.frames.alloc_kernel_page());
  }
  pte_free(t: PteTable): void {
    this.frames.free_kernel_page(t.frame);
  }

  /** The PTE table and index mapping `a` (null when none or when the PMD is huge). */
  pte_offset(a: Hva | number): PteTable | null {
    const pmd = this.pmd_table(a);
    return pmd ? pmd.pte[pmd_index(a)] : null;
  }

  /**
   * free_pgtables for [start, end): release PTE/PMD/PUD tables that are empty and whose
   * span no longer intersects a VMA (`inUse(lo, hi)`).
   */
  free_pgtables(start: number, end: number, inUse: (lo: number, hi: number) => boolean): void {
    for (let a = Math.floor(start / P30) * P30; a < end; a += P30) {
      const pud = this.pud[pgd_index(a)];
      if (!pud) continue;
      const pmd = pud.pmd[pud_index(a)];
      if (!pmd) continue;
      for (let m = Math.max(a, Math.floor(start / P21) * P21); m < Math.min(a + P30, end); m += P21) {
        const i = pmd_index(m);
        const t = pmd.pte[i];
        if (t && !inUse(m, m + P21) && t.isEmpty()) {
          pmd.pte[i] = null;
          this.pte_free(t);
        }
      }
      if (!inUse(a, a + P30) && pmd.isEmpty()) {
        pud.pmd[pud_index(a)] = null;
        this.frames.free_kernel_page(pmd.frame);
      }
    }
    for (let a = Math.floor(start / P39) * P39; a < end; a += P39) {
      const gi = pgd_index(a);
      const pud = this.pud[gi];
      if (pud && !inUse(a, a + P39) && pud.pmd.every((x) => x === null)) {
        this.pud[gi] = null;
        this.frames.free_kernel_page(pud.frame);
      }
    }
  }

  /** Release every remaining table and the pgd itself (exit_mmap, after zapping). */
  free_all(): void {
    for (let gi = 0; gi < PTRS_PER_TABLE; gi++) {
      const pud = this.pud[gi];
      if (!pud) continue;
      for (const pmd of pud.pmd) {
        if (!pmd) continue;
        for (const t of pmd.pte) if (t) this.pte_free(t);
        this.frames.free_kernel_page(pmd.frame);
      }
      this.frames.free_kernel_page(pud.frame);
      this.pud[gi] = null;
    }
    this.frames.free_kernel_page(this.frame);
  }

  /** Visit every PMD slot that is not none: (address of the 2 MiB slot, table, index). */
  forEachPmd(cb: (addr: number, pmd: PmdTable, i: number) => void): void {
    for (let gi = 0; gi < PTRS_PER_TABLE; gi++) {
      const pud = this.pud[gi];
      if (!pud) continue;
      for (let ui = 0; ui < PTRS_PER_TABLE; ui++) {
        const pmd = pud.pmd[ui];
        if (!pmd) continue;
        for (let i = 0; i < PTRS_PER_TABLE; i++) {
          if (!pmd.pmd_none(i)) cb(gi * P39 + ui * P30 + i * P21, pmd, i);
        }
      }
    }
  }
}
