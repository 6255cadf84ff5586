/**
 * The real-kernel side of the THP differential check: reads the THP settings under
 * /sys/kernel/mm/transparent_hugepage (under kdiff.c's lock, shared, so never while a
 * scenario has changed them), builds kdiff.c with gcc into a temp dir, and runs a scenario
 * script in it, parsing its JSON lines into StepReports. Only kdiff.c writes settings: a
 * scenario's `setup` (per-size knobs, a memory cgroup, a swap file), undone after the run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ThpEnabled } from '../../src/mm/types.ts';
import { toScript, type Setup, type Step, type StepReport } from './script.ts';

export const THP_SYSFS = '/sys/kernel/mm/transparent_hugepage';
/** kdiff.c's lock (LOCK_PATH there): every run holds it exclusively. */
export const KDIFF_LOCK = '/tmp/hugevisor-kdiff.lock';
export const MEMCG_V1 = '/sys/fs/cgroup/memory';

/** The machine's THP settings as far as the comparison depends on them. */
export interface KernelEnv {
  /** Effective policy for PMD-size anonymous THP (hugepages-2048kB/enabled, or the top-level knob when it says inherit). */
  enabled: ThpEnabled;
  /** use_zero_page: a read fault in a THP range maps the huge zero page (since 3.8). */
  useZeroPage: boolean;
  /** Other (multi-size, 6.8+) anonymous THP sizes that are not `never`: they change 4 KiB-path figures. */
  mthpSizes: string[];
  /** The per-size knobs this kernel has (hugepages-<N>kB with an enabled file), e.g. '16kB'. */
  sizes: string[];
  release: string;
  /** Root: a scenario's setup (knobs, memory cgroup, swap file) can be made. */
  root: boolean;
  /** The cgroup v1 memory controller is mounted at MEMCG_V1. */
  memcgV1: boolean;
}

/** Why this machine cannot make `setup` for a scenario, or null when it can. */
export function setupUnavailable(env: KernelEnv, setup: Setup | undefined): string | null {
  if (!setup || (!setup.memcg && !setup.swapBytes && !Object.keys(setup.sysfs ?? {}).length)) return null;
  if (!env.root) return 'the scenario changes THP knobs, a memory cgroup or swap: needs root';
  if (setup.memcg && !env.memcgV1) return `no cgroup v1 memory controller at ${MEMCG_V1}`;
  if (setup.swapBytes && !existsSync('/proc/swaps')) return 'the kernel has no swap (/proc/swaps)';
  if (setup.swapBlkdev && !existsSync('/dev/loop-control')) return 'no loop devices (/dev/loop-control) for swap on a block device';
  for (const p of Object.keys(setup.sysfs ?? {})) {
    const size = /^hugepages-(\d+kB)\//.exec(p)?.[1];
    if (size && !env.sizes.includes(size)) return `no per-size THP knob ${p} (multi-size THP is Linux 6.8+)`;
    if (!size && !existsSync(join(THP_SYSFS, p))) return `no THP knob ${p} on this kernel`;
  }
  return null;
}

/**
 * The texts of the THP settings files, read in one go under kdiff.c's lock (shared: a
 * scenario that changed a knob holds it exclusively until it restored it), with flock(1);
 * null when flock(1) is missing or fails (the files are then read directly).
 */
function lockedRead(paths: string[]): Map<string, string> | null {
  if (!paths.length || !existsSync(KDIFF_LOCK)) return null;
  const r = spawnSync('flock', ['-s', '-w', '120', KDIFF_LOCK, 'grep', '-H', '', '--', ...paths], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) return null;
  const m = new Map<string, string>();
  for (const l of (r.stdout ?? '').split('\n')) {
    const p = paths.find((x) => l.startsWith(`${x}:`));
    if (p) m.set(p, (m.get(p) ?? '') + l.slice(p.length + 1) + '\n');
  }
  return m;
}

