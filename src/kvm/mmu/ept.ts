/**
 * EPT tables written from TypeScript into the host-physical arena, in the Intel SDM format
 * the native walker reads (docs/mmu-model.md): 4 levels of 512 × u64 entries in 4 KiB frames;
 * bit 0 R, 1 W, 2 X, bits 5:3 memory type (6 = WB, leaves only), bit 7 PS (a 2 MiB leaf at
 * level 2), bits 51:12 the HPA of the next table or of the page.
 *
 * Tables are host kernel pages (host.alloc_kernel_page, PG_reserved) so the host model
 * accounts for them; entries are real bytes in the same buffer the guest's RAM lives in.
 * An entry is accessed as two 32-bit words (little-endian x86), which keeps BigInt out of
 * the fault path. This file knows nothing about memslots or the host mm: it maps, zaps,
 * write-protects and walks, and keeps the number of 4 KiB and 2 MiB leaves mapped.
 */
import { PAGE_SIZE, alignDown, gpa as asGpa, pfn as asPfn, pfnToHpa, type Gpa, type Hpa, type Pfn, gpaAdd } from '../../util/address.ts';
import type { HostApi } from '../../mm/types.ts';
import { ChunkedBytes, type ByteSource } from '../../util/chunked-bytes.ts';

export const EPT_R = 1 << 0;
export const EPT_W = 1 << 1;
export const EPT_X = 1 << 2;
/** Memory type WB (6) in bits 5:3, set on leaves. */
export const EPT_MT_WB = 6 << 3;
export const EPT_PS = 1 << 7;
/** Low-word flag bits (11:0) of an entry. */
const FLAGS_MASK = 0xfff;
/** High word keeps address bits 51:32 (20 bits). */
const HI_ADDR_MASK = 0xfffff;
const TWO32 = 2 ** 32;

/** EPT level numbering of the SDM: 4 = PML4 … 1 = PT. */
export type EptLevel = 1 | 2 | 3 | 4;
const levelShift = (l: number) => 12 + 9 * (l - 1);
const levelSize = (l: number) => 2 ** levelShift(l);

/** A leaf as the TS walker sees it. */
export interface EptLeaf {
  /** First GPA the leaf maps (aligned to its size). */
  gpa: Gpa;
  /** 1 = 4 KiB, 2 = 2 MiB. */
  level: 1 | 2;
  /** First frame mapped (the head frame of a 2 MiB leaf). */
  pfn: Pfn;
  writable: boolean;
  /** X bit: guest instruction fetches allowed (the NX huge pages mitigation clears it on 2 MiB leaves). */
  executable: boolean;
}

export interface ZapResult {
  zapped4k: number;
  zapped2m: number;
  tablesFreed: number;
}

export class Ept {
  /** PML4 frame; eptp = its HPA. */
  readonly root: Pfn;
  /** Leaves currently mapped (KVM's pages_4k / pages_2m). */
  pages_4k = 0;
  pages_2m = 0;
  private readonly views = new Map<number, Uint32Array>();

  /** Host RAM: EPT tables are frames anywhere in it (a 4 KiB frame never straddles a chunk). */
  private readonly physmem: ChunkedBytes;

  constructor(
    private readonly host: HostApi,
    physmem: ByteSource | ChunkedBytes,
  ) {
    this.physmem = physmem instanceof ChunkedBytes ? physmem : new ChunkedBytes(physmem);
    this.root = this.allocTable();
  }

  get eptp(): Hpa {
    return pfnToHpa(this.root);
  }

  /** Number of EPT table frames allocated (root included). */
  get tableCount(): number {
    return this.views.size;
  }

  private allocTable(): Pfn {
    const p = this.host.alloc_kernel_page();
    // A view per table, made once: the arena is chunked, a table frame lies in one chunk.
    const v = this.physmem.u32(p * PAGE_SIZE, 1024);
    v.fill(0);
    this.views.set(p, v);
    return p;
  }

  private freeTable(p: Pfn): void {
    this.views.delete(p);
    this.host.free_kernel_page(p);
  }

  private view(p: number): Uint32Array {
    const v = this.views.get(p);
    if (!v) throw new Error(`EPT: frame ${p} is not an EPT table`);
    return v;
  }

  private static entryPfn(v: Uint32Array, i: number): Pfn {
    return asPfn((v[2 * i + 1]! & HI_ADDR_MASK) * (TWO32 / PAGE_SIZE) + (v[2 * i]! >>> 12));
  }

  private static setEntry(v: Uint32Array, i: number, p: Pfn, flags: number): void {
    const a = p * PAGE_SIZE;
    v[2 * i] = ((a % TWO32) | flags) >>> 0;
    v[2 * i + 1] = Math.floor(a / TWO32) & HI_ADDR_MASK;
  }

