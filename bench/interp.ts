/**
 * bench interp: guest instructions per second of the native vCPU on docs/performance.md's set
 * (ALU loop, sequential scan, pointer chase, random read-modify-write "gups" over 256 MiB),
 * each in native mode (guest RAM at HPA 0, no EPT) and in EPT mode (the same guest behind an
 * EPT whose leaves have the guest's page size, full default TLB hierarchy), side by side
 * with the same loop bodies under QEMU TCG when qemu-system-x86_64 is installed
 * (tools/qemu/bench.mjs, 4 KiB guest pages there).
 *
 * Guests are assembled here so the bench needs no loader; the vCPU runs directly (one run()
 * call per repeat, no VMM in the loop). Every run checks the counters exactly
 * (instructions, loads) so a fast-but-wrong interpreter cannot pass.
 *
 * Time bases: hugevisor figures are CPU time of this process (run() is one synchronous
 * call), with wall time in brackets; QEMU figures are wall time of its process with start-up
 * cancelled (the N-iteration run minus the 0-iteration run), so the ratio column compares
 * wall with wall; on a loaded machine the CPU figure is the steadier one.
 *
 *   npm run bench -- interp
 *   HV_BENCH_SCALE=0.2   shorter runs          HV_BENCH_REPEATS=3   repeats (median; 5)
 *   HV_BENCH_QEMU=0      skip the QEMU side    HV_BENCH_ONLY=gups   workloads whose name has it
 *
 *   npm run bench -- interp --profile
 * prints, instead, host instructions per guest instruction of each body in native mode
 * (bench/_profile.ts: callgrind counting inside the interpreter's run loop only), which the
 * machine's load does not change. Slow (valgrind): about a minute.
 */
import { ExitReason } from '../src/native/types.ts';
import { CODE, assemble, makeMachine, type Machine } from '../test/vcpu-harness.ts';
import { qemuAvailable } from '../tools/qemu/run-guest.mjs';
import { qemuGuestRate } from '../tools/qemu/bench.mjs';
import { figure } from './_figures.ts';
import { GUPS_LOOP, setGupsRegs } from './_gups-loop.ts';
import { hostPerGuest, profileChild, profileMode, reportChild } from './_profile.ts';

const REPEATS = Number(process.env.HV_BENCH_REPEATS ?? 5);
const scale = Number(process.env.HV_BENCH_SCALE ?? 1);
const only = process.env.HV_BENCH_ONLY ?? '';
const withQemu = process.env.HV_BENCH_QEMU !== '0' && qemuAvailable();
const MiB = 1 << 20;

type Mode = 'native' | 'ept';
type PageSize = 4096 | 2097152;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * A bench machine: vcpu-harness's identity-mapped guest, in EPT mode moved behind an EPT
 * that maps GPA [0, guest) to the same HPAs with leaves of the guest's page size (tables in
 * the arena above guest RAM).
 */
function machine(guest: number, pageSize: PageSize, mode: Mode): Machine {
  const m = mode === 'native' ? makeMachine({ memory: guest, pageSize }) : eptMachine(guest, pageSize);
  // Fault the host's anonymous memory in now (above the harness's page tables), so no
  // repeat pays the host kernel's first touch.
  m.bytes.fill(0, 8 * MiB, guest);
  return m;
}

function eptMachine(guest: number, pageSize: PageSize): Machine {
  const tablesAt = Math.ceil(guest / (2 * MiB)) * 2 * MiB;
  const m = makeMachine({ memory: tablesAt + 4 * MiB, pageSize });
  const put = (hpa: number, v: bigint) => m.mem.setBigUint64(hpa, v, true);
  const RWX = 7n, WB = 6n << 3n, PS = 1n << 7n;
  let next = tablesAt;
  const alloc = () => { const t = next; next += 4096; return t; };
  const pml4 = alloc(), pdpt = alloc(), pd = alloc();
  put(pml4, BigInt(pdpt) | RWX);
  put(pdpt, BigInt(pd) | RWX);
  for (let c = 0; c < Math.ceil(guest / (2 * MiB)); c++) {
    if (pageSize === 2097152) {
      put(pd + c * 8, BigInt(c * 2 * MiB) | RWX | WB | PS);
    } else {
      const pt = alloc();
      put(pd + c * 8, BigInt(pt) | RWX);
      for (let e = 0; e < 512; e++) put(pt + e * 8, BigInt(c * 2 * MiB + e * 4096) | RWX | WB);
    }
  }
  if (next > tablesAt + 4 * MiB) throw new Error('bench EPT tables overflow their area');
  m.vcpu.configureMmu({ ept: true, eptp: pml4 });
  return m;
}

