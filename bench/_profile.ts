/**
 * Host instructions per guest instruction, a figure the machine's load does not change: a
 * bench's `--profile` mode runs one body in a child process under valgrind's callgrind with
 * collection on only inside `hv::Cpu::run` (the interpreter: fetch, decode, handlers, MMU;
 * not node, not the TS VMM between runs), and divides the host instructions counted there
 * by the guest instructions the run retired. (This machine's perf has no hardware counters,
 * so `perf stat -e instructions:u` is not available; callgrind counts the same thing,
 * exactly and repeatably.)
 *
 * A child is this same bench file started with `--profile-child` and the environment the
 * caller gives; it runs the body once and prints `guest-instructions N` on stdout.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const profileChild = process.argv.includes('--profile-child');
export const profileMode = process.argv.includes('--profile');

/** A child reports its guest instruction count this way. */
export function reportChild(guestInstructions: bigint | number): void {
  console.log(`guest-instructions ${guestInstructions}`);
}

/** Host instructions inside Cpu::run and guest instructions retired, of one child run. */
export function hostPerGuest(script: string, env: Record<string, string>): { host: number; guest: number; ratio: number } {
  const dir = mkdtempSync(join(tmpdir(), 'hv-profile-'));
  try {
    const out = join(dir, 'callgrind.out');
    const r = spawnSync('valgrind', ['--tool=callgrind', '--collect-atstart=no', '--toggle-collect=hv::Cpu::run*',
      `--callgrind-out-file=${out}`, process.execPath, '--import=tsx', script, '--profile-child'],
    { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.error) throw new Error(`valgrind could not run (${r.error.message}); install valgrind`);
    if (r.status !== 0) throw new Error(`profile child failed (${r.status}):\n${r.stdout}${r.stderr}`);
    const m = /guest-instructions (\d+)/.exec(r.stdout);
    if (!m) throw new Error(`profile child printed no guest-instructions line:\n${r.stdout}`);
    const t = /^(?:summary|totals): (\d+)/m.exec(readFileSync(out, 'utf8'));
    if (!t) throw new Error('callgrind wrote no summary line');
    const host = Number(t[1]), guest = Number(m[1]);
    return { host, guest, ratio: host / guest };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
