// `npm run bench -- walk`: speed of the modeled MMU in the native core (docs/performance.md).
// Each figure is the median of several runs of N translations done inside C++ by the bench
// addon's walkBench (hugevisor_bench.node; no N-API crossing per translation); the counts the run produced are
// printed beside the time so the figure is known to measure what it says. Rates use the
// CPU time of the running thread (the machine is shared: wall time also counts the time
// other processes ran); the wall-time figure of the cold 2D walk is printed beside it.
// `--profile` prints host instructions per event instead (callgrind; bench/_walk-profile.ts).
import { loadavg } from 'node:os';
import { loadAddon, loadBenchAddon } from '../src/native/addon.ts';
import { disabledTlbGeometry } from '../src/native/tlb.ts';
import { REG, WalkBenchKind, type NativeVcpu, type TlbGeometry } from '../src/native/types.ts';
import { figure } from './_figures.ts';
import { profile } from './_walk-profile.ts';

if (process.argv.includes('--profile')) {
  profile();
  process.exit(0);
}

const addon = loadAddon();
const bench = loadBenchAddon();
const repeats = Number(process.env.WALK_BENCH_REPEATS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function measure(kind: number, n: number) {
  const runs = [];
  for (let i = 0; i < repeats; i++) runs.push(bench.walkBench(kind, n));
  const ns = median(runs.map((r) => r.cpuNs / n));
  const wallNs = median(runs.map((r) => r.ns / n));
  const r = runs[0];
  return { ns, wallNs, walks: r.walks, refs: r.refs, hits: r.hits, n };
}

const fmt = (x: number, d = 1) => x.toFixed(d);

console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on this machine while measuring`);
const cold = measure(WalkBenchKind.cold2d, 2_000_000);
const native = measure(WalkBenchKind.coldNative, 2_000_000);
const same = measure(WalkBenchKind.l1HitSame, 20_000_000);
const rotate = measure(WalkBenchKind.l1HitRotate, 20_000_000);
const miss = measure(WalkBenchKind.miss2d, 1_000_000);

const coldRate = 1e3 / cold.ns; // M walks/s
figure('cold 2D walks (4K x 4K, caches off)', coldRate, 'M walks/s', 'higher');
figure('cold native walks', 1e3 / native.ns, 'M walks/s', 'higher');
figure('L1 DTLB hit, same page', same.ns, 'ns', 'lower');
figure('L1 DTLB hit, 32 pages round robin', rotate.ns, 'ns', 'lower');
figure('random 4K over 1 GiB', miss.ns, 'ns/translation', 'lower');
console.log(`cold 2D walks (4K guest x 4K EPT, caches off): ${fmt(coldRate)} M walks/s, ${fmt(cold.ns)} ns/walk (wall ${fmt(cold.wallNs)}), ` +
  `${fmt(cold.refs / cold.walks)} refs/walk  [first bar >= 10 M/s: ${coldRate >= 10 ? 'met' : 'NOT met'}; goal 50 M/s: ${coldRate >= 50 ? 'met' : 'not met'}]`);
console.log(`cold native walks (4K guest, no EPT, caches off): ${fmt(1e3 / native.ns)} M walks/s, ${fmt(native.ns)} ns/walk, ` +
  `${fmt(native.refs / native.walks)} refs/walk`);
console.log(`L1 DTLB hit, same page (fast path): ${fmt(same.ns, 2)} ns/hit (${same.hits}/${same.n} hits)`);
console.log(`L1 DTLB hit, 32 pages round robin: ${fmt(rotate.ns, 2)} ns/hit (${rotate.hits}/${rotate.n} hits)`);
console.log(`random 4K pages over 1 GiB, default hierarchy: ${fmt(miss.ns)} ns/translation, ` +
  `${fmt(miss.walks / miss.n * 100)}% walk, ${fmt(miss.refs / Math.max(1, miss.walks))} refs/walk (PWC + nested TLB warm)`);

// The vCPU with the MMU in the loop: the same guest loops with and without EPT + the full
// hierarchy. Guest RAM GPA [0, 8 MiB) identity-mapped by 4 KiB pages; with EPT it sits at
// HPA 8 MiB behind 4 KiB EPT leaves, without EPT at HPA 0.
const MiB = 1024 * 1024;
const CODE = 0x100000, PML4 = 0x10000, GDT = 0x30000;
// ALU loop: add %rax,%rbx; xor %rbx,%rdx; dec %rcx; jnz; hlt (4 instructions/iteration).
const ALU = [0x48, 0x01, 0xc3, 0x48, 0x31, 0xda, 0x48, 0xff, 0xc9, 0x75, 0xf5, 0xf4];
// Load loop over 64 pages: mov 0x300000(%rsi),%rax; add %rax,%rbx; add $4096,%rsi;
// and $0x3ffff,%rsi; dec %rcx; jnz; hlt (6 instructions/iteration, one L1 DTLB hit each).
const LOADS = [0x48, 0x8b, 0x86, 0x00, 0x00, 0x30, 0x00, 0x48, 0x01, 0xc3, 0x48, 0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,
  0x48, 0x81, 0xe6, 0xff, 0xff, 0x03, 0x00, 0x48, 0xff, 0xc9, 0x75, 0xe3, 0xf4];

function guestVcpu(code: number[], ept: boolean, tlb?: TlbGeometry): NativeVcpu {
  const size = 8 * MiB, base = ept ? 8 * MiB : 0;
  const arena = new addon.Arena(base + size);
  const vcpu = new addon.Vcpu(arena);
  const mem = new DataView(arena.chunks[0]!); // a 16 MiB arena is one chunk
  const put = (hpa: number, v: number | bigint) => mem.setBigUint64(hpa, BigInt(v), true);
  const g = (gpa: number, v: number | bigint) => put(base + gpa, v);
  g(PML4, (PML4 + 0x1000) | 3);
  g(PML4 + 0x1000, (PML4 + 0x2000) | 3);
  for (let c = 0; c < size / (2 * MiB); c++) {
    const pt = PML4 + 0x3000 + c * 0x1000;
    g(PML4 + 0x2000 + c * 8, pt | 3);
    for (let e = 0; e < 512; e++) g(pt + e * 8, (c * 2 * MiB + e * 0x1000) | 3);
  }
  g(GDT + 8, 0x00209a0000000000n);
  g(GDT + 16, 0x0000920000000000n);
  new Uint8Array(arena.chunks[0]!).set(code, base + CODE);
  if (ept) {
    const e4 = 0x1000;
    put(e4, (e4 + 0x1000) | 7);
    put(e4 + 0x1000, (e4 + 0x2000) | 7);
    for (let c = 0; c < size / (2 * MiB); c++) {
      const pt = e4 + 0x3000 + c * 0x1000;
      put(e4 + 0x2000 + c * 8, pt | 7);
      for (let e = 0; e < 512; e++) put(pt + e * 8, (base + c * 2 * MiB + e * 0x1000) | 7 | (6 << 3));
    }
    vcpu.configureMmu({ ept: true, eptp: e4, tlb });
  } else {
    vcpu.configureMmu({ ept: false, guestBase: 0, guestSize: size, tlb });
  }
  return vcpu;
}

function loopOnce(code: number[], ept: boolean, iterations: number, tlb?: TlbGeometry): number {
  const vcpu = guestVcpu(code, ept, tlb);
  const init: Partial<Record<keyof typeof REG, number>> = {
    cr0: 0x80010031, cr4: 0x20, efer: 0xd00, cr3: PML4, gdtr_base: GDT, gdtr_limit: 23,
    cs: 8, ds: 0x10, es: 0x10, ss: 0x10, fs: 0x10, gs: 0x10, rflags: 2, rip: CODE, rsp: 0x200000, rcx: iterations,
  };
  for (const [k, v] of Object.entries(init)) vcpu.regs[REG[k as keyof typeof REG]] = BigInt(v!);
  const t0 = process.cpuUsage();
  const why = vcpu.run(1e12);
  const t1 = process.cpuUsage(t0);
  const ns = (t1.user + t1.system) * 1e3;
  if (why !== 1) throw new Error(`loop guest stopped with exit ${why}, expected HLT`);
  const instr = Number(vcpu.counters[addon.counterNames.indexOf('instructions')]);
  return (instr / ns) * 1e3; // M instructions per CPU second
}

/** Runs the configurations round-robin (so machine noise hits them alike); medians. */
function loopRates(code: number[], iterations: number, configs: [boolean, TlbGeometry | undefined][]): number[] {
  const runs: number[][] = configs.map(() => []);
  for (let i = 0; i < loopRepeats; i++) {
    configs.forEach(([ept, tlb], j) => runs[j].push(loopOnce(code, ept, iterations, tlb)));
  }
  return runs.map(median);
}
const loopRepeats = Math.max(3, Math.ceil(repeats / 2));

{
  const off = disabledTlbGeometry(addon);
  const minimal: TlbGeometry = { ...off, dtlb4k: { entries: 64, ways: 1 }, itlb4k: { entries: 64, ways: 1 } };
  for (const [name, code, iters] of [['ALU loop', ALU, 25_000_000], ['load loop (64 pages)', LOADS, 10_000_000]] as const) {
    const [base, nat, ept] = loopRates([...code], iters, [[false, minimal], [false, undefined], [true, undefined]]);
    console.log(`${name}: no EPT + 64-entry direct-mapped TLBs only ${fmt(base)} M instr/s; no EPT + full hierarchy ${fmt(nat)}; ` +
      `EPT + full hierarchy ${fmt(ept)} (${fmt((ept / base - 1) * 100)}% vs the first) [budget: at most -15%]`);
  }
}
console.log(`(medians of ${repeats} runs for the walk figures, of ${loopRepeats} for the loops, run round-robin; WALK_BENCH_REPEATS changes both)`);
