/**
 * bench cworkloads: guest instructions per second of every C workload (guests/c/) on hugevisor,
 * beside QEMU TCG running the same ELF with the same arguments (tools/qemu/bench.mjs
 * qemuElfRate, behind the multiboot trampoline) when qemu-system-x86_64 is installed.
 *
 * hugevisor: one createVm + run() per repeat through the public API, EPT on, host THP and
 * guest kernel defaults (`gthp=never`: 4 KiB heap pages, as under QEMU); the rate is the run's
 * instructions over the CPU time of run() (wall time in brackets), median of REPEATS.
 * QEMU: wall time of the run minus wall time of a tiny run of the same guest (start-up, boot,
 * fixed work), over the difference of the two runs' instruction counts, which hugevisor
 * counts exactly for the same ELF and arguments; median of 3 each. Every hugevisor repeat
 * must print the same console, and QEMU's console must be hugevisor's.
 *
 *   npm run bench -- cworkloads
 *   HV_BENCH_SCALE=0.2   shorter runs          HV_BENCH_REPEATS=3   repeats (median; 3)
 *   HV_BENCH_QEMU=0      skip the QEMU side    HV_BENCH_ONLY=gups   workloads whose name has it
 *
 *   npm run bench -- cworkloads --profile
 * prints, instead, host instructions per guest instruction of each workload (bench/_profile.ts:
 * callgrind counting inside the interpreter's run loop only, not the TS VMM), at
 * HV_BENCH_SCALE times 0.05 of the work (valgrind is slow).
 */
import type { RunResult } from '../src/api/index.ts';
import { qemuAvailable } from '../tools/qemu/run-guest.mjs';
import { qemuElfRate } from '../tools/qemu/bench.mjs';
import { timedApiRun } from './_api-run.ts';
import { figure } from './_figures.ts';
import { hostPerGuest, profileChild, profileMode, reportChild } from './_profile.ts';

const REPEATS = Number(process.env.HV_BENCH_REPEATS ?? 3);
const scale = Number(process.env.HV_BENCH_SCALE ?? 1);
const only = process.env.HV_BENCH_ONLY ?? '';
const withQemu = process.env.HV_BENCH_QEMU !== '0' && qemuAvailable();
const MiB = 1 << 20;

interface Bench {
  guest: string;
  memory: number;
  /** The measured run's arguments; scale multiplies the work argument (index `work`). */
  args: number[];
  work: number;
  /** A tiny run of the same guest, subtracted on the QEMU side. */
  baseArgs: number[];
}

