/**
 * struct mm_struct of a host process (MmStructApi): its VMAs, page tables, the deposit
 * of preallocated PTE tables for huge PMDs (mm->pmd_huge_pte), and its MMU notifiers.
 * The syscalls live here (mmap, munmap, mprotect, madvise, fork, exit); the fault path
 * is fault.ts, gup gup.ts, splitting split.ts, page-table teardown zap.ts.
 *
 * VMA boundaries: splitting a VMA at an address that is not 2 MiB aligned first splits a
 * THP mapped across it (2.6.38 __vma_adjust_trans_huge → split_huge_page_address), so a
 * huge PMD never straddles two VMAs.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE, alignDown, alignUp, hva, hvaAdd, isAligned } from '../util/address.ts';
import { ConfigError, HugevisorError } from '../util/errors.ts';
import { SegvError } from './errors.ts';
import { handle_mm_fault } from './fault.ts';
import { follow_page, get_user_pages, followForAccess } from './gup.ts';
import { lookup_address_in_mm } from './pagewalk.ts';
import type { Host } from './host.ts';
import {
  MmuNotifierList,
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_register,
  mmu_notifier_unregister,
} from './mmu-notifier.ts';
import { Pgd, PteTable, _PAGE_RW, _PAGE_SPECIAL, pmd_addr_end, pmd_index, pte_index } from './pgtable.ts';
import type { Madvice, MmapOptions, MmStructApi, MmuNotifierOps, PageMapping, HostMappingLevel } from './types.ts';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from './types.ts';
import { Vma, VM_EXEC, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_WRITE } from './vma.ts';
import { copy_page_range, zap_page_range } from './zap.ts';

/** Where mmap starts looking for room (bottom-up; the kernel goes top-down, it does not matter here). */
export const MMAP_BASE = 0x100_0000_0000;
/** TASK_SIZE of x86-64 (47-bit user space). */
export const TASK_SIZE = 0x7fff_ffff_f000;

function protToFlags(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);
}

export class MmStruct implements MmStructApi {
  readonly host: Host;
  readonly id: number;
  /** Sorted, non-overlapping. */
  vmas: Vma[] = [];
  pgd: Pgd;
  /** mm->pmd_huge_pte: PTE tables deposited by prepare_pmd_huge_pte, one per huge PMD. */
  readonly pmd_huge_pte: PteTable[] = [];
  readonly notifiers = new MmuNotifierList();
  dead = false;

  constructor(host: Host, id: number) {
    this.host = host;
    this.id = id;
    this.pgd = new Pgd(host);
  }

  get mmu_notifier_seq(): number {
    return this.notifiers.seq;
  }
  get mmu_notifier_count(): number {
    return this.notifiers.count;
  }

  private op<T>(fn: () => T): T {
    if (this.dead) throw new HugevisorError('EINVAL_CONFIG', `mm ${this.id}: used after exit_mmap()`);
    return this.host.op(fn);
  }

  // --- deposit of PTE tables (2.6.38 prepare_pmd_huge_pte / get_pmd_huge_pte) ----------

  prepare_pmd_huge_pte(t: PteTable): void {
    this.pmd_huge_pte.push(t);
  }
  get_pmd_huge_pte(): PteTable {
    const t = this.pmd_huge_pte.pop();
    if (!t) throw new Error('kernel BUG: get_pmd_huge_pte with nothing deposited');
    return t;
  }

  // --- VMAs ------------------------------------------------------------------------------

  /** find_vma: the first VMA ending above `addr` (it may start above it too). */
  find_vma(addr: number): Vma | null {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.vmas[mid].end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.vmas.length ? this.vmas[lo] : null;
  }

  /** The VMA containing `addr`, or null. */
  vmaAt(addr: number): Vma | null {
    const v = this.find_vma(addr);
    return v && v.start <= addr ? v : null;
  }

  /** VMAs intersecting [start, end). */
  vmasIn(start: number, end: number): Vma[] {
    return this.vmas.filter((v) => v.start < end && v.end > start);
  }

  /** Any VMA intersecting [lo, hi)? (free_pgtables' floor/ceiling.) */
  inUse = (lo: number, hi: number): boolean => this.vmas.some((v) => v.start < hi && v.end > lo);

  private insertVma(v: Vma): void {
    const i = this.vmas.findIndex((x) => x.start > v.start);
    if (i < 0) this.vmas.push(v);
    else this.vmas.splice(i, 0, v);
  }

