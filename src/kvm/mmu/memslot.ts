/**
 * Memslots: KVM_SET_USER_MEMORY_REGION for hugevisor's EPT mode.
 *
 * A memslot says "guest-physical [gpa, gpa+size) is the VMM's anonymous memory at
 * [hva, hva+size)". The EPT violation handler resolves a GPA through these (gfn_to_hva),
 * and the MMU notifier goes the other way (an invalidated HVA range → the GPAs to zap).
 * Slots are validated at the edge with ConfigErrors that name the problem; a VM holds a
 * few of them, so lookups are linear scans over a short sorted array (as KVM 2.6.38's
 * gfn_to_memslot was).
 */
import {
  HPAGE_PMD_SIZE,
  PAGE_SIZE,
  gpa as asGpa,
  hva as asHva,
  isAligned,
  type Gpa,
  type Hva,
  gpaAdd,
} from '../../util/address.ts';
import { ConfigError } from '../../util/errors.ts';
import type { MmStructApi } from '../../mm/types.ts';
import { checkGuestRange, type GuestMemory } from '../../guest/memory.ts';

/** KVM_USER_MEM_SLOTS of 2.6.38 x86 (KVM_MEMORY_SLOTS). */
export const KVM_USER_MEM_SLOTS = 32;
/** Guest-physical addresses the 4-level EPT can map (48 bits). */
export const GPA_LIMIT = 2 ** 48;
/** KVM_MEM_LOG_DIRTY_PAGES */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;

export interface UserMemoryRegion {
  /** Slot number, 0 .. KVM_USER_MEM_SLOTS-1. */
  slot: number;
  /** guest_phys_addr: 4 KiB aligned. */
  gpa: Gpa;
  /** memory_size in bytes: a non-zero multiple of 4 KiB. */
  size: number;
  /** userspace_addr: 4 KiB aligned HVA of the VMM's anonymous mapping. */
  hva: Hva;
  /** KVM_MEM_LOG_DIRTY_PAGES or 0. */
  flags?: number;
}

/** One registered slot (struct kvm_memory_slot). */
export interface Memslot {
  readonly id: number;
  readonly gpa: Gpa;
  readonly size: number;
  readonly hva: Hva;
  flags: number;
  /** One bit per 4 KiB page while dirty logging is on (dirty_bitmap), else null. */
  dirtyBitmap: Uint8Array | null;
  /**
   * The lpage "disallow" of KVM: the GPA and HVA are not congruent modulo 2 MiB, so no
   * 2 MiB EPT leaf can ever map a host huge page inside this slot.
   */
  readonly lpageMisaligned: boolean;
}

const hex = (n: number) => '0x' + n.toString(16);

/** gfn_to_hva: the HVA backing `g` in `slot` (the caller checked that `slot` contains it). */
export function gpaToHva(slot: Memslot, g: Gpa): Hva {
  return asHva(slot.hva + (g - slot.gpa));
}

/** The inverse of gpaToHva inside one slot. */
export function hvaToGpa(slot: Memslot, h: Hva): Gpa {
  return asGpa(slot.gpa + (h - slot.hva));
}

export function slotContainsGpa(slot: Memslot, g: Gpa): boolean {
  return g >= slot.gpa && g < slot.gpa + slot.size;
}

/**
 * Whether [base, base+2 MiB) (base 2 MiB aligned) may be mapped by one 2 MiB EPT leaf as far
 * as the slot is concerned: wholly inside the slot and GPA ≡ HVA (mod 2 MiB). These are the
 * conditions KVM encodes as lpage_info write_count at slot creation.
 */
export function slotAllowsLargePage(slot: Memslot, base: Gpa): boolean {
  return !slot.lpageMisaligned && base >= slot.gpa && base + HPAGE_PMD_SIZE <= slot.gpa + slot.size;
}

/** The memslots of one VM. */
export class MemslotTable {
  private slots: Memslot[] = [];

  get all(): readonly Memslot[] {
    return this.slots;
  }

  /** gfn_to_memslot: the slot containing `g`, or null (an MMIO address). */
  lookup(g: Gpa): Memslot | null {
    for (const s of this.slots) if (g >= s.gpa && g < s.gpa + s.size) return s;
    return null;
  }

  byId(id: number): Memslot {
    const s = this.slots.find((x) => x.id === id);
    if (!s) throw new ConfigError(`memslot ${id} does not exist`);
    return s;
  }

