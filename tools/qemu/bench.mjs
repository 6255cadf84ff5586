#!/usr/bin/env node
// QEMU TCG side of `npm run bench -- interp` (docs/performance.md): guest instructions per second
// of a bench guest under QEMU, with QEMU's start-up and the guest's setup cancelled out by
// timing the same guest at N and at 0 iterations (median of REPEATS each). Library:
// qemuGuestRate(); CLI: node tools/qemu/bench.mjs [alu-loop|gups|mem-scan|pointer-chase]...
import { readFileSync } from 'node:fs';
import { runGuestQemu, qemuAvailable } from './run-guest.mjs';

const MiB = 1024 * 1024;
/** Per guest: memory, args for n iterations, guest instructions per iteration. */
export const QEMU_BENCHES = {
  'alu-loop': { memory: 16 * MiB, args: (n) => [n], perIteration: 4, n: 500_000_000 },
  'mem-scan': { memory: 80 * MiB, args: (n) => [64 * MiB, n], perIteration: 4 * (64 * MiB / 8) + 3, n: 20 },   // + mov, dec, jnz per pass
  'pointer-chase': { memory: 80 * MiB, args: (n) => [64 * MiB, n], perIteration: 3, n: 20_000_000 },
  'gups': { memory: 300 * MiB, args: (n) => [256 * MiB, n, 1, 0], perIteration: 8, n: 5_000_000 },
};

function median(xs) { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; }

async function timeRun(guest, memory, args) {
  const t0 = process.hrtime.bigint();
  const r = await runGuestQemu(guest, { memory, args, timeoutSeconds: 600 });
  const t1 = process.hrtime.bigint();
  if (r.status !== 0) throw new Error(`${guest} under QEMU: ${r.reason} ${r.console}`);
  return { seconds: Number(t1 - t0) / 1e9, console: r.console };
}

/** { guest, instructions, seconds, instructionsPerSecond, nsPerInstruction, console } */
export async function qemuGuestRate(guest, { repeats = 3, n } = {}) {
  const b = QEMU_BENCHES[guest];
  if (!b) throw new Error(`no QEMU bench for ${guest}: one of ${Object.keys(QEMU_BENCHES).join(', ')}`);
  const iters = n ?? b.n;
  const full = [], empty = [];
  let console_ = '';
  for (let i = 0; i < repeats; i++) {
    const f = await timeRun(guest, b.memory, b.args(iters));
    full.push(f.seconds);
    console_ = f.console;
    empty.push((await timeRun(guest, b.memory, b.args(0))).seconds);
  }
  const seconds = Math.max(median(full) - median(empty), 1e-9);
  const instructions = iters * b.perIteration;
  return { guest, instructions, seconds, instructionsPerSecond: instructions / seconds, nsPerInstruction: (seconds * 1e9) / instructions, console: console_ };
}

/**
 * QEMU TCG rate of any guest ELF (a C workload, say): the same guest is timed with `args`
 * and with `baseArgs` (a tiny run: QEMU's start-up, the boot and the guest's fixed work),
 * median of REPEATS each, and the caller gives the instructions each run retires (from
 * hugevisor, which runs the same ELF with the same arguments), so
 * rate = (instructions - baseInstructions) / (seconds - baseSeconds).
 * { guest, instructions, seconds, instructionsPerSecond, nsPerInstruction, console }
 */
export async function qemuElfRate(guest, { memory, args, baseArgs, instructions, baseInstructions, cmdline, pageSize, repeats = 3 }) {
  const full = [], empty = [], fullCpu = [], emptyCpu = [];
  let console_ = '';
  const once = async (a) => {
    const c0 = childrenCpuSeconds();
    const t0 = process.hrtime.bigint();
    const r = await runGuestQemu(guest, { memory, args: a, cmdline, pageSize, timeoutSeconds: 600 });
    const t1 = process.hrtime.bigint();
    if (r.status !== 0) throw new Error(`${guest} under QEMU: ${r.reason} ${r.console}`);
    return { seconds: Number(t1 - t0) / 1e9, cpuSeconds: childrenCpuSeconds() - c0, console: r.console };
  };
  for (let i = 0; i < repeats; i++) {
    const f = await once(args);
    full.push(f.seconds);
    fullCpu.push(f.cpuSeconds);
    console_ = f.console;
    const e = await once(baseArgs);
    empty.push(e.seconds);
    emptyCpu.push(e.cpuSeconds);
  }
  const seconds = Math.max(median(full) - median(empty), 1e-9);
  const cpuSeconds = Math.max(median(fullCpu) - median(emptyCpu), 1e-9);
  const n = instructions - baseInstructions;
  return { guest, instructions: n, seconds, cpuSeconds, instructionsPerSecond: n / seconds, nsPerInstruction: (seconds * 1e9) / n, console: console_ };
}

/**
 * CPU seconds (user + system) of this process's waited-for children so far: cutime and
 * cstime of /proc/self/stat, in clock ticks (USER_HZ, 100 on Linux). The difference across
 * one QEMU run is that run's CPU time, which another process's load does not stretch as it
 * does wall time (10 ms resolution). NaN where /proc is missing.
 */
export function childrenCpuSeconds() {
  try {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    // Fields after the command name (which may hold spaces, so split after its ')').
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return NaN;
  }
}

if (process.argv[1] && process.argv[1].endsWith('bench.mjs')) {
  if (!qemuAvailable()) { console.error('qemu-system-x86_64 not found (apt-get install -y qemu-system-x86)'); process.exit(2); }
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(QEMU_BENCHES);
  for (const g of names) {
    const r = await qemuGuestRate(g);
    console.log(`qemu ${g.padEnd(14)} ${(r.instructionsPerSecond / 1e6).toFixed(1).padStart(8)} M instr/s  ${r.nsPerInstruction.toFixed(3)} ns/instr  (${r.instructions} instr in ${r.seconds.toFixed(3)} s)`);
  }
}
