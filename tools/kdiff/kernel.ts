/**
 * The real-kernel side of the THP differential check: reads (never writes) the THP
 * settings under /sys/kernel/mm/transparent_hugepage, builds kdiff.c with gcc into a
 * temp dir, and runs a scenario script in it, parsing its JSON lines into StepReports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ThpEnabled } from '../../src/mm/types.ts';
import { toScript, type Step, type StepReport } from './script.ts';

export const THP_SYSFS = '/sys/kernel/mm/transparent_hugepage';

/** The machine's THP settings as far as the comparison depends on them. */
export interface KernelEnv {
  /** Effective policy for PMD-size anonymous THP (hugepages-2048kB/enabled, or the top-level knob when it says inherit). */
  enabled: ThpEnabled;
  /** use_zero_page: a read fault in a THP range maps the huge zero page (since 3.8). */
  useZeroPage: boolean;
  /** Other (multi-size, 6.8+) anonymous THP sizes that are not `never`: they change 4 KiB-path figures. */
  mthpSizes: string[];
  release: string;
}

/** [x] of a sysfs choice file like "always [madvise] never". */
function choice(path: string): string | null {
  try {
    return /\[(\w+)\]/.exec(readFileSync(path, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * The machine's THP environment, or a reason why there is nothing to compare against.
 * `sysfs` is for tests (a fake directory); it defaults to the real one.
 */
export function readKernelEnv(sysfs: string = THP_SYSFS): KernelEnv | { skip: string } {
  if (process.platform !== 'linux') return { skip: `not Linux (${process.platform})` };
  const THP_SYSFS = sysfs;
  if (!existsSync(THP_SYSFS)) return { skip: `${THP_SYSFS} does not exist: the kernel has no THP` };
  const top = choice(join(THP_SYSFS, 'enabled'));
  if (!top) return { skip: `${THP_SYSFS}/enabled is unreadable` };
  let enabled = top;
  const mthpSizes: string[] = [];
  try {
    for (const d of readdirSync(THP_SYSFS)) {
      const m = /^hugepages-(\d+)kB$/.exec(d);
      if (!m) continue;
      const c = choice(join(THP_SYSFS, d, 'enabled'));
      const eff = c === 'inherit' ? top : c;
      if (m[1] === '2048') enabled = eff ?? top;
      else if (eff && eff !== 'never') mthpSizes.push(`${d}=${c}`);
    }
  } catch {
    /* pre-6.8 kernels have no per-size directories */
  }
  if (enabled === 'never') return { skip: 'THP is `never` on this machine (transparent_hugepage/enabled): nothing to compare' };
  if (enabled !== 'always' && enabled !== 'madvise') return { skip: `unknown THP policy ${enabled}` };
  let useZeroPage = false;
  try {
    useZeroPage = readFileSync(join(THP_SYSFS, 'use_zero_page'), 'utf8').trim() === '1';
  } catch {
    /* before 3.8: no huge zero page */
  }
  let release = '';
  try {
    release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    /* informational */
  }
  return { enabled, useZeroPage, mthpSizes, release };
}

export interface KernelRunner {
  run(steps: readonly Step[]): StepReport[];
  cleanup(): void;
}

/** Build kdiff.c; a string says why it could not be built (no gcc). */
export function buildKernelRunner(): KernelRunner | string {
  const src = join(dirname(fileURLToPath(import.meta.url)), 'kdiff.c');
  const dir = mkdtempSync(join(tmpdir(), 'hugevisor-kdiff-'));
  const bin = join(dir, 'kdiff');
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', bin, src], { stdio: 'pipe' });
  } catch (e) {
    cleanup();
    return `gcc could not build tools/kdiff/kdiff.c: ${(e as Error).message.split('\n')[0]}`;
  }
  return {
    cleanup,
    run(steps) {
      const r = spawnSync(bin, [], { input: toScript(steps), encoding: 'utf8', timeout: 120_000 });  // a hang guard only: a script takes well under a second
      const lines = (r.stdout ?? '').trim().split('\n').filter(Boolean);
      const reports = lines.map((l) => {
        const x = JSON.parse(l) as StepReport & { error?: string };
        if (x.error) throw new Error(`kdiff.c step ${x.step}: ${x.error}`);
        return x;
      });
      if (r.status !== 0) throw new Error(`kdiff.c exited with ${r.status ?? r.signal}: ${r.stderr}`);
      return reports;
    },
  };
}