  /**
   * Validate and register a region. `mm` (optional) lets the table check that the HVA
   * range is really mapped; the VMM normally obtained it from mm.mmap.
   */
  add(r: UserMemoryRegion): Memslot {
    const { slot, gpa: g, size, hva: h } = r;
    const flags = r.flags ?? 0;
    if (!Number.isInteger(slot) || slot < 0 || slot >= KVM_USER_MEM_SLOTS) {
      throw new ConfigError(`memslot: slot must be an integer in [0, ${KVM_USER_MEM_SLOTS - 1}], got ${slot}`);
    }
    if (this.slots.some((s) => s.id === slot)) throw new ConfigError(`memslot ${slot} already exists`);
    if (!Number.isInteger(size) || size < 0) throw new ConfigError(`memslot ${slot}: size must be a non-negative integer, got ${size}`);
    if (size === 0) throw new ConfigError(`memslot ${slot}: size is zero (delete a slot with deleteMemslot)`);
    if (!isAligned(size, PAGE_SIZE)) throw new ConfigError(`memslot ${slot}: size ${hex(size)} is not a multiple of 4 KiB`);
    if (!Number.isInteger(g) || g < 0) throw new ConfigError(`memslot ${slot}: guest physical address must be a non-negative integer, got ${g}`);
    if (!isAligned(g, PAGE_SIZE)) throw new ConfigError(`memslot ${slot}: guest physical address ${hex(g)} is not 4 KiB aligned`);
    if (!Number.isInteger(h) || h <= 0) throw new ConfigError(`memslot ${slot}: userspace address must be a positive integer, got ${h}`);
    if (!isAligned(h, PAGE_SIZE)) throw new ConfigError(`memslot ${slot}: userspace address ${hex(h)} is not 4 KiB aligned`);
    if (g + size > GPA_LIMIT) {
      throw new ConfigError(`memslot ${slot}: [${hex(g)}, ${hex(g + size)}) exceeds the 48-bit guest-physical limit`);
    }
    if (flags !== 0 && flags !== KVM_MEM_LOG_DIRTY_PAGES) throw new ConfigError(`memslot ${slot}: unknown flags ${hex(flags)}`);
    for (const s of this.slots) {
      if (g < s.gpa + s.size && s.gpa < g + size) {
        throw new ConfigError(
          `memslot ${slot}: [${hex(g)}, ${hex(g + size)}) overlaps memslot ${s.id} [${hex(s.gpa)}, ${hex(s.gpa + s.size)})`,
        );
      }
    }
    const m: Memslot = {
      id: slot,
      gpa: g,
      size,
      hva: h,
      flags,
      dirtyBitmap: flags & KVM_MEM_LOG_DIRTY_PAGES ? new Uint8Array(Math.ceil(size / PAGE_SIZE / 8)) : null,
      lpageMisaligned: (g % HPAGE_PMD_SIZE) !== (h % HPAGE_PMD_SIZE),
    };
    this.slots.push(m);
    this.slots.sort((a, b) => a.gpa - b.gpa);
    return m;
  }

  remove(id: number): Memslot {
    const s = this.byId(id);
    this.slots = this.slots.filter((x) => x !== s);
    return s;
  }

  /**
   * The GPA ranges backed by HVA [start, end) (the notifier's hva → gfn walk, as
   * kvm_handle_hva does for every slot).
   */
  hvaRangeToGpaRanges(start: Hva, end: Hva): Array<{ slot: Memslot; start: Gpa; end: Gpa }> {
    const out: Array<{ slot: Memslot; start: Gpa; end: Gpa }> = [];
    for (const s of this.slots) {
      const lo = Math.max(start, s.hva);
      const hi = Math.min(end, s.hva + s.size);
      if (lo < hi) out.push({ slot: s, start: hvaToGpa(s, asHva(lo)), end: hvaToGpa(s, asHva(hi)) });
    }
    return out;
  }
}

/**
 * Guest memory as the loader sees it in EPT mode (src/guest/memory.ts GuestMemory): bytes
 * at a GPA are the VMM's bytes at the slot's HVA, written through the host mm, so they fault
 * host pages in exactly as QEMU's loader would, THP or not. Addresses in a hole between
 * slots are a ConfigError.
 */
export class EptGuestMemory implements GuestMemory {
  constructor(
    private readonly mm: MmStructApi,
    private readonly slots: MemslotTable,
  ) {}

  /** End of the highest slot: valid addresses are in [0, size) minus the holes. */
  get size(): number {
    let end = 0;
    for (const s of this.slots.all) end = Math.max(end, s.gpa + s.size);
    return end;
  }

  write(g: Gpa, data: Uint8Array): void {
    checkGuestRange(this, g, data.length);
    this.forEachPiece(g, data.length, (h, off, len) => this.mm.writeBytes(h, data.subarray(off, off + len)));
  }

  read(g: Gpa, length: number): Uint8Array {
    checkGuestRange(this, g, length);
    const out = new Uint8Array(length);
    this.forEachPiece(g, length, (h, off, len) => out.set(this.mm.readBytes(h, len), off));
    return out;
  }

  /**
   * Zero a range. Whole pages the host has never mapped already read as zero (anonymous
   * memory), so they are skipped rather than faulted in: the loader zeroing a large BSS
   * must not populate it. (Valid while nothing was swapped out, i.e. at load time.)
   */
  zero(g: Gpa, length: number): void {
    checkGuestRange(this, g, length);
    this.forEachPiece(g, length, (h, _off, len) => {
      let a = h as number;
      const end = a + len;
      while (a < end) {
        const next = Math.min(end, (Math.floor(a / PAGE_SIZE) + 1) * PAGE_SIZE);
        const wholePage = a % PAGE_SIZE === 0 && next - a === PAGE_SIZE;
        if (!wholePage || this.mm.follow_page(asHva(a)) !== null) this.mm.writeBytes(asHva(a), new Uint8Array(next - a));
        a = next;
      }
    });
  }

  private forEachPiece(g: Gpa, length: number, fn: (h: Hva, off: number, len: number) => void): void {
    let off = 0;
    while (off < length) {
      const cur = gpaAdd(g, off);
      const s = this.slots.lookup(cur);
      if (!s) throw new ConfigError(`guest memory access at ${hex(cur)} is outside every memslot`);
      const len = Math.min(length - off, s.gpa + s.size - cur);
      fn(gpaToHva(s, cur), off, len);
      off += len;
    }
  }
}