  /** split_vma at `addr` if a VMA strictly contains it (THP straddling it split first). */
  private splitVmaAt(addr: Hva): void {
    const v = this.vmaAt(addr);
    if (!v || v.start === addr) return;
    // __vma_adjust_trans_huge → split_huge_page_address (2.6.38) / split_huge_pmd_address (6.x)
    if (!isAligned(addr, HPAGE_PMD_SIZE)) this.host.policy.split_huge_pmd(this, alignDown(addr, HPAGE_PMD_SIZE));
    const nv = new Vma(this, addr, v.end, v.flags);
    this.host.anon.clone(nv, v);
    nv.anon_vma = v.anon_vma;
    v.end = addr;
    this.insertVma(nv);
  }

  /** vma_merge around [start, end): join neighbours with equal flags and compatible anon_vma. */
  private mergeAround(start: Hva, end: Hva): void {
    for (let i = 0; i + 1 < this.vmas.length; ) {
      const a = this.vmas[i];
      const b = this.vmas[i + 1];
      const near = a.end >= start - PAGE_SIZE && b.start <= end + PAGE_SIZE;
      const compatible =
        a.anon_vma === b.anon_vma ||
        (a.anon_vma_chain.length === 0 || b.anon_vma_chain.length === 0);
      if (near && a.end === b.start && a.flags === b.flags && compatible) {
        if (a.anon_vma_chain.length === 0 && b.anon_vma_chain.length > 0) {
          this.host.anon.clone(a, b);
          a.anon_vma = b.anon_vma;
        }
        a.end = b.end;
        this.host.anon.unlink(b);
        this.vmas.splice(i + 1, 1);
        if (a.anon_vma) this.host.khugepaged.khugepaged_enter(this, a); // khugepaged_enter_vma_merge
      } else i++;
    }
  }

  private checkRange(what: string, addr: Hva, length: number): [Hva, Hva] {
    if (!Number.isSafeInteger(addr) || !isAligned(addr, PAGE_SIZE) || addr < 0) {
      throw new ConfigError(`${what}: address 0x${Number(addr).toString(16)} is not page aligned (EINVAL)`);
    }
    if (!Number.isSafeInteger(length) || length <= 0) throw new ConfigError(`${what}: length must be a positive integer (EINVAL), got ${length}`);
    // TASK_SIZE is page aligned, so this is end > TASK_SIZE without forming a sum past 2^53.
    if (length > TASK_SIZE - addr) throw new ConfigError(`${what}: range ends beyond TASK_SIZE (EINVAL)`);
    return [addr, alignUp(hvaAdd(addr, length), PAGE_SIZE)];
  }

  /** Is every byte of [start, end) inside some VMA? */
  private fullyMapped(start: number, end: number): boolean {
    let a = start;
    for (const v of this.vmasIn(start, end)) {
      if (v.start > a) return false;
      a = v.end;
    }
    return a >= end;
  }

  // --- syscalls ---------------------------------------------------------------------------

  mmap(length: number, opts: MmapOptions = {}): Hva {
    return this.op(() => {
      if (!Number.isSafeInteger(length) || length <= 0) throw new ConfigError(`mmap: length must be a positive integer (EINVAL), got ${length}`);
      const prot = opts.prot ?? PROT_READ | PROT_WRITE;
      if (!Number.isInteger(prot) || prot < 0 || prot > 7) throw new ConfigError(`mmap: prot must be a combination of PROT_READ|PROT_WRITE|PROT_EXEC, got ${prot}`);
      const len = alignUp(length, PAGE_SIZE);
      let start: Hva;
      let end: Hva;
      if (opts.addr !== undefined) {
        [start, end] = this.checkRange('mmap', opts.addr, len);
        if (this.vmasIn(start, end).length) this.do_munmap(start, end);
      } else {
        start = this.get_unmapped_area(len, opts.alignHuge ? HPAGE_PMD_SIZE : PAGE_SIZE);
        end = hvaAdd(start, len);
      }
      const v = new Vma(this, start, end, protToFlags(prot));
      this.insertVma(v);
      this.mergeAround(start, end);
      return start;
    });
  }