const benches: Bench[] = [
  { guest: 'c-hello', memory: 64 * MiB, args: [2_000_000, 7], work: 0, baseArgs: [16, 7] },
  { guest: 'c-gups', memory: 64 * MiB, args: [8 * MiB, 2_000_000, 1, 0], work: 1, baseArgs: [8 * MiB, 16, 1, 0] },
  { guest: 'c-stream', memory: 64 * MiB, args: [1 << 20, 4], work: 1, baseArgs: [1 << 20, 0] },
  { guest: 'c-chase', memory: 64 * MiB, args: [131072, 4_000_000, 1], work: 1, baseArgs: [131072, 16, 1] },
  { guest: 'c-hash', memory: 64 * MiB, args: [1 << 20, 2_000_000, 1], work: 1, baseArgs: [1 << 20, 16, 1] },
  { guest: 'c-rbtree', memory: 64 * MiB, args: [100_000, 1_000_000, 1], work: 1, baseArgs: [100_000, 16, 1] },
  { guest: 'c-bfs', memory: 64 * MiB, args: [14, 16, 8, 1], work: 2, baseArgs: [14, 16, 1, 1] },
  { guest: 'c-sort', memory: 64 * MiB, args: [1 << 20, 1], work: 0, baseArgs: [16, 1] },
  { guest: 'c-allocmix', memory: 64 * MiB, args: [400_000, 4096, 1], work: 0, baseArgs: [16, 4096, 1] },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function runOnce(b: Bench, args: number[]): { r: RunResult; cpuNs: number; wallNs: number } {
  return timedApiRun(b.guest, { memory: b.memory, args });
}

const fmt = (x: number, w = 7, d = 1) => x.toFixed(d).padStart(w);
const scaled = (b: Bench, s: number) => b.args.map((a, i) => (i === b.work ? Math.max(1, Math.round(a * s)) : a));
if (profileChild) {
  // One run of the workload HV_BENCH_ONLY names exactly (bench/_profile.ts).
  const b = benches.find((x) => x.guest === only);
  if (!b) throw new Error(`--profile-child: no workload named ${only}`);
  reportChild(runOnce(b, scaled(b, scale)).r.instructions);
  process.exit(0);
}
if (profileMode) {
  console.log('host instructions (callgrind, inside Cpu::run) per guest instruction, EPT on (the VMM in TS not counted)');
  for (const b of benches.filter((x) => x.guest.includes(only))) {
    const s = 0.05 * scale;
    const p = hostPerGuest(new URL(import.meta.url).pathname, { HV_BENCH_ONLY: b.guest, HV_BENCH_SCALE: String(s), HV_BENCH_QEMU: '0' });
    console.log(`${b.guest.padEnd(12)} ${scaled(b, s).join(' ').padEnd(26)} ${fmt(p.ratio, 7, 2)}  (${(p.host / 1e6).toFixed(1)} M over ${(p.guest / 1e6).toFixed(2)} M guest instructions)`);
    figure(`${b.guest}: host instructions per guest instruction`, p.ratio, 'instr', 'lower');
  }
  process.exit(0);
}
console.log(`hugevisor (EPT, defaults): guest M instr/s per CPU-second [per wall-second], median of ${REPEATS}; ` +
  `QEMU ${withQemu ? 'TCG: wall-clock, tiny run subtracted, median of 3' : 'not run (not installed or HV_BENCH_QEMU=0)'}`);
console.log(`${'workload'.padEnd(12)} ${'arguments'.padEnd(26)} ${'M instr'.padStart(8)}  ${'hv'.padStart(7)} ${'[wall]'.padStart(9)}  ${'QEMU'.padStart(7)}  hv/QEMU cpu | wall`);
for (const b0 of benches.filter((x) => x.guest.includes(only))) {
  const args = scaled(b0, scale);
  const b = { ...b0, args };
  const cpu: number[] = [], wall: number[] = [];
  let first: RunResult | undefined;
  for (let i = 0; i < REPEATS; i++) {
    const { r, cpuNs, wallNs } = runOnce(b, args);
    if (first && r.console !== first.console) throw new Error(`${b.guest}: console differs between repeats`);
    first ??= r;
    cpu.push(cpuNs);
    wall.push(wallNs);
  }
  const n = first!.instructions;
  const hvCpu = n / (median(cpu) / 1e9) / 1e6, hvWall = n / (median(wall) / 1e9) / 1e6;
  figure(`${b.guest}: hugevisor`, hvCpu, 'M instr/s', 'higher');
  let q = '';
  if (withQemu) {
    const base = runOnce(b, b.baseArgs).r;
    const qr = await qemuElfRate(b.guest, { memory: b.memory, args, baseArgs: b.baseArgs, instructions: n, baseInstructions: base.instructions });
    if (qr.console !== first!.console) throw new Error(`${b.guest}: QEMU printed\n${qr.console}\nhugevisor printed\n${first!.console}`);
    const qm = qr.instructionsPerSecond / 1e6;
    figure(`${b.guest}: QEMU TCG`, qm, 'M instr/s', 'higher');
    figure(`${b.guest}: hugevisor vs QEMU`, hvCpu / qm, 'x', 'higher');
    q = `  ${fmt(qm)}  ${fmt(hvCpu / qm, 5, 2)}x | ${fmt(hvWall / qm, 5, 2)}x`;
  }
  console.log(`${b.guest.padEnd(12)} ${args.join(' ').padEnd(26)} ${fmt(n / 1e6, 8)}  ${fmt(hvCpu)} [${fmt(hvWall)}]${q}`);
}
console.log('hv/QEMU: hugevisor CPU-time rate (or wall-time rate) over QEMU wall-time rate; consoles identical on every run.');