  private static clearEntry(v: Uint32Array, i: number): void {
    v[2 * i] = 0;
    v[2 * i + 1] = 0;
  }

  private static present(v: Uint32Array, i: number): boolean {
    return (v[2 * i]! & (EPT_R | EPT_W | EPT_X)) !== 0;
  }

  /** Set by tableAt when it had to drop a present 2 MiB leaf on the way down. */
  private droppedLarge = false;

  /** Walk from the root to the table at `level` covering `g`, creating tables if asked. */
  private tableAt(g: Gpa, level: EptLevel, create: boolean): Uint32Array | null {
    let v = this.view(this.root);
    for (let l = 4; l > level; l--) {
      const i = Math.floor(g / levelSize(l)) % 512;
      if (!Ept.present(v, i)) {
        if (!create) return null;
        Ept.setEntry(v, i, this.allocTable(), EPT_R | EPT_W | EPT_X);
      } else if (v[2 * i]! & EPT_PS) {
        if (!create) return null;
        // A 2 MiB leaf where a page table must go (a 4 KiB mapping inside it): drop the
        // large leaf first (KVM's drop_large_spte); its other 4 KiB fault back in later.
        this.pages_2m--;
        this.droppedLarge = true;
        Ept.setEntry(v, i, this.allocTable(), EPT_R | EPT_W | EPT_X);
      }
      v = this.view(Ept.entryPfn(v, i));
    }
    return v;
  }

  /**
   * Install a leaf mapping `g` (aligned to the level's size) to frame `p`. A 2 MiB leaf
   * replaces any page table below it (its 4 KiB leaves are dropped and the table freed).
   * Returns true when a present translation was replaced or dropped — then cached
   * translations may be stale and the caller must INVEPT; filling a non-present entry
   * needs no flush (no TLB or paging-structure cache holds a translation that faulted).
   */
  map(g: Gpa, p: Pfn, level: 1 | 2, writable: boolean, executable = true): boolean {
    const size = levelSize(level);
    if (g % size !== 0 || p % (size / PAGE_SIZE) !== 0) {
      throw new Error(`EPT map: gpa 0x${g.toString(16)} / pfn ${p} not aligned to level ${level}`);
    }
    this.droppedLarge = false;
    const v = this.tableAt(g, level, true)!;
    let replaced = this.droppedLarge;
    const i = Math.floor(g / size) % 512;
    const flags = EPT_R | (executable ? EPT_X : 0) | (writable ? EPT_W : 0) | EPT_MT_WB | (level === 2 ? EPT_PS : 0);
    if (Ept.present(v, i)) {
      replaced = true;
      if (level === 2 && !(v[2 * i]! & EPT_PS)) {
        const child = Ept.entryPfn(v, i);
        const r = this.zapTable(child, 1, g, g, gpaAdd(g, size));
        this.pages_4k -= r.zapped4k;
        this.freeTable(child);
      } else if (level === 2) this.pages_2m--;
      else this.pages_4k--;
    }
    Ept.setEntry(v, i, p, flags);
    if (level === 2) this.pages_2m++;
    else this.pages_4k++;
    return replaced;
  }

  /**
   * Split the 2 MiB leaf at `g` in place (tdp_mmu_split_huge_page): a new page table whose
   * 512 4 KiB leaves map the same frames with the same R/W, X as `childExec` says, linked
   * where the large leaf was. Returns false (nothing done) when no 2 MiB leaf maps `g`.
   * The caller flushes: the large translation may be cached.
   */
  splitHugePage(g: Gpa, childExec: boolean): boolean {
    const v = this.tableAt(g, 2, false);
    if (!v) return false;
    const i = Math.floor(g / levelSize(2)) % 512;
    if (!Ept.present(v, i) || !(v[2 * i]! & EPT_PS)) return false;
    const head = Ept.entryPfn(v, i);
    const leafFlags = (v[2 * i]! & (EPT_R | EPT_W | EPT_MT_WB)) | (childExec ? EPT_X : 0);
    const child = this.allocTable();
    const cv = this.view(child);
    for (let j = 0; j < 512; j++) Ept.setEntry(cv, j, asPfn(head + j), leafFlags);
    Ept.setEntry(v, i, child, EPT_R | EPT_W | EPT_X);
    this.pages_2m--;
    this.pages_4k += 512;
    return true;
  }

  /** Whether the 2 MiB region at `g` is mapped through a page table of 4 KiB leaves (not a large leaf, not empty). */
  hasPageTable(g: Gpa): boolean {
    const v = this.tableAt(g, 2, false);
    if (!v) return false;
    const i = Math.floor(g / levelSize(2)) % 512;
    return Ept.present(v, i) && !(v[2 * i]! & EPT_PS);
  }

