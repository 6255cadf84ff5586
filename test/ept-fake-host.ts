/**
 * A small stand-in for the host THP model (src/mm/types.ts HostApi / MmStructApi), used by
 * the EPT tests while the real model is elsewhere, and to make races deterministic (a test
 * can run code inside gup). It models only what the EPT layer observes: anonymous VMAs,
 * 4 KiB PTEs and huge PMDs with THP on fault per `enabled`, gup pins, split_huge_page and a
 * khugepaged-like collapse, each notifying secondary MMUs like the kernel does, and
 * bytes in the shared physmem buffer. It is not the THP model: no buddy, no swap.
 */
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_SIZE,
  PAGE_SIZE,
  hva as asHva,
  pfn as asPfn,
  type Hva,
  type Pfn,
} from '../src/util/address.ts';
import type { HostApi, MmStructApi, MmuNotifierOps, MmapOptions, Madvice, PageMapping, ThpKnobs } from '../src/mm/types.ts';

interface Pte {
  pfn: Pfn;
  writable: boolean;
}

export class FakeHost implements HostApi {
  knobs: ThpKnobs = {
    enabled: 'always',
    defrag: 'always',
    khugepaged: { defrag: true, pages_to_scan: 4096, scan_sleep_millisecs: 10000, alloc_sleep_millisecs: 60000, max_ptes_none: 511 },
  };
  readonly physmem: ArrayBuffer;
  readonly refcount: Int32Array;
  private nextSmall: number;
  private nextHuge = 0;
  private freeSmall: number[] = [];
  private freeHuge: number[] = [];
  readonly counters: Record<string, number> = { thp_fault_alloc: 0, thp_split: 0, thp_collapse_alloc: 0, pgfault: 0 };
  procs: FakeMm[] = [];

  constructor(readonly memoryBytes: number) {
    this.physmem = new ArrayBuffer(memoryBytes);
    this.refcount = new Int32Array(memoryBytes / PAGE_SIZE);
    // Huge blocks from the bottom, small frames from the top.
    this.nextSmall = memoryBytes / PAGE_SIZE - 1;
  }
  setKnob(path: string, value: string | number): void {
    if (path === 'enabled') this.knobs.enabled = value as ThpKnobs['enabled'];
    else throw new Error(`fake host: knob ${path} unsupported`);
  }
  newProcess(): MmStructApi {
    const m = new FakeMm(this, this.procs.length + 1);
    this.procs.push(m);
    return m;
  }
  allocSmall(): Pfn {
    const p = this.freeSmall.pop() ?? this.nextSmall--;
    if (p < this.nextHuge) throw new Error('fake host: out of memory');
    new Uint8Array(this.physmem, p * PAGE_SIZE, PAGE_SIZE).fill(0);
    this.refcount[p] = 1;
    return asPfn(p);
  }
  allocHuge(): Pfn {
    const p = this.freeHuge.pop() ?? this.nextHuge;
    if (p === this.nextHuge) this.nextHuge += HPAGE_PMD_NR;
    new Uint8Array(this.physmem, p * PAGE_SIZE, HPAGE_PMD_SIZE).fill(0);
    for (let i = 0; i < HPAGE_PMD_NR; i++) this.refcount[p + i] = 1;
    return asPfn(p);
  }
  freeHugeBlock(p: Pfn): void {
    for (let i = 0; i < HPAGE_PMD_NR; i++) this.refcount[p + i] = 0;
    this.freeHuge.push(p);
  }
  put_page(p: Pfn): void {
    if (--this.refcount[p]! < 0) throw new Error(`fake host: put_page underflow on ${p}`);
  }
  get_page(p: Pfn): void {
    this.refcount[p]!++;
  }
  alloc_kernel_page(): Pfn {
    return this.allocSmall();
  }
  free_kernel_page(p: Pfn): void {
    this.refcount[p] = 0;
    this.freeSmall.push(p);
  }
  advanceTime(): void {}
  khugepaged_scan(): void {
    for (const m of this.procs) m.collapseAll();
  }
  reclaim(): number {
    return 0;
  }
  split_huge_page(p: Pfn): void {
    for (const m of this.procs) m.splitByPfn(p);
    this.counters.thp_split!++;
  }
  vmstat(): Record<string, number> {
    return { ...this.counters };
  }
  meminfo(): Record<string, number> {
    return {};
  }
  khugepagedStats() {
    return { pages_collapsed: this.counters.thp_collapse_alloc!, full_scans: 0 };
  }
  checkInvariants(): void {}
  close(): void {}
}

