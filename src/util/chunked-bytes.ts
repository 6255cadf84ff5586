/**
 * Byte access to a large buffer seen as fixed-size chunks: the native arena (host RAM) is
 * exposed to JS as a list of ArrayBuffers of `chunkSize` bytes (a power of two, 1 GiB; the
 * last may be shorter), because Node 20 refuses single ArrayBuffers above 2^32 bytes.
 *
 * Two kinds of access:
 *  - view(): a zero-copy typed-array view of a range that must lie inside one chunk. Host
 *    frames (4 KiB), aligned huge pages (2 MiB) and page tables never straddle a chunk, by
 *    construction (chunkSize is a power of two >= 2 MiB), so the mm and EPT code use this.
 *  - read()/write()/fill(): arbitrary ranges, split at chunk boundaries (guest loads).
 */
import { ConfigError } from './errors.ts';

/** The chunked form of a big buffer (NativeArena satisfies it). */
export interface ArenaChunks {
  readonly chunks: readonly ArrayBufferLike[];
  /** Bytes per chunk (a power of two); every chunk but the last has exactly this length. */
  readonly chunkSize: number;
  readonly byteLength: number;
}

/** What callers may pass as host RAM: the arena's chunks, or one plain buffer (tests, pure model). */
export type ByteSource = ArrayBufferLike | ArenaChunks;

/** Chunk size used to window a single plain buffer (and the arena's chunk size). */
export const CHUNK_SHIFT = 30;

function isChunks(src: ByteSource): src is ArenaChunks {
  return Array.isArray((src as ArenaChunks).chunks);
}

export class ChunkedBytes {
  readonly byteLength: number;
  readonly chunkShift: number;
  readonly chunkSize: number;
  /** One Uint8Array per chunk (at most 1024 for the 1 TiB maximum), made up front. */
  private readonly views: Uint8Array[];

  /** `byteLength` may be less than the source's (only a prefix is used). */
  constructor(src: ByteSource, byteLength: number = src.byteLength) {
    if (!Number.isSafeInteger(byteLength) || byteLength < 0 || byteLength > src.byteLength) {
      throw new ConfigError(`a buffer of ${src.byteLength} bytes is smaller than the ${byteLength} bytes asked for`);
    }
    this.byteLength = byteLength;
    if (isChunks(src)) {
      const size = src.chunkSize;
      // >= 2 MiB so that an aligned huge page never straddles a chunk.
      if (!Number.isSafeInteger(size) || size < 2 ** 21 || !Number.isInteger(Math.log2(size))) {
        throw new ConfigError(`chunked buffer: chunkSize must be a power of two >= 2 MiB, got ${size}`);
      }
      let total = 0;
      src.chunks.forEach((c, i) => {
        if (c.byteLength > size || (i < src.chunks.length - 1 && c.byteLength !== size)) {
          throw new ConfigError(`chunked buffer: chunk ${i} has ${c.byteLength} bytes, chunkSize is ${size}`);
        }
        total += c.byteLength;
      });
      if (total !== src.byteLength) throw new ConfigError(`chunked buffer: chunks hold ${total} bytes, byteLength says ${src.byteLength}`);
      this.chunkSize = size;
      this.chunkShift = Math.log2(size);
      // Views cover only the first byteLength bytes, so a view's end is the bounds check.
      this.views = src.chunks.slice(0, Math.ceil(byteLength / size)).map((c, i) => new Uint8Array(c, 0, Math.min(c.byteLength, byteLength - i * size)));
    } else {
      this.chunkShift = CHUNK_SHIFT;
      this.chunkSize = 2 ** CHUNK_SHIFT;
      const n = Math.ceil(byteLength / this.chunkSize);
      this.views = Array.from({ length: n }, (_, i) => new Uint8Array(src, i * this.chunkSize, Math.min(this.chunkSize, byteLength - i * this.chunkSize)));
    }
  }

  private chunk(i: number): Uint8Array {
    return this.views[i]!;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.byteLength) {
      throw new RangeError(`bytes [${offset}, ${offset + length}) are outside [0, ${this.byteLength})`);
    }
  }

  /**
   * A zero-copy view of [offset, offset + length), which must not straddle a chunk. The
   * host fault path calls this per frame: the common case is one lookup and subarray.
   */
  view(offset: number, length: number): Uint8Array {
    const i = Math.floor(offset / this.chunkSize);
    const off = offset - i * this.chunkSize;
    const v = this.views[i];
    if (v === undefined || !Number.isInteger(off) || !Number.isInteger(length) || length < 0 || off + length > v.length) {
      this.check(offset, length);
      throw new RangeError(`bytes [${offset}, ${offset + length}) straddle a ${this.chunkSize}-byte chunk boundary`);
    }
    return v.subarray(off, off + length);
  }

  /** A Uint32Array over `count` words at a 4-byte aligned `offset` (one chunk). */
  u32(offset: number, count: number): Uint32Array {
    const v = this.view(offset, count * 4);
    return new Uint32Array(v.buffer, v.byteOffset, count);
  }

  /** Calls fn(view, done) for the pieces of [offset, offset + length) in each chunk. */
  private each(offset: number, length: number, fn: (v: Uint8Array, done: number) => void): void {
    this.check(offset, length);
    let done = 0;
    while (done < length) {
      const cur = offset + done;
      const i = Math.floor(cur / this.chunkSize);
      const off = cur - i * this.chunkSize;
      const n = Math.min(length - done, this.chunkSize - off);
      fn(this.chunk(i).subarray(off, off + n), done);
      done += n;
    }
  }

  /** A copy of `length` bytes at `offset` (may cross chunks). */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.each(offset, length, (v, done) => out.set(v, done));
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    this.each(offset, data.length, (v, done) => v.set(data.subarray(done, done + v.length)));
  }

  fill(offset: number, length: number, value = 0): void {
    this.each(offset, length, (v) => v.fill(value));
  }
}
