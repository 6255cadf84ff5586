/**
 * Test-only helpers for driving the native Vcpu directly: assemble a snippet with GNU as/ld,
 * build an identity-mapped machine in a fresh arena (boot-protocol-like state: long mode,
 * flat GDT, no IDT), run it and read registers and counters by name. The real ELF loader and
 * boot layout live in src/guest/ (hv); this is deliberately small and independent of it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAddon } from '../src/native/addon.ts';
import { REG, type NativeArena, type NativeVcpu } from '../src/native/types.ts';

export const CODE = 0x100000; // snippets are linked here (1 MiB, like the sample guests)
export const PML4 = 0x400000; // PML4, PDPT, PD, then the PTs (up to 2 MiB of them for 1 GiB)
export const GDT = 0x30000;
export const STACK_TOP = 0x200000;
export const DATA = 0x300000; // scratch data area for tests
export const IDT = 0x40000;

const cache = new Map<string, Uint8Array>();

/** Assembles AT&T source (GNU as) into a flat binary linked at `base`. */
export function assemble(src: string, base = CODE): Uint8Array {
  const key = `${base}:${src}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const dir = mkdtempSync(join(tmpdir(), 'hv-vcpu-'));
  try {
    writeFileSync(join(dir, 'a.s'), `.text\n${src}\n`);
    execFileSync('as', ['--64', '-o', join(dir, 'a.o'), join(dir, 'a.s')]);
    execFileSync('ld', ['-static', '-nostdlib', '-Ttext', `0x${base.toString(16)}`, '-e', '0', '--oformat', 'binary', '-o', join(dir, 'a.bin'), join(dir, 'a.o')]);
    const bin = new Uint8Array(readFileSync(join(dir, 'a.bin')));
    cache.set(key, bin);
    return bin;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * assemble() for many snippets with one `as` and one `ld` instead of two processes each
 * (vcpu-host-diff has 371 snippets: ~3.7 s of CPU apart). Each snippet starts 4 KiB-aligned
 * in one .text, so any alignment directive inside pads as it would at `base`; the bytes are
 * position-independent when the object has no relocation and nothing outside .text, which
 * is checked; otherwise (or if the batch does not assemble, e.g. two snippets define the
 * same label) each snippet is assembled alone. Same results as assemble(), cached with it.
 */
export function assembleAll(srcs: string[], base = CODE): Uint8Array[] {
  const todo = [...new Set(srcs.filter((s) => !cache.has(`${base}:${s}`)))];
  if (todo.length > 1) {
    const dir = mkdtempSync(join(tmpdir(), 'hv-vcpu-'));
    try {
      const body = todo.map((s, i) => `.text\n.p2align 12\n__hv_begin_${i}:\n${s}\n__hv_end_${i}:\n`).join('');
      writeFileSync(join(dir, 'a.s'), body);
      execFileSync('as', ['--64', '-o', join(dir, 'a.o'), join(dir, 'a.s')], { stdio: 'pipe' });
      const elf = execFileSync('readelf', ['-SrW', join(dir, 'a.o')], { encoding: 'utf8' });
      const noRelocs = /There are no relocations in this file/.test(elf);
      const otherSections = [...elf.matchAll(/^\s*\[\s*\d+\]\s+(\S+)\s+(PROGBITS|NOBITS)\s+\S+\s+\S+\s+(\S+)/gm)]
        .filter((m) => m[1] !== '.text' && parseInt(m[3], 16) > 0);
      if (noRelocs && otherSections.length === 0) {
        execFileSync('ld', ['-static', '-nostdlib', '-Ttext', `0x${base.toString(16)}`, '-e', '0', '--oformat', 'binary', '-o', join(dir, 'a.bin'), join(dir, 'a.o')]);
        const bin = readFileSync(join(dir, 'a.bin'));
        const sym = new Map<string, number>();
        for (const line of execFileSync('nm', [join(dir, 'a.o')], { encoding: 'utf8' }).split('\n')) {
          const [addr, , s] = line.split(' ');
          if (s?.startsWith('__hv_')) sym.set(s, parseInt(addr, 16));
        }
        todo.forEach((s, i) => cache.set(`${base}:${s}`, new Uint8Array(bin.subarray(sym.get(`__hv_begin_${i}`)!, sym.get(`__hv_end_${i}`)!))));
      }
    } catch {
      // the batch does not assemble as one file: assemble() below takes each alone
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return srcs.map((s) => assemble(s, base));
}

export interface Machine {
  arena: NativeArena;
  vcpu: NativeVcpu;
  mem: DataView;
  bytes: Uint8Array;
  /** Register by name (REG). */
  reg(name: keyof typeof REG): bigint;
  setReg(name: keyof typeof REG, v: bigint | number): void;
  /** Counter by name (native/counters.h). */
  counter(name: string): bigint;
  /** Exit-record field by name (native/exit.h). */
  exitField(name: string): bigint;
  setExitField(name: string, v: bigint): void;
  load(code: Uint8Array, at?: number): void;
  run(max?: number): number;
  /** The page-table entry (a DataView offset) mapping `va` at 4 KiB granularity. */
  pteAddr(va: number): number;
}

export interface MachineOptions {
  memory?: number;
  /** Guest page size of the identity map: 4 KiB (default) or 2 MiB. */
  pageSize?: 4096 | 2097152;
}

/**
 * A machine with guest RAM at HPA 0 (no EPT), identity-mapped with present+writable entries,
 * CR0 = PE|ET|NE|WP|PG, CR4 = PAE, EFER = LME|LMA|NXE, flat GDT at GDT, no IDT.
 */
export function makeMachine(opts: MachineOptions = {}): Machine {
  const memory = opts.memory ?? 8 * 1024 * 1024;
  if (memory > 1 << 30) throw new Error('makeMachine: at most 1 GiB (one page directory)');
  const pageSize = opts.pageSize ?? 4096;
  const addon = loadAddon();
  const arena = new addon.Arena(memory);
  const vcpu = new addon.Vcpu(arena);
  vcpu.configureMmu({ ept: false, guestBase: 0, guestSize: memory });
  // memory <= 1 GiB: the whole arena is its first (and only) chunk.
  const mem = new DataView(arena.chunks[0]!);
  const bytes = new Uint8Array(arena.chunks[0]!);
  const put = (addr: number, v: bigint) => mem.setBigUint64(addr, v, true);
  // PML4 → one PDPT → one PD (memory ≤ 1 GiB) → PTs (4 KiB pages) or 2 MiB leaves.
  const pdpt = PML4 + 0x1000, pd = PML4 + 0x2000, pt0 = PML4 + 0x3000;
  put(PML4, BigInt(pdpt | 3));
  put(pdpt, BigInt(pd | 3));
  const chunks = Math.ceil(memory / 0x200000);
  for (let c = 0; c < chunks; c++) {
    if (pageSize === 0x200000) {
      put(pd + c * 8, BigInt(c * 0x200000) | 0x83n);
    } else {
      const pt = pt0 + c * 0x1000;
      put(pd + c * 8, BigInt(pt | 3));
      for (let e = 0; e < 512; e++) {
        const pa = c * 0x200000 + e * 0x1000;
        if (pa < memory) put(pt + e * 8, BigInt(pa | 3));
      }
    }
  }
  put(GDT + 8, 0x00209a0000000000n);
  put(GDT + 16, 0x0000920000000000n);
  const regs = vcpu.regs;
  const set = (name: keyof typeof REG, v: bigint | number) => {
    regs[REG[name]] = BigInt(v);
  };
  set('cr0', 0x80010031);
  set('cr4', 0x20);
  set('efer', 0xd00);
  set('cr3', PML4);
  set('gdtr_base', GDT);
  set('gdtr_limit', 23);
  set('cs', 8);
  for (const s of ['ds', 'es', 'ss', 'fs', 'gs'] as const) set(s, 0x10);
  set('rflags', 2);
  set('rip', CODE);
  set('rsp', STACK_TOP);
  const counterNames = addon.counterNames;
  const exitNames = addon.exitFieldNames;
  return {
    arena,
    vcpu,
    mem,
    bytes,
    reg: (name) => regs[REG[name]],
    setReg: set,
    counter: (name) => {
      const i = counterNames.indexOf(name);
      if (i < 0) throw new Error(`no counter ${name}`);
      return vcpu.counters[i];
    },
    exitField: (name) => {
      const i = exitNames.indexOf(name);
      if (i < 0) throw new Error(`no exit field ${name}`);
      return vcpu.exit[i];
    },
    setExitField: (name, v) => {
      const i = exitNames.indexOf(name);
      if (i < 0) throw new Error(`no exit field ${name}`);
      vcpu.exit[i] = v;
    },
    load: (code, at = CODE) => bytes.set(code, at),
    run: (max = 1_000_000) => vcpu.run(max),
    pteAddr: (va) => pt0 + Math.floor(va / 0x1000) * 8,
  };
}

/** Assemble `src`, load it at CODE in a new machine and return the machine (not yet run). */
export function machineWith(src: string, opts: MachineOptions = {}): Machine {
  const m = makeMachine(opts);
  m.load(assemble(src));
  return m;
}

/**
 * Installs a 64-bit IDT at IDT with interrupt gates for `vectors`, each pointing at the
 * given handler address (selector 0x08), and loads IDTR.
 */
export function installIdt(m: Machine, handlers: Record<number, number>): void {
  for (const [vs, target] of Object.entries(handlers)) {
    const v = Number(vs);
    const t = BigInt(target);
    const lo = (t & 0xffffn) | (0x08n << 16n) | (0x8en << 40n) | (((t >> 16n) & 0xffffn) << 48n);
    m.mem.setBigUint64(IDT + v * 16, lo, true);
    m.mem.setBigUint64(IDT + v * 16 + 8, t >> 32n, true);
  }
  m.setReg('idtr_base', IDT);
  m.setReg('idtr_limit', 256 * 16 - 1);
}
