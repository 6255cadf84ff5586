/**
 * Byte access to simulated host RAM: host PFN n at byte n·4096 of the native arena, seen as
 * its list of 1 GiB chunk ArrayBuffers (or one plain ArrayBuffer for pure-model use) through
 * src/util/chunked-bytes.ts. A frame and an aligned 2 MiB huge page never straddle a chunk
 * (the chunk size is a power of two >= 2 MiB), so frames() is always one zero-copy view;
 * read()/write() of arbitrary ranges split at frame boundaries.
 */
import type { Hpa, Pfn } from '../util/address.ts';
import { PAGE_SIZE } from '../util/address.ts';
import { ChunkedBytes, type ByteSource } from '../util/chunked-bytes.ts';
import { ConfigError } from '../util/errors.ts';

export class PhysMem {
  readonly byteLength: number;
  /** The chunked bytes (also what the EPT tables are written through). */
  readonly bytes: ChunkedBytes;

  constructor(source: ByteSource, byteLength: number = source.byteLength) {
    if (byteLength > source.byteLength) {
      throw new ConfigError(`physmem: buffer of ${source.byteLength} bytes is smaller than memoryBytes ${byteLength}`);
    }
    this.bytes = new ChunkedBytes(source, byteLength);
    this.byteLength = byteLength;
  }

  /** A view of `nr` whole frames from `pfn` (an aligned run of up to 512 never crosses a chunk). */
  frames(pfn: Pfn, nr: number = 1): Uint8Array {
    const a = pfn * PAGE_SIZE;
    const len = nr * PAGE_SIZE;
    if (a + len > this.byteLength) throw new RangeError(`physmem: frames ${pfn}+${nr} beyond RAM`);
    return this.bytes.view(a, len);
  }

  /**
   * Is frame `pfn` all zero? (memchr_inv(addr, 0, PAGE_SIZE) == NULL, as thp_underused and
   * the split's zero-page remap ask.) Read 8 bytes at a time: a frame is 8-byte aligned.
   */
  frameIsZero(pfn: Pfn): boolean {
    const v = this.frames(pfn);
    const q = new BigUint64Array(v.buffer, v.byteOffset, PAGE_SIZE / 8);
    for (let i = 0; i < q.length; i++) if (q[i] !== 0n) return false;
    return true;
  }

  /** clear_highpage / clear_huge_page: zero `nr` frames. */
  zeroFrames(pfn: Pfn, nr: number = 1): void {
    this.frames(pfn, nr).fill(0);
  }

  /** copy_user_highpage / copy_user_huge_page. */
  copyFrames(dst: Pfn, src: Pfn, nr: number = 1): void {
    this.frames(dst, nr).set(this.frames(src, nr));
  }

  /** Bytes at a host-physical address (a copy), within one frame or across frames and chunks. */
  read(a: Hpa, length: number): Uint8Array {
    return this.bytes.read(a, length);
  }

  write(a: Hpa, data: Uint8Array): void {
    this.bytes.write(a, data);
  }
}
