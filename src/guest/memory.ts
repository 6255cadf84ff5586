/**
 * Guest-physical byte access for the VMM's own writes (the ELF loader, the boot tables).
 * The vCPU never goes through this: it reaches guest memory through its MMU. Keeping the
 * loader on this small interface is what lets EPT mode plug in: there a Gpa goes
 * memslot → Hva → host mm (faulting host pages in), here it is one contiguous arena range.
 */
import type { Gpa } from '../util/address.ts';
import { ChunkedBytes, type ByteSource } from '../util/chunked-bytes.ts';
import { ConfigError } from '../util/errors.ts';

export interface GuestMemory {
  /** Bytes of guest-physical memory: valid addresses are [0, size). */
  readonly size: number;
  /** Copy `data` to guest-physical `addr`. The range must lie inside [0, size). */
  write(addr: Gpa, data: Uint8Array): void;
  /** A copy of `length` bytes at guest-physical `addr`. */
  read(addr: Gpa, length: number): Uint8Array;
  /**
   * Make `length` bytes at `addr` read as zero. Guest RAM starts zeroed, so a backend may
   * skip ranges it knows were never written (EPT mode: never faulted in).
   */
  zero(addr: Gpa, length: number): void;
}

/** Throws unless [addr, addr + length) lies inside [0, size). */
export function checkGuestRange(mem: { readonly size: number }, addr: number, length: number): void {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || addr < 0 || length < 0 || addr + length > mem.size) {
    throw new RangeError(`guest-physical range 0x${addr.toString(16)}+0x${length.toString(16)} is outside guest memory [0, 0x${mem.size.toString(16)})`);
  }
}

/**
 * No-EPT guest memory: guest-physical [0, size) is the byte range [base, base + size) of
 * the arena (its chunk list; or one plain ArrayBuffer in tests). Guest ranges may cross
 * a 1 GiB chunk boundary: reads, writes and zeroing are split there (ChunkedBytes).
 */
export class LinearGuestMemory implements GuestMemory {
  readonly size: number;
  readonly base: number;
  private readonly bytes: ChunkedBytes;
  private readonly source: ByteSource | ChunkedBytes;

  constructor(source: ByteSource | ChunkedBytes, base: number, size: number) {
    if (!Number.isSafeInteger(base) || base < 0 || base % 4096 !== 0) {
      throw new ConfigError(`guest memory base must be a 4 KiB-aligned offset, got ${base}`);
    }
    if (!Number.isSafeInteger(size) || size <= 0 || base + size > source.byteLength) {
      throw new ConfigError(`guest memory [${base}, ${base + size}) does not fit in a buffer of ${source.byteLength} bytes`);
    }
    this.bytes = source instanceof ChunkedBytes ? source : new ChunkedBytes(source);
    this.source = source;
    this.base = base;
    this.size = size;
  }

  write(addr: Gpa, data: Uint8Array): void {
    checkGuestRange(this, addr, data.length);
    this.bytes.write(this.base + addr, data);
  }

  read(addr: Gpa, length: number): Uint8Array {
    checkGuestRange(this, addr, length);
    return this.bytes.read(this.base + addr, length);
  }

  /**
   * Zero a range. Whole 4 KiB pages of an arena go back to the kernel (MADV_DONTNEED reads
   * as zeros) instead of being written, so a large bss costs nothing until the guest touches
   * it, as in EPT mode; the partial pages at the edges are written.
   */
  zero(addr: Gpa, length: number): void {
    checkGuestRange(this, addr, length);
    const start = this.base + addr;
    const end = start + length;
    const discard = (this.source as { discard?: (offset: number, length: number) => boolean }).discard;
    const first = Math.ceil(start / 4096) * 4096;
    const last = Math.floor(end / 4096) * 4096;
    if (!discard || last <= first || !discard.call(this.source, first, last - first)) {
      this.bytes.fill(start, length, 0);
      return;
    }
    if (first > start) this.bytes.fill(start, first - start, 0);
    if (end > last) this.bytes.fill(last, end - last, 0);
  }
}