interface Vma {
  start: number;
  end: number;
  hugepage: boolean;
}

export class FakeMm implements MmStructApi {
  private vmas: Vma[] = [];
  private ptes = new Map<number, Pte>(); // by 4 KiB page number
  private pmds = new Map<number, Pte>(); // by 2 MiB number: huge PMDs
  private notifiers: MmuNotifierOps[] = [];
  private nextAddr = 0x7f00_0000_0000 + 4096;
  mmu_notifier_seq = 0;
  mmu_notifier_count = 0;
  /** Test hook: runs inside get_user_pages after the fault, before it returns. */
  duringGup: (() => void) | null = null;

  constructor(
    private readonly host: FakeHost,
    readonly id: number,
  ) {}

  mmap(length: number, opts: MmapOptions = {}): Hva {
    let a = this.nextAddr;
    if (opts.alignHuge) a = Math.ceil(a / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE;
    this.vmas.push({ start: a, end: a + length, hugepage: false });
    this.nextAddr = a + length + 64 * HPAGE_PMD_SIZE + PAGE_SIZE;
    return asHva(a);
  }
  munmap(): void {
    throw new Error('fake host: munmap unsupported');
  }
  mprotect(): void {
    throw new Error('fake host: mprotect unsupported');
  }
  madvise(addr: Hva, length: number, advice: Madvice): void {
    if (advice !== 'MADV_HUGEPAGE') throw new Error('fake host: only MADV_HUGEPAGE');
    for (const v of this.vmas) if (v.start <= addr && addr + length <= v.end) v.hugepage = true;
  }
  fork(): MmStructApi {
    throw new Error('fake host: fork unsupported');
  }
  exit_mmap(): void {}

  private vma(a: number): Vma {
    const v = this.vmas.find((x) => a >= x.start && a < x.end);
    if (!v) throw new Error(`SIGSEGV at 0x${a.toString(16)}`);
    return v;
  }
  private notify(start: number, end: number, fn: () => void): void {
    this.mmu_notifier_count++;
    for (const n of this.notifiers) n.invalidate_range_start(this, asHva(start), asHva(end));
    fn();
    this.mmu_notifier_seq++;
    this.mmu_notifier_count--;
    for (const n of this.notifiers) n.invalidate_range_end(this, asHva(start), asHva(end));
  }

  handle_mm_fault(addr: Hva, _write: boolean): void {
    const v = this.vma(addr);
    const hp = Math.floor(addr / HPAGE_PMD_SIZE);
    if (this.pmds.has(hp) || this.ptes.has(Math.floor(addr / PAGE_SIZE))) return;
    this.host.counters.pgfault!++;
    const k = this.host.knobs.enabled;
    const thp = k === 'always' || (k === 'madvise' && v.hugepage);
    const base = hp * HPAGE_PMD_SIZE;
    let anyPte = false;
    for (let i = 0; i < HPAGE_PMD_NR && !anyPte; i++) anyPte = this.ptes.has(base / PAGE_SIZE + i);
    if (thp && base >= v.start && base + HPAGE_PMD_SIZE <= v.end && !anyPte) {
      this.pmds.set(hp, { pfn: this.host.allocHuge(), writable: true });
      this.host.counters.thp_fault_alloc!++;
      return;
    }
    this.ptes.set(Math.floor(addr / PAGE_SIZE), { pfn: this.host.allocSmall(), writable: true });
  }

  get_user_pages(addr: Hva, n: number, write: boolean): Pfn[] {
    const out: Pfn[] = [];
    for (let i = 0; i < n; i++) {
      const a = asHva(addr + i * PAGE_SIZE);
      this.handle_mm_fault(a, write);
      const m = this.follow_page(a)!;
      this.host.get_page(m.pfn);
      out.push(m.pfn);
    }
    const hook = this.duringGup;
    this.duringGup = null;
    hook?.();
    return out;
  }

  follow_page(addr: Hva): PageMapping | null {
    const pmd = this.pmds.get(Math.floor(addr / HPAGE_PMD_SIZE));
    if (pmd) {
      const off = Math.floor((addr % HPAGE_PMD_SIZE) / PAGE_SIZE);
      return { pfn: asPfn(pmd.pfn + off), huge: true, headPfn: pmd.pfn, writable: pmd.writable };
    }
    const pte = this.ptes.get(Math.floor(addr / PAGE_SIZE));
    return pte ? { pfn: pte.pfn, huge: false, headPfn: pte.pfn, writable: pte.writable } : null;
  }

  readBytes(addr: Hva, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.copy(addr, length, false, (buf, off) => out.set(buf, off));
    return out;
  }
  writeBytes(addr: Hva, data: Uint8Array): void {
    this.copy(addr, data.length, true, (buf, off) => buf.set(data.subarray(off, off + buf.length)));
  }
  private copy(addr: number, length: number, write: boolean, fn: (b: Uint8Array, off: number) => void): void {
    let off = 0;
    while (off < length) {
      const a = addr + off;
      this.handle_mm_fault(asHva(a), write);
      const m = this.follow_page(asHva(a))!;
      const inPage = a % PAGE_SIZE;
      const len = Math.min(length - off, PAGE_SIZE - inPage);
      fn(new Uint8Array(this.host.physmem, m.pfn * PAGE_SIZE + inPage, len), off);
      off += len;
    }
  }

  mmu_notifier_register(ops: MmuNotifierOps): void {
    this.notifiers.push(ops);
  }
  mmu_notifier_unregister(ops: MmuNotifierOps): void {
    this.notifiers = this.notifiers.filter((x) => x !== ops);
  }

  /** split_huge_page: notify the whole 2 MiB, then replace the PMD by 512 PTEs, same frames. */
  splitByPfn(p: Pfn): void {
    for (const [hp, pmd] of this.pmds) {
      if (p < pmd.pfn || p >= pmd.pfn + HPAGE_PMD_NR) continue;
      const base = hp * HPAGE_PMD_SIZE;
      this.notify(base, base + HPAGE_PMD_SIZE, () => {
        this.pmds.delete(hp);
        for (let i = 0; i < HPAGE_PMD_NR; i++) this.ptes.set(base / PAGE_SIZE + i, { pfn: asPfn(pmd.pfn + i), writable: pmd.writable });
      });
    }
  }

  /** khugepaged: collapse every fully populated, unpinned 2 MiB range into a new THP. */
  collapseAll(): void {
    for (const v of this.vmas) {
      for (let base = Math.ceil(v.start / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE; base + HPAGE_PMD_SIZE <= v.end; base += HPAGE_PMD_SIZE) {
        const first = base / PAGE_SIZE;
        const olds: Pte[] = [];
        for (let i = 0; i < HPAGE_PMD_NR; i++) {
          const pte = this.ptes.get(first + i);
          if (!pte || this.host.refcount[pte.pfn] !== 1) break;
          olds.push(pte);
        }
        if (olds.length !== HPAGE_PMD_NR) continue;
        this.notify(base, base + HPAGE_PMD_SIZE, () => {
          const np = this.host.allocHuge();
          const mem = new Uint8Array(this.host.physmem);
          for (let i = 0; i < HPAGE_PMD_NR; i++) {
            mem.copyWithin((np + i) * PAGE_SIZE, olds[i]!.pfn * PAGE_SIZE, (olds[i]!.pfn + 1) * PAGE_SIZE);
            this.ptes.delete(first + i);
          }
          // Old frames are not reused by this fake (keeps it simple); mark them free.
          for (const o of olds) this.host.refcount[o.pfn] = 0;
          this.pmds.set(base / HPAGE_PMD_SIZE, { pfn: np, writable: true });
          this.host.counters.thp_collapse_alloc!++;
        });
      }
    }
  }
}