  /** First gap of `len` bytes at `align` from MMAP_BASE. */
  private get_unmapped_area(len: number, align: number): Hva {
    let a = alignUp(hva(MMAP_BASE), align);
    for (const v of this.vmas) {
      if (v.end <= a) continue;
      if (v.start >= a + len) break;
      a = alignUp(v.end, align);
    }
    if (a + len > TASK_SIZE) throw new ConfigError(`mmap: no room for ${len} bytes (ENOMEM)`);
    return a;
  }

  munmap(addr: Hva, length: number): void {
    this.op(() => {
      const [start, end] = this.checkRange('munmap', addr, length);
      this.do_munmap(start, end);
    });
  }

  /** do_munmap: split VMAs at the edges, zap the range (splitting partial THPs), drop VMAs, free tables. */
  do_munmap(start: Hva, end: Hva): void {
    if (this.vmasIn(start, end).length === 0) return;
    this.splitVmaAt(start);
    this.splitVmaAt(end);
    zap_page_range(this, start, end);
    for (const v of this.vmasIn(start, end)) {
      this.host.anon.unlink(v);
      this.vmas.splice(this.vmas.indexOf(v), 1);
    }
    this.pgd.free_pgtables(start, end, this.inUse);
  }

  mprotect(addr: Hva, length: number, prot: number): void {
    this.op(() => {
      const [start, end] = this.checkRange('mprotect', addr, length);
      if (!Number.isInteger(prot) || prot < 0 || prot > 7) throw new ConfigError(`mprotect: prot must be a combination of PROT_READ|PROT_WRITE|PROT_EXEC, got ${prot}`);
      if (!this.fullyMapped(start, end)) throw new SegvError(start, 'mprotect: range not fully mapped (ENOMEM)');
      this.splitVmaAt(start);
      this.splitVmaAt(end);
      const flags = protToFlags(prot);
      mmu_notifier_invalidate_range_start(this, start, end);
      for (const v of this.vmasIn(start, end)) {
        v.flags = (v.flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | flags;
        this.change_protection(v.start, v.end, (flags & VM_WRITE) !== 0);
      }
      mmu_notifier_invalidate_range_end(this, start, end);
      this.mergeAround(start, end);
    });
  }

  /**
   * change_protection: write-protect PTEs/PMDs when write is removed. Adding write leaves
   * them read-only under 2.6.38 (a private mapping's vm_page_prot never has write; the next
   * write fault reuses or copies the page); under 6.x an exclusive anonymous page is made
   * writable at once (MM_CP_TRY_CHANGE_WRITABLE: the policy's can_change_writable). A huge
   * PMD only partly in range is split first (change_pmd_range), a whole one is changed in
   * place (change_huge_pmd).
   */
  private change_protection(start: Hva, end: Hva, writable: boolean): void {
    for (let a = start; a < end; ) {
      const next = pmd_addr_end(a, end);
      const pmd = this.pgd.pmd_table(a);
      if (pmd) {
        const i = pmd_index(a);
        if (pmd.pmd_trans_huge(i) && next - a !== HPAGE_PMD_SIZE) this.host.policy.split_huge_pmd(this, a);
        const policy = this.host.policy;
        if (pmd.pmd_trans_huge(i)) {
          if (!writable) pmd.hbits[i] &= ~_PAGE_RW;
          else if (policy.can_change_writable(pmd.pmd_page(i))) pmd.hbits[i] |= _PAGE_RW;
        } else if (pmd.pte[i]) {
          const t = pmd.pte[i]!;
          for (let p: number = a; p < next; p += PAGE_SIZE) {
            const j = pte_index(p);
            if (!t.pte_present(j)) continue;
            if (!writable) t.bits[j] &= ~_PAGE_RW;
            else if (!(t.bits[j] & _PAGE_SPECIAL) && policy.can_change_writable(t.pte_pfn(j))) t.bits[j] |= _PAGE_RW;
          }
        }
      }
      a = next;
    }
  }

  madvise(addr: Hva, length: number, advice: Madvice): void {
    this.op(() => {
      const [start, end] = this.checkRange('madvise', addr, length);
      if (advice !== 'MADV_HUGEPAGE' && advice !== 'MADV_NOHUGEPAGE' && advice !== 'MADV_DONTNEED') {
        throw new ConfigError(`madvise: advice must be MADV_HUGEPAGE, MADV_NOHUGEPAGE or MADV_DONTNEED, got ${String(advice)}`);
      }
      if (!this.fullyMapped(start, end)) throw new SegvError(start, 'madvise: range not fully mapped (ENOMEM)');
      if (advice === 'MADV_DONTNEED') {
        // madvise_dontneed → zap_page_range; the VMAs stay.
        zap_page_range(this, start, end);
        return;
      }
      // hugepage_madvise: only flags change; existing mappings are left as they are.
      this.splitVmaAt(start);
      this.splitVmaAt(end);
      for (const v of this.vmasIn(start, end)) {
        if (advice === 'MADV_HUGEPAGE') {
          v.flags = (v.flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
        } else {
          v.flags = (v.flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
        }
      }
      this.mergeAround(start, end);
      if (advice === 'MADV_HUGEPAGE') for (const v of this.vmasIn(start, end)) this.host.khugepaged.khugepaged_enter(this, v);
    });
  }

  fork(): MmStructApi {
    return this.op(() => {
      const child = this.host.createMm();
      // dup_mmap: the parent's COW mappings are write-protected, so secondary MMUs must
      // drop writable entries (copy_page_range's invalidate for is_cow_mapping).
      for (const v of this.vmas) {
        const cv = new Vma(child, v.start, v.end, v.flags);
        // anon_vma_fork: the child may map the parent's pages; its new pages get their own anon_vma.
        if (v.anon_vma) {
          this.host.anon.clone(cv, v);
          cv.anon_vma = this.host.anon.create();
          cv.anon_vma.vmas.add(cv);
          cv.anon_vma_chain.push(cv.anon_vma);
        }
        child.vmas.push(cv);
        if (v.anon_vma) {
          mmu_notifier_invalidate_range_start(this, v.start, v.end);
          copy_page_range(child, this, cv, v);
          mmu_notifier_invalidate_range_end(this, v.start, v.end);
        }
      }
      this.host.khugepaged.khugepaged_fork(child, this);
      return child;
    });
  }

  exit_mmap(): void {
    if (this.dead) return;
    this.host.op(() => {
      this.host.khugepaged.khugepaged_exit(this);
      for (const v of [...this.vmas]) {
        zap_page_range(this, v.start, v.end);
        this.host.anon.unlink(v);
      }
      this.vmas = [];
      this.host.policy.exit_mm(this); // 6.x: mm_put_huge_zero_folio
      if (this.pmd_huge_pte.length) throw new Error(`kernel BUG: exit_mmap with ${this.pmd_huge_pte.length} deposited PTE tables left`);
      this.pgd.free_all();
      this.dead = true;
      this.host.processes.delete(this);
    });
  }

  // --- faults and access -------------------------------------------------------------------

  handle_mm_fault(addr: Hva, write: boolean): void {
    this.op(() => handle_mm_fault(this, addr, write));
  }

  get_user_pages(addr: Hva, n: number, write: boolean): Pfn[] {
    return this.op(() => get_user_pages(this, addr, n, write));
  }

  follow_page(addr: Hva): PageMapping | null {
    return this.op(() => follow_page(this, addr));
  }

  lookup_address_in_mm(addr: Hva): HostMappingLevel | null {
    return this.op(() => lookup_address_in_mm(this, addr));
  }

  readBytes(addr: Hva, length: number): Uint8Array {
    return this.op(() => {
      if (!Number.isSafeInteger(length) || length < 0) throw new ConfigError(`readBytes: bad length ${length}`);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const a = hvaAdd(addr, done);
        const off = a % PAGE_SIZE;
        const n = Math.min(length - done, PAGE_SIZE - off);
        const pfn = followForAccess(this, a, false);
        out.set(this.host.physmem.frames(pfn).subarray(off, off + n), done);
        done += n;
      }
      return out;
    });
  }

  writeBytes(addr: Hva, data: Uint8Array): void {
    this.op(() => {
      if (!(data instanceof Uint8Array)) throw new ConfigError('writeBytes: data must be a Uint8Array');
      let done = 0;
      while (done < data.length) {
        const a = hvaAdd(addr, done);
        const off = a % PAGE_SIZE;
        const n = Math.min(data.length - done, PAGE_SIZE - off);
        const pfn = followForAccess(this, a, true);
        this.host.physmem.frames(pfn).set(data.subarray(done, done + n), off);
        done += n;
      }
    });
  }

  mmu_notifier_register(ops: MmuNotifierOps): void {
    mmu_notifier_register(this.notifiers, ops);
  }
  mmu_notifier_unregister(ops: MmuNotifierOps): void {
    mmu_notifier_unregister(this.notifiers, ops);
  }
}