interface Workload {
  name: string;
  /** HV_BENCH_SCALE of the --profile run (small: it runs under valgrind). */
  profileScale: number;
  qemu?: 'alu-loop' | 'mem-scan' | 'pointer-chase' | 'gups';
  /** Runs REPEATS times; returns CPU ns and wall ns per run and the instructions per run. */
  run(mode: Mode): { cpu: number[]; wall: number[]; instructions: number };
}

function timeRuns(m: Machine, init: (r: number) => void, expect: { instructions: bigint; loads?: bigint }) {
  const cpu: number[] = [], wall: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    m.vcpu.resetCounters();
    m.setReg('rip', CODE);
    init(r);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const why = m.run(Number.MAX_SAFE_INTEGER);
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    if (why !== ExitReason.HLT) throw new Error(`bench guest stopped with exit ${why} at rip 0x${m.reg('rip').toString(16)}`);
    const got = m.counter('instructions');
    if (got !== expect.instructions) throw new Error(`instructions: got ${got}, expected ${expect.instructions}`);
    if (expect.loads !== undefined && m.counter('loads') !== expect.loads) {
      throw new Error(`loads: got ${m.counter('loads')}, expected ${expect.loads}`);
    }
    cpu.push((c1.user + c1.system) * 1000);
    wall.push(Number(t1 - t0));
  }
  return { cpu, wall, instructions: Number(expect.instructions) };
}

const aluLoop: Workload = {
  name: 'alu-loop (add, xor, dec, jnz)',
  profileScale: 0.01,
  qemu: 'alu-loop',
  run(mode) {
    const iters = Math.round(100_000_000 * scale);
    const m = machine(8 * MiB, 4096, mode);
    m.load(assemble(`
      movabs $0x9e3779b97f4a7c15, %rsi
      mov $1, %eax
      xor %ebx, %ebx
  1:  add %rsi, %rax
      xor %rax, %rbx
      dec %rcx
      jnz 1b
      hlt`));
    return timeRuns(m, () => m.setReg('rcx', iters), { instructions: BigInt(4 * iters + 4) });
  },
};

function memScan(pageSize: PageSize): Workload {
  return {
    name: `mem-scan 64 MiB, ${pageSize === 4096 ? '4K' : '2M'} pages`,
    profileScale: 0.05,
    qemu: pageSize === 4096 ? 'mem-scan' : undefined,
    run(mode) {
      const region = Math.max(MiB, Math.round(64 * MiB * scale)) & ~0xfff;
      const base = 16 * MiB;
      const m = machine(base + region, pageSize, mode);
      m.load(assemble(`
        xor %eax, %eax
    1:  add (%rsi), %rax
        add $8, %rsi
        cmp %rdi, %rsi
        jb 1b
        hlt`));
      const words = region / 8;
      return timeRuns(m, () => { m.setReg('rsi', base); m.setReg('rdi', base + region); },
        { instructions: BigInt(4 * words + 2), loads: BigInt(words) });
    },
  };
}

// Dependent loads around one random cycle of 64-byte nodes (guests/pointer-chase.s's
// Hull-Dobell LCG), 3 instructions per step.
const pointerChase: Workload = {
  name: 'pointer-chase 64 MiB, 4K pages',
  profileScale: 0.2,
  qemu: 'pointer-chase',
  run(mode) {
    const region = 64 * MiB, base = 16 * MiB, nodes = region / 64;
    const steps = Math.round(5_000_000 * scale);
    const m = machine(base + region, 4096, mode);
    const A = 6364136223846793005n, C = 1442695040888963407n, mask = BigInt(nodes - 1);
    for (let i = 0; i < nodes; i++) {
      const nextNode = Number((BigInt(i) * A + C) & mask);
      m.mem.setBigUint64(base + i * 64, BigInt(base + nextNode * 64), true);
    }
    m.load(assemble(`
  1:  mov (%rax), %rax
      dec %rcx
      jnz 1b
      hlt`));
    return timeRuns(m, () => { m.setReg('rax', base); m.setReg('rcx', steps); },
      { instructions: BigInt(3 * steps + 1), loads: BigInt(steps) });
  },
};

