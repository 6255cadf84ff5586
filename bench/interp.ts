/**
 * bench interp: guest instructions per second of the native vCPU, run directly (no VMM in
 * the loop: one run() call per repeat). Guests have the loop bodies of guests/alu-loop.s,
 * guests/mem-scan.s and guests/gups.s (add, xor, dec, jnz / add-from-memory, add, cmp, jb /
 * an LCG and a random xor into memory), assembled here so the bench needs no loader. Prints the median of REPEATS runs and checks the counters
 * exactly (instructions, loads) so a fast-but-wrong interpreter cannot pass.
 *
 *   npm run bench -- interp            (HV_BENCH_SCALE=0.2 for a quick run)
 */
import { ExitReason } from '../src/native/types.ts';
import { CODE, assemble, makeMachine, type Machine } from '../test/vcpu-harness.ts';

const REPEATS = 5;
const scale = Number(process.env.HV_BENCH_SCALE ?? 1);

interface Result {
  name: string;
  instructions: number;
  ns: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function runOnce(m: Machine, entry: number, init: () => void, expect: { instructions: bigint; loads?: bigint }): number {
  m.vcpu.resetCounters();
  m.setReg('rip', entry);
  init();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const why = m.run(Number.MAX_SAFE_INTEGER);
  const t1 = process.hrtime.bigint();
  const c1 = process.cpuUsage(c0);
  wall.push(Number(t1 - t0));
  if (why !== ExitReason.HLT) throw new Error(`bench guest stopped with exit ${why} at rip 0x${m.reg('rip').toString(16)}`);
  const got = m.counter('instructions');
  if (got !== expect.instructions) throw new Error(`instructions: got ${got}, expected ${expect.instructions}`);
  if (expect.loads !== undefined && m.counter('loads') !== expect.loads) {
    throw new Error(`loads: got ${m.counter('loads')}, expected ${expect.loads}`);
  }
  // CPU time of this process (run() is one synchronous call): robust on a shared machine
  // where wall time includes waiting for a core. Wall time is printed beside it.
  return (c1.user + c1.system) * 1000;
}
const wall: number[] = [];

function aluLoop(): Result {
  const iters = Math.round(100_000_000 * scale);
  const m = makeMachine({ memory: 8 << 20 });
  m.load(assemble(`
    movabs $0x9e3779b97f4a7c15, %rsi
    mov $1, %eax
    xor %ebx, %ebx
1:  add %rsi, %rax
    xor %rax, %rbx
    dec %rcx
    jnz 1b
    hlt`));
  const ns: number[] = [];
  const expected = BigInt(4 * iters + 4);
  for (let r = 0; r < REPEATS; r++) ns.push(runOnce(m, CODE, () => m.setReg('rcx', iters), { instructions: expected }));
  return { name: `alu-loop (${iters / 1e6} M iterations, 4 insns each)`, instructions: Number(expected), ns };
}

function memScan(pageSize: 4096 | 2097152): Result {
  const region = Math.max(1 << 20, Math.round((64 << 20) * scale)) & ~0xfff;
  const base = 16 << 20;
  const m = makeMachine({ memory: base + region, pageSize });
  m.load(assemble(`
    xor %eax, %eax
1:  add (%rsi), %rax
    add $8, %rsi
    cmp %rdi, %rsi
    jb 1b
    hlt`));
  const words = region / 8;
  const ns: number[] = [];
  const expected = BigInt(4 * words + 2);
  for (let r = 0; r < REPEATS; r++) {
    ns.push(runOnce(m, CODE, () => { m.setReg('rsi', base); m.setReg('rdi', base + region); }, { instructions: expected, loads: BigInt(words) }));
  }
  const ps = pageSize === 4096 ? '4K' : '2M';
  return { name: `mem-scan ${region >> 20} MiB, ${ps} guest pages (4 insns/word)`, instructions: Number(expected), ns };
}

// gups: random 8-byte read-modify-write over 256 MiB (PERFORMANCE.md's QEMU anchor: 8
// instructions per iteration), an LCG in registers picks the word.
function gups(pageSize: 4096 | 2097152): Result {
  const region = 256 << 20;
  const base = 16 << 20;
  const iters = Math.round(4_000_000 * scale);
  const m = makeMachine({ memory: base + region, pageSize });
  m.load(assemble(`
1:  imul %r9, %rdx
    add %r10, %rdx
    mov %rdx, %rax
    shr $20, %rax
    and %r8, %rax
    xor %rdx, (%rbx,%rax,8)
    dec %rcx
    jnz 1b
    hlt`));
  const ns: number[] = [];
  const expected = BigInt(8 * iters + 1);
  for (let r = 0; r < REPEATS; r++) {
    ns.push(runOnce(m, CODE, () => {
      m.setReg('rbx', base);
      m.setReg('r8', region / 8 - 1);
      m.setReg('r9', 6364136223846793005n);
      m.setReg('r10', 1442695040888963407n);
      m.setReg('rdx', 42 + r);
      m.setReg('rcx', iters);
    }, { instructions: expected, loads: BigInt(iters) }));
  }
  const ps = pageSize === 4096 ? '4K' : '2M';
  return { name: `gups 256 MiB, ${ps} guest pages (8 insns/update)`, instructions: Number(expected), ns };
}

const results: Array<Result & { wall: number[] }> = [];
for (const f of [aluLoop, () => memScan(4096), () => memScan(2097152), () => gups(4096), () => gups(2097152)]) {
  wall.length = 0;
  results.push({ ...f(), wall: [...wall] });
}
console.log('guest instructions per CPU-second of the vCPU (wall-clock figure in brackets); median of', REPEATS);
for (const r of results) {
  const med = median(r.ns);
  const ips = r.instructions / (med / 1e9);
  const wips = r.instructions / (median(r.wall) / 1e9);
  console.log(`${r.name.padEnd(52)} ${(ips / 1e6).toFixed(1).padStart(7)} M instr/s  ${(med / r.instructions).toFixed(2).padStart(6)} ns/instr  [wall ${(wips / 1e6).toFixed(1)} M/s]  counters exact`);
}
