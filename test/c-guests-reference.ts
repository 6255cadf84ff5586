// Test helper (not a test file): independent TypeScript versions of the C workloads'
// deterministic algorithms (guests/c/*.c headers state them), to recompute their checksums at
// small sizes. BigInt throughout; BigUint64Array stores wrap mod 2^64 as the guests' u64 do.
const M64 = (1n << 64n) - 1n;
export const CHECKSUM_INIT = 0xcbf29ce484222325n;
/** hv_mix: one FNV-1a step over a 64-bit word. */
export const mix = (h: bigint, v: bigint) => ((h ^ v) * 0x100000001b3n) & M64;

/** hv_rand: splitmix64. */
export function splitmix(seed: bigint) {
  let s = seed;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & M64;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
}

const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;

/** c-hello: count numbers (rand & 0xffff), their sum, hv_checksum over the array's bytes. */
export function hello(count: number, seed: number): string {
  const rand = splitmix(BigInt(seed));
  let sum = 0n;
  let h = CHECKSUM_INIT;
  for (let i = 0; i < count; i++) {
    const v = rand() & 0xffffn;
    sum += v;
    for (let b = 0n; b < 64n; b += 8n) h = mix(h, (v >> b) & 0xffn);
  }
  return `count ${count} sum ${sum} checksum ${hex(h)}`;
}

/** c-gups: the HPCC RandomAccess update rule over Table[i] = i. */
export function gups(bytes: number, updates: number, start: number): string {
  const words = bytes / 8;
  const table = new BigUint64Array(words).map((_, i) => BigInt(i));
  const mask = BigInt(words - 1);
  let ran = BigInt(start);
  const n = updates || 4 * words;
  for (let i = 0; i < n; i++) {
    ran = ((ran << 1n) & M64) ^ (ran >> 63n ? 7n : 0n);
    table[Number(ran & mask)] ^= ran;
  }
  let h = CHECKSUM_INIT;
  for (const v of table) h = mix(h, v);
  return `c-gups: table ${bytes} bytes updates ${n} checksum ${hex(h)}`;
}

/** c-stream: copy, scale, add, triad over a[i] = i, b[i] = 2i + 1, c[i] = 0. */
export function stream(n: number, iterations: number): string {
  const a = new BigUint64Array(n).map((_, i) => BigInt(i));
  const b = new BigUint64Array(n).map((_, i) => BigInt(2 * i + 1));
  const c = new BigUint64Array(n);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) c[i] = a[i]!;
    for (let i = 0; i < n; i++) b[i] = BigInt.asUintN(64, 3n * c[i]!);
    for (let i = 0; i < n; i++) c[i] = BigInt.asUintN(64, a[i]! + b[i]!);
    for (let i = 0; i < n; i++) a[i] = BigInt.asUintN(64, b[i]! + 3n * c[i]!);
  }
  const sum = (x: BigUint64Array) => x.reduce((s, v) => (s + v) & M64, 0n);
  return `c-stream: elements ${n} iterations ${iterations} checksum ${hex(mix(mix(mix(CHECKSUM_INIT, sum(a)), sum(b)), sum(c)))}`;
}

/** c-chase: Sattolo's cycle, chased from node 0. */
export function chase(n: number, steps: number, seed: number): string {
  const rand = splitmix(BigInt(seed));
  const p = new Uint32Array(n).map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Number(rand() % BigInt(i));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  let at = 0;
  let sum = 0n;
  for (let s = 0; s < steps; s++) {
    at = p[at]!;
    sum += BigInt(at);
  }
  return `c-chase: nodes ${n} steps ${steps} final ${at} checksum ${hex(mix(mix(CHECKSUM_INIT, BigInt(at)), sum & M64))}`;
}

/** c-sort: whatever sorts the keys gives this checksum. */
export function sort(n: number, seed: number): string {
  const rand = splitmix(BigInt(seed));
  const keys = new BigUint64Array(n).map(() => rand()).sort();
  let h = CHECKSUM_INIT;
  for (const k of keys) h = mix(h, k);
  return `c-sort: elements ${n} checksum ${hex(h)}`;
}

/** c-hash: linear probing with backward-shift deletion, the same operation mix. */
export function hash(slots: number, ops: number, seed: number): string {
  const rand = splitmix(BigInt(seed));
  const keys = new BigUint64Array(slots);
  const counts = new BigUint64Array(slots);
  const mask = slots - 1;
  const shift = BigInt(64 - Math.log2(slots));
  const home = (k: bigint) => Number(((k * 0x9e3779b97f4a7c15n) & M64) >> shift);
  const find = (k: bigint) => {
    for (let i = home(k); ; i = (i + 1) & mask) {
      if (keys[i] === k) return i;
      if (keys[i] === 0n) return -1;
    }
  };
  let hits = 0n, misses = 0n, live = 0n;
  for (let o = 0; o < ops; o++) {
    const r = rand();
    const key = 1n + (r >> 8n) % BigInt(slots / 2);
    const op = Number(r & 3n);
    if (op <= 1) {
      let i = home(key);
      while (keys[i] !== 0n && keys[i] !== key) i = (i + 1) & mask;
      if (keys[i] === key) counts[i]!++;
      else (keys[i] = key), (counts[i] = 1n), live++;
    } else if (op === 2) {
      if (find(key) >= 0) hits++;
      else misses++;
    } else {
      let hole = find(key);
      if (hole < 0) continue;
      live--;
      for (let i = (hole + 1) & mask; keys[i] !== 0n; i = (i + 1) & mask) {
        const h = home(keys[i]!);
        if (((i - h) & mask) >= ((i - hole) & mask)) {
          keys[hole] = keys[i]!;
          counts[hole] = counts[i]!;
          hole = i;
        }
      }
      keys[hole] = 0n;
      counts[hole] = 0n;
    }
  }
  let h = mix(mix(mix(CHECKSUM_INIT, hits), misses), live);
  for (let i = 0; i < slots; i++) h = mix(mix(h, keys[i]!), counts[i]!);
  return `c-hash: slots ${slots} operations ${ops} live ${live} hits ${hits} misses ${misses} checksum ${hex(h)}`;
}