  /**
   * Zap every leaf overlapping [start, end) — a 2 MiB leaf partially inside the range is
   * zapped whole — and free the tables left empty (the root stays).
   */
  zapRange(start: Gpa, end: Gpa): ZapResult {
    const r = this.zapTable(this.root, 4, asGpa(0), start, end);
    this.pages_4k -= r.zapped4k;
    this.pages_2m -= r.zapped2m;
    return r;
  }

  private zapTable(t: Pfn, level: number, base: Gpa, start: Gpa, end: Gpa): ZapResult {
    const r: ZapResult = { zapped4k: 0, zapped2m: 0, tablesFreed: 0 };
    const v = this.view(t);
    const size = levelSize(level);
    const first = Math.max(0, Math.floor((start - base) / size));
    const last = Math.min(511, Math.floor((end - 1 - base) / size));
    for (let i = first; i <= last; i++) {
      if (!Ept.present(v, i)) continue;
      const eBase = gpaAdd(base, i * size);
      if (level === 1 || v[2 * i]! & EPT_PS) {
        if (level === 1) r.zapped4k++;
        else r.zapped2m++;
        Ept.clearEntry(v, i);
        continue;
      }
      const child = Ept.entryPfn(v, i);
      const c = this.zapTable(child, level - 1, eBase, start, end);
      r.zapped4k += c.zapped4k;
      r.zapped2m += c.zapped2m;
      r.tablesFreed += c.tablesFreed;
      // Free a table the zap covered or emptied (KVM frees unused shadow pages likewise).
      if ((start <= eBase && eBase + size <= end) || this.isEmpty(child)) {
        Ept.clearEntry(v, i);
        this.freeTable(child);
        r.tablesFreed++;
      }
    }
    return r;
  }

  private isEmpty(t: Pfn): boolean {
    const v = this.view(t);
    for (let i = 0; i < 512; i++) if (Ept.present(v, i)) return false;
    return true;
  }

  /** Clear the W bit of every leaf in [start, end); returns how many leaves changed. */
  writeProtectRange(start: Gpa, end: Gpa): number {
    let n = 0;
    this.visit(this.root, 4, asGpa(0), start, end, (v, i) => {
      if (v[2 * i]! & EPT_W) {
        v[2 * i] = (v[2 * i]! & ~EPT_W) >>> 0;
        n++;
      }
    });
    return n;
  }

  /** Every leaf overlapping [start, end), in GPA order. */
  leaves(start: Gpa, end: Gpa): EptLeaf[] {
    const out: EptLeaf[] = [];
    this.visit(this.root, 4, asGpa(0), start, end, (v, i, g, level) => {
      out.push({ gpa: g, level, pfn: Ept.entryPfn(v, i), writable: (v[2 * i]! & EPT_W) !== 0, executable: (v[2 * i]! & EPT_X) !== 0 });
    });
    return out;
  }

  private visit(
    t: Pfn,
    level: number,
    base: Gpa,
    start: Gpa,
    end: Gpa,
    fn: (v: Uint32Array, i: number, g: Gpa, level: 1 | 2) => void,
  ): void {
    const v = this.view(t);
    const size = levelSize(level);
    const first = Math.max(0, Math.floor((start - base) / size));
    const last = Math.min(511, Math.floor((end - 1 - base) / size));
    for (let i = first; i <= last; i++) {
      if (!Ept.present(v, i)) continue;
      const g = gpaAdd(base, i * size);
      if (level === 1 || v[2 * i]! & EPT_PS) {
        if (level > 2) throw new Error(`EPT: unexpected 1 GiB leaf at gpa 0x${g.toString(16)}`);
        fn(v, i, g, level as 1 | 2);
      } else this.visit(Ept.entryPfn(v, i), level - 1, g, start, end, fn);
    }
  }

  /** The TS walker: the leaf mapping `g`, or null (what the hardware would call a violation). */
  lookup(g: Gpa): EptLeaf | null {
    let v = this.view(this.root);
    for (let l = 4; l >= 1; l--) {
      const size = levelSize(l);
      const i = Math.floor(g / size) % 512;
      if (!Ept.present(v, i)) return null;
      if (l === 1 || v[2 * i]! & EPT_PS) {
        return { gpa: alignDown(g, size), level: l as 1 | 2, pfn: Ept.entryPfn(v, i), writable: (v[2 * i]! & EPT_W) !== 0, executable: (v[2 * i]! & EPT_X) !== 0 };
      }
      v = this.view(Ept.entryPfn(v, i));
    }
    return null;
  }

  /** Free every table (VM teardown). */
  destroy(): void {
    this.zapRange(asGpa(0), asGpa(2 ** 48));
    for (const p of [...this.views.keys()]) this.freeTable(asPfn(p));
    this.pages_4k = 0;
    this.pages_2m = 0;
  }
}
