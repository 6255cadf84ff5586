/**
 * Byte access to simulated host RAM: host PFN n at byte n·4096 of one buffer (the native
 * arena's external ArrayBuffer, or a plain ArrayBuffer for pure-model use). Typed-array
 * views are limited in length, so the buffer is seen through 1 GiB windows created lazily;
 * a frame (and an aligned 2 MiB huge page) never straddles a window.
 */
import type { Hpa, Pfn } from '../util/address.ts';
import { PAGE_SIZE } from '../util/address.ts';
import { ConfigError } from '../util/errors.ts';

const WINDOW_SHIFT = 30;
const WINDOW = 2 ** WINDOW_SHIFT;

export class PhysMem {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly byteLength: number;
  private readonly windows: Uint8Array[] = [];

  constructor(buffer: ArrayBuffer | SharedArrayBuffer, byteLength: number = buffer.byteLength) {
    if (byteLength > buffer.byteLength) {
      throw new ConfigError(`physmem: buffer of ${buffer.byteLength} bytes is smaller than memoryBytes ${byteLength}`);
    }
    this.buffer = buffer;
    this.byteLength = byteLength;
  }

  private win(i: number): Uint8Array {
    let w = this.windows[i];
    if (!w) {
      const start = i * WINDOW;
      w = new Uint8Array(this.buffer, start, Math.min(WINDOW, this.byteLength - start));
      this.windows[i] = w;
    }
    return w;
  }

  /** A view of `nr` whole frames from `pfn` (must not cross a 1 GiB window). */
  frames(pfn: Pfn, nr: number = 1): Uint8Array {
    const a = pfn * PAGE_SIZE;
    const len = nr * PAGE_SIZE;
    if (a + len > this.byteLength) throw new RangeError(`physmem: frames ${pfn}+${nr} beyond RAM`);
    const i = Math.floor(a / WINDOW);
    const off = a - i * WINDOW;
    if (off + len > WINDOW) throw new RangeError(`physmem: frames ${pfn}+${nr} straddle a window`);
    return this.win(i).subarray(off, off + len);
  }

  /** clear_highpage / clear_huge_page: zero `nr` frames. */
  zeroFrames(pfn: Pfn, nr: number = 1): void {
    this.frames(pfn, nr).fill(0);
  }

  /** copy_user_highpage / copy_user_huge_page. */
  copyFrames(dst: Pfn, src: Pfn, nr: number = 1): void {
    this.frames(dst, nr).set(this.frames(src, nr));
  }

  /** Bytes at a host-physical address (a copy), within one frame or across frames. */
  read(a: Hpa, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const cur = a + done;
      const pfn = Math.floor(cur / PAGE_SIZE) as Pfn;
      const off = cur - pfn * PAGE_SIZE;
      const n = Math.min(length - done, PAGE_SIZE - off);
      out.set(this.frames(pfn).subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  write(a: Hpa, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const cur = a + done;
      const pfn = Math.floor(cur / PAGE_SIZE) as Pfn;
      const off = cur - pfn * PAGE_SIZE;
      const n = Math.min(data.length - done, PAGE_SIZE - off);
      this.frames(pfn).set(data.subarray(done, done + n), off);
      done += n;
    }
  }
}
