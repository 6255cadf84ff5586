// `node --import=tsx bench/_gups-profile.ts N`: one run of bench/interp.ts's gups loop (random
// 8-byte read-modify-write over 256 MiB, 4 KiB guest pages, EPT on with 4 KiB leaves, the
// default TLB hierarchy) for N iterations, for instruction-count profiles: bench/walk.ts
// --profile runs it under callgrind, collecting only inside Cpu::run, at two N and divides
// the difference. Prints the counters that show the run did what it claims. Not a bench of
// its own (the leading underscore keeps bench/run.mjs from listing it).
import { ExitReason } from '../src/native/types.ts';
import { CODE, assemble, makeMachine } from '../test/vcpu-harness.ts';
import { GUPS_LOOP, setGupsRegs } from './_gups-loop.ts';

const MiB = 1 << 20;
const iters = Number(process.argv[2]);
if (!Number.isInteger(iters) || iters < 1) throw new Error('usage: _gups-profile.ts N (iterations, >= 1)');

// The machine of bench/interp.ts eptMachine(): guest RAM [0, 272 MiB) identity-mapped by the
// harness's 4 KiB guest tables, moved behind an EPT mapping GPA g to HPA g with 4 KiB leaves.
const region = 256 * MiB, base = 16 * MiB, guest = base + region;
const tablesAt = Math.ceil(guest / (2 * MiB)) * 2 * MiB;
const m = makeMachine({ memory: tablesAt + 4 * MiB, pageSize: 4096 });
const put = (hpa: number, v: bigint) => m.mem.setBigUint64(hpa, v, true);
const RWX = 7n, WB = 6n << 3n;
let next = tablesAt;
const alloc = () => { const t = next; next += 4096; return t; };
const pml4 = alloc(), pdpt = alloc(), pd = alloc();
put(pml4, BigInt(pdpt) | RWX);
put(pdpt, BigInt(pd) | RWX);
for (let c = 0; c < Math.ceil(guest / (2 * MiB)); c++) {
  const pt = alloc();
  put(pd + c * 8, BigInt(pt) | RWX);
  for (let e = 0; e < 512; e++) put(pt + e * 8, BigInt(c * 2 * MiB + e * 4096) | RWX | WB);
}
m.vcpu.configureMmu({ ept: true, eptp: pml4 });
m.load(assemble(GUPS_LOOP));
setGupsRegs(m, base, region, iters, 42);
m.setReg('rip', CODE);
const why = m.run(Number.MAX_SAFE_INTEGER);
if (why !== ExitReason.HLT) throw new Error(`gups guest stopped with exit ${why}`);
if (m.counter('instructions') !== BigInt(8 * iters + 1)) throw new Error(`instructions: ${m.counter('instructions')}`);
console.log(['instructions', 'loads', 'walks', 'walk_refs', 'stlb_4k_misses', 'dtlb_4k_misses']
  .map((c) => `${c} ${m.counter(c)}`).join(' '));
