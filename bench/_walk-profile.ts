/**
 * `npm run bench -- walk --profile`: host instructions per modeled event, counted by callgrind
 * (valgrind), which machine load does not change (docs/performance.md, "The miss path: where
 * the time goes"). Each figure is (Ir(N2) − Ir(N1)) / (N2 − N1) over two runs that differ only
 * in N, so set-up cancels:
 *  - the walk kinds (native/bench/walk_bench.h) run in build/native-bench/walk_profile, the
 *    walk bench's loop compiled as a standalone program with the addon's flags (-O2 -fPIC);
 *  - gups runs bench/_gups-profile.ts under node, counting only inside Cpu::run (its out-of-line
 *    loop, Cpu::run_loop: `hv::Cpu::run*`, as bench/_profile.ts).
 * HV_PROFILE_GUPS=0 skips gups (the slow part: two node runs under valgrind).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure } from './_figures.ts';
import { callgrind, INSIDE_CPU_RUN } from './_profile.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'build', 'native-bench');
const driver = join(outDir, 'walk_profile');
// The core sources the walk needs, and CMakeLists.txt's HV_CXX_FLAGS (plus -fPIC, as the
// addon's objects are position-independent: it changes what the compiler may inline).
const sources = ['native/bench/walk_profile.cc', 'native/bench/walk_bench.cc', 'native/test/walk_fixture.cc',
  'native/arena.cc', 'native/mmu.cc', 'native/tlb.cc', 'native/walk.cc'];
const flags = ['-std=c++17', '-O2', '-fPIC', '-Wa,-mbranches-within-32B-boundaries', '-fno-exceptions', '-fno-rtti'];


/** Host instructions per unit: two runs, N1 and N2 units. */
function perUnit(run: (n: number) => { ir: number; out: string }, n1: number, n2: number) {
  const a = run(n1), b = run(n2);
  return { per: (b.ir - a.ir) / (n2 - n1), out: b.out };
}

export function profile(): void {
  mkdirSync(outDir, { recursive: true });
  execFileSync('g++', [...flags, '-I', join(root, 'native'), '-o', driver, ...sources.map((s) => join(root, s))],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  const kinds: [number, string, string][] = [
    [4, 'STLB miss + 2D walk (random 4K over 1 GiB, PWC/nested warm)', 'miss'],
    [0, 'cold 2D walk (4K x 4K, caches off)', 'cold2d'],
    [1, 'cold native walk (4K, no EPT, caches off)', 'coldNative'],
    [2, 'L1 DTLB hit, same page', 'hitSame'],
    [3, 'L1 DTLB hit, 32 pages round robin', 'hitRotate'],
  ];
  console.log('host instructions (callgrind Ir) per event, (Ir(N2) - Ir(N1)) / (N2 - N1):');
  for (const [kind, label] of kinds) {
    const { per, out } = perUnit((n) => callgrind([driver, String(kind), String(n)]), 100_000, 200_000);
    console.log(`  ${label.padEnd(62)} ${per.toFixed(1).padStart(8)}   (N2 run: ${out})`);
    figure(`host instructions per ${label}`, per, 'Ir', 'lower');
  }
  if (process.env.HV_PROFILE_GUPS !== '0') {
    const script = join(root, 'bench', '_gups-profile.ts');
    const { per, out } = perUnit((n) => callgrind([process.execPath, '--import=tsx', script, String(n)],
      INSIDE_CPU_RUN), 50_000, 100_000);
    console.log(`  ${'gups iteration (8 guest instructions, 4K pages, EPT, inside Cpu::run)'.padEnd(62)} ${per.toFixed(1).padStart(8)}   (N2 run: ${out})`);
    figure('host instructions per gups iteration', per, 'Ir', 'lower');
  }
}