// gups: random 8-byte read-modify-write over 256 MiB (docs/performance.md's QEMU anchor: 8
// instructions per update), an LCG in registers picks the word.
function gups(pageSize: PageSize): Workload {
  return {
    name: `gups 256 MiB, ${pageSize === 4096 ? '4K' : '2M'} pages`,
    profileScale: 0.1,
    qemu: pageSize === 4096 ? 'gups' : undefined,
    run(mode) {
      const region = 256 * MiB, base = 16 * MiB;
      const iters = Math.round(4_000_000 * scale);
      const m = machine(base + region, pageSize, mode);
      m.load(assemble(GUPS_LOOP));
      return timeRuns(m, (r) => setGupsRegs(m, base, region, iters, 42 + r), { instructions: BigInt(8 * iters + 1), loads: BigInt(iters) });
    },
  };
}

const workloads = [aluLoop, memScan(4096), memScan(2097152), pointerChase, gups(4096), gups(2097152)]
  .filter((w) => w.name.includes(only));

const fmt = (x: number, w = 7, d = 1) => x.toFixed(d).padStart(w);
if (profileChild) {
  // One run of the one body HV_BENCH_ONLY names exactly (bench/_profile.ts).
  const w = workloads.find((x) => x.name === only);
  if (!w) throw new Error(`--profile-child: no workload named ${only}`);
  reportChild(w.run('native').instructions);
  process.exit(0);
}
if (profileMode) {
  console.log('host instructions (callgrind, inside Cpu::run) per guest instruction, native mode');
  for (const w of workloads) {
    const env = { HV_BENCH_ONLY: w.name, HV_BENCH_REPEATS: '1', HV_BENCH_SCALE: String(w.profileScale), HV_BENCH_QEMU: '0' };
    const p = hostPerGuest(new URL(import.meta.url).pathname, env);
    console.log(`${w.name.padEnd(32)} ${fmt(p.ratio, 7, 2)}  (${(p.host / 1e6).toFixed(1)} M over ${(p.guest / 1e6).toFixed(2)} M guest instructions)`);
    figure(`${w.name}: host instructions per guest instruction`, p.ratio, 'instr', 'lower');
  }
  process.exit(0);
}
console.log(`hugevisor: guest M instr/s per CPU-second [per wall-second], median of ${REPEATS}; ` +
  `QEMU ${withQemu ? 'TCG: wall-clock, start-up cancelled, median of 3' : 'not run (not installed or HV_BENCH_QEMU=0)'}`);
console.log(`${'workload'.padEnd(32)} ${'native'.padStart(7)} ns/ins ${'[wall]'.padStart(8)}  ${'EPT'.padStart(7)} ${'[wall]'.padStart(8)} EPT/nat  ${'QEMU'.padStart(7)} ns/ins  hv/QEMU nat, EPT: cpu | wall`);
for (const w of workloads) {
  const rate = (n: number, ns: number[]) => n / (median(ns) / 1e9) / 1e6;
  const nat = w.run('native');
  const ept = w.run('ept');
  const natCpu = rate(nat.instructions, nat.cpu), natWall = rate(nat.instructions, nat.wall);
  const eptCpu = rate(ept.instructions, ept.cpu), eptWall = rate(ept.instructions, ept.wall);
  let q = '';
  if (withQemu && w.qemu) {
    const r = await qemuGuestRate(w.qemu, { repeats: 3, n: undefined });
    const qr = r.instructionsPerSecond / 1e6;
    figure(`${w.name}: QEMU TCG`, qr, 'M instr/s', 'higher');
    figure(`${w.name}: EPT vs QEMU`, eptCpu / qr, 'x', 'higher');
    q = `  ${fmt(qr)} ${fmt(r.nsPerInstruction, 6, 2)}  ${fmt(natCpu / qr, 5, 2)}x ${fmt(eptCpu / qr, 5, 2)}x  ${fmt(natWall / qr, 5, 2)}x ${fmt(eptWall / qr, 5, 2)}x`;
  }
  console.log(`${w.name.padEnd(32)} ${fmt(natCpu)} ${fmt(1e3 / natCpu, 6, 2)} [${fmt(natWall)}]  ${fmt(eptCpu)} [${fmt(eptWall)}] ${fmt((eptCpu / natCpu) * 100, 5, 0)}%${q}`);
  figure(`${w.name}: native`, natCpu, 'M instr/s', 'higher');
  figure(`${w.name}: EPT`, eptCpu, 'M instr/s', 'higher');
}
console.log('counters exact on every run (instructions, loads). hv/QEMU: hugevisor CPU-time rate (or wall-time rate) over QEMU wall-time rate.');
