// `npm run bench -- walk`: speed of the modeled MMU in the native core (PERFORMANCE.md).
// Each figure is the median of several runs of N translations done inside C++ by
// addon.walkBench (no N-API crossing per translation); the counts the run produced are
// printed beside the time so the figure is known to measure what it says.
import { loadAddon } from '../src/native/addon.ts';
import { WalkBenchKind } from '../src/native/types.ts';

const addon = loadAddon();
const repeats = Number(process.env.WALK_BENCH_REPEATS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function measure(kind: number, n: number) {
  const runs = [];
  for (let i = 0; i < repeats; i++) runs.push(addon.walkBench(kind, n));
  const ns = median(runs.map((r) => r.ns / n));
  const r = runs[0];
  return { ns, walks: r.walks, refs: r.refs, hits: r.hits, n };
}

const fmt = (x: number, d = 1) => x.toFixed(d);

const cold = measure(WalkBenchKind.cold2d, 2_000_000);
const native = measure(WalkBenchKind.coldNative, 2_000_000);
const same = measure(WalkBenchKind.l1HitSame, 20_000_000);
const rotate = measure(WalkBenchKind.l1HitRotate, 20_000_000);
const miss = measure(WalkBenchKind.miss2d, 1_000_000);

const coldRate = 1e3 / cold.ns; // M walks/s
console.log(`cold 2D walks (4K guest x 4K EPT, caches off): ${fmt(coldRate)} M walks/s, ${fmt(cold.ns)} ns/walk, ` +
  `${fmt(cold.refs / cold.walks)} refs/walk  [first bar >= 10 M/s: ${coldRate >= 10 ? 'met' : 'NOT met'}; goal 50 M/s: ${coldRate >= 50 ? 'met' : 'not met'}]`);
console.log(`cold native walks (4K guest, no EPT, caches off): ${fmt(1e3 / native.ns)} M walks/s, ${fmt(native.ns)} ns/walk, ` +
  `${fmt(native.refs / native.walks)} refs/walk`);
console.log(`L1 DTLB hit, same page (fast path): ${fmt(same.ns, 2)} ns/hit (${same.hits}/${same.n} hits)`);
console.log(`L1 DTLB hit, 32 pages round robin: ${fmt(rotate.ns, 2)} ns/hit (${rotate.hits}/${rotate.n} hits)`);
console.log(`random 4K pages over 1 GiB, default hierarchy: ${fmt(miss.ns)} ns/translation, ` +
  `${fmt(miss.walks / miss.n * 100)}% walk, ${fmt(miss.refs / Math.max(1, miss.walks))} refs/walk (PWC + nested TLB warm)`);
console.log(`(medians of ${repeats} runs; set WALK_BENCH_REPEATS to change)`);
