// Helpers shared by the guest tests (not a test file): symbols and image extents of the
// built guests, an independent model of the docs/guest-abi.md boot layout, and reference
// computations of the bench guests' checksums.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(import.meta.dirname, '..');
export const MiB = 1024 * 1024;
export const guestElf = (name: string) => join(root, 'build', 'guests', `${name}.elf`);
export const hex = (v: bigint | number) => `0x${BigInt(v).toString(16).padStart(16, '0')}`;
const M64 = (1n << 64n) - 1n;
const LCG_A = 6364136223846793005n;
const LCG_C = 1442695040888963407n;

/** The guests are built by `npm install` / `npm run build:guests`; fail clearly if not. */
export function requireBuiltGuests(): void {
  for (const g of ['hello', 'isa-selftest', 'demand-paging', 'boot-info']) {
    if (!existsSync(guestElf(g))) throw new Error(`${guestElf(g)} missing: run npm run build:guests`);
  }
}

export function symbol(guest: string, name: string): bigint {
  const out = execFileSync('nm', [guestElf(guest)], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.endsWith(` ${name}`));
  if (!line) throw new Error(`symbol ${name} not in ${guest}`);
  return BigInt(`0x${line.split(' ')[0]}`);
}

export function imageEnd(guest: string): number {
  const b = readFileSync(guestElf(guest));
  const phoff = Number(b.readBigUInt64LE(32));
  let end = 0;
  for (let i = 0; i < b.readUInt16LE(56); i++) {
    const o = phoff + i * b.readUInt16LE(54);
    if (b.readUInt32LE(o) === 1) end = Math.max(end, Number(b.readBigUInt64LE(o + 24) + b.readBigUInt64LE(o + 40)));
  }
  return end;
}

/** Independent model of docs/guest-abi.md "Image and boot": addresses and the boot-info guest's table hash. */
export function bootLayout(imageEndAddr: number, memory: number, pageSize: number) {
  const K4 = 4096, M2 = 2 * MiB, G1 = 1024 * MiB;
  let next = Math.ceil(imageEndAddr / K4) * K4;
  const pages = new Map<number, bigint[]>();
  const alloc = () => { const a = next; next += K4; pages.set(a, new Array(512).fill(0n)); return a; };
  const pml4 = alloc();
  let pdpt = 0;
  for (let g = 0; g * G1 < memory; g++) {
    if (g % 512 === 0) { pdpt = alloc(); pages.get(pml4)![g / 512] = BigInt(pdpt | 3); }
    const gbase = g * G1;
    if (pageSize === G1 && gbase + G1 <= memory) { pages.get(pdpt)![g % 512] = BigInt(gbase) | 0x83n; continue; }
    const pd = alloc();
    pages.get(pdpt)![g % 512] = BigInt(pd) | 3n;
    for (let c = 0; c < 512 && gbase + c * M2 < memory; c++) {
      const cbase = gbase + c * M2;
      if (pageSize >= M2 && cbase + M2 <= memory) { pages.get(pd)![c] = BigInt(cbase) | 0x83n; continue; }
      const pt = alloc();
      pages.get(pd)![c] = BigInt(pt) | 3n;
      for (let p = 0; p < 512 && cbase + p * K4 < memory; p++) pages.get(pt)![p] = BigInt(cbase + p * K4) | 3n;
    }
  }
  let h = 0xcbf29ce484222325n;   // boot-info.s hash_range: FNV-1a style over qwords
  for (const [, q] of [...pages].sort((a, b) => a[0] - b[0])) for (const v of q) h = ((h ^ v) * 0x100000001b3n) & M64;
  const bootInfo = next;
  return { pml4, tablePages: pages.size, hash: h, bootInfo, gdt: bootInfo + K4, freeStart: bootInfo + 2 * K4 + 64 * 1024 };
}

/** The boot-info guest's expected console for a layout (lines up to the GDT descriptors). */
export function bootInfoHead(memory: number, pageSize: number, args: bigint[], cmdline: string | undefined): string[] {
  const L = bootLayout(imageEnd('boot-info'), memory, pageSize);
  return [
    `memory ${memory}`,
    `free_start ${hex(L.freeStart)} pml4 ${hex(L.pml4)} boot_info ${hex(L.bootInfo)}`,
    `page size ${pageSize}`,
    cmdline === undefined ? `cmdline ${hex(0)}` : `cmdline ${hex(L.bootInfo + 256)} "${cmdline}"`,
    `args ${args.length}`,
    ...args.map((a, i) => `arg${i}=${a}`),
    `boot tables: pages ${L.tablePages} hash ${hex(L.hash)}`,
  ];
}

// Reference computations of what the bench guests print.
export function aluLoopChecksum(iterations: number): bigint {
  let rax = 1n, rbx = 0n;
  for (let i = 0; i < iterations; i++) { rax = (rax + 0x9e3779b97f4a7c15n) & M64; rbx ^= rax; }
  return rbx;
}
export function memScanChecksum(region: number, passes: number): bigint {
  const n = BigInt(region / 8);
  return ((n * (n - 1n)) / 2n * BigInt(passes)) & M64;
}
export function pointerChaseFinal(region: number, steps: number): bigint {
  const mask = BigInt(region / 64 - 1);
  let i = 0n;
  for (let s = 0; s < steps; s++) i = (i * LCG_A + LCG_C) & M64 & mask;
  return i;
}
export function gupsChecksum(region: number, updates: number, seed = 1n): bigint {
  const words = new BigUint64Array(region / 8);
  const mask = BigInt(words.length - 1);
  let x = seed;
  for (let u = 0; u < updates; u++) {
    x = (x * LCG_A + LCG_C) & M64;
    const i = Number((x >> 24n) & mask);
    words[i] ^= x;
  }
  let sum = 0n;
  for (const w of words) sum = (sum + w) & M64;
  return sum;
}
export function gupsFinalState(updates: number, seed = 1n): bigint {
  let x = seed;
  for (let u = 0; u < updates; u++) x = (x * LCG_A + LCG_C) & M64;
  return x;
}