let locked: Map<string, string> | null = null;
function text(path: string): string {
  return locked?.get(path) ?? readFileSync(path, 'utf8');
}

/** [x] of a sysfs choice file like "always [madvise] never". */
function choice(path: string): string | null {
  try {
    return /\[(\w+)\]/.exec(text(path))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * The machine's THP environment, or a reason why there is nothing to compare against.
 * `sysfs` is for tests (a fake directory); it defaults to the real one.
 */
const THP_SYSFS_REAL = THP_SYSFS;
export function readKernelEnv(sysfs: string = THP_SYSFS): KernelEnv | { skip: string } {
  if (process.platform !== 'linux') return { skip: `not Linux (${process.platform})` };
  const THP_SYSFS = sysfs;
  if (!existsSync(THP_SYSFS)) return { skip: `${THP_SYSFS} does not exist: the kernel has no THP` };
  const sizeDirs = (() => {
    try {
      return readdirSync(THP_SYSFS).filter((d) => /^hugepages-\d+kB$/.test(d) && existsSync(join(THP_SYSFS, d, 'enabled')));
    } catch {
      return []; /* pre-6.8 kernels have no per-size directories */
    }
  })();
  locked = sysfs === THP_SYSFS_REAL ? lockedRead([join(THP_SYSFS, 'enabled'), join(THP_SYSFS, 'use_zero_page'), ...sizeDirs.map((d) => join(THP_SYSFS, d, 'enabled'))]) : null;
  const top = choice(join(THP_SYSFS, 'enabled'));
  if (!top) return { skip: `${THP_SYSFS}/enabled is unreadable` };
  let enabled = top;
  const mthpSizes: string[] = [];
  for (const d of sizeDirs) {
    const m = /^hugepages-(\d+)kB$/.exec(d)!;
    const c = choice(join(THP_SYSFS, d, 'enabled'));
    const eff = c === 'inherit' ? top : c;
    if (m[1] === '2048') enabled = eff ?? top;
    else if (eff && eff !== 'never') mthpSizes.push(`${d}=${c}`);
  }
  if (enabled === 'never') return { skip: 'THP is `never` on this machine (transparent_hugepage/enabled): nothing to compare' };
  if (enabled !== 'always' && enabled !== 'madvise') return { skip: `unknown THP policy ${enabled}` };
  let useZeroPage = false;
  try {
    useZeroPage = text(join(THP_SYSFS, 'use_zero_page')).trim() === '1';
  } catch {
    /* before 3.8: no huge zero page */
  }
  let release = '';
  try {
    release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    /* informational */
  }
  locked = null;
  const sizes = sizeDirs.map((d) => /^hugepages-(\d+kB)$/.exec(d)![1]);
  return { enabled, useZeroPage, mthpSizes, sizes, release, root: process.getuid?.() === 0, memcgV1: existsSync(join(MEMCG_V1, 'cgroup.procs')) };
}

export interface KernelRunner {
  run(steps: readonly Step[], setup?: Setup): StepReport[];
  cleanup(): void;
  /** The built kdiff.c (stdin: toScript's text). */
  bin: string;
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
    bin,
    run(steps, setup) {
      // A hang guard only (a script takes well under a second, plus the wait for the lock);
      // on SIGTERM kdiff.c kills its worker and still undoes the setup.
      const r = spawnSync(bin, [], { input: toScript(steps, setup), encoding: 'utf8', timeout: 300_000 });
      const lines = (r.stdout ?? '').trim().split('\n').filter(Boolean);
      const reports = lines.map((l) => {
        const x = JSON.parse(l) as StepReport & { error?: string };
        if (x.error) throw new Error(`kdiff.c ${x.step < 0 ? 'setup' : `step ${x.step}`}: ${x.error}`);
        return x;
      });
      if (r.status !== 0) throw new Error(`kdiff.c exited with ${r.status ?? r.signal}: ${r.stderr}`);
      return reports;
    },
  };
}
