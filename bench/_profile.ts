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
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const profileChild = process.argv.includes('--profile-child');
export const profileMode = process.argv.includes('--profile');

/** Callgrind options that count only inside the interpreter (Cpu::run and its out-of-line loop). */
export const INSIDE_CPU_RUN = ['--collect-atstart=no', '--toggle-collect=hv::Cpu::run*'];

/** Run `cmd` under callgrind: the host instructions it counted (Ir) and the command's stdout. */
export function callgrind(cmd: string[], extra: string[] = [], env: Record<string, string> = {}): { ir: number; out: string } {
  const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', ...extra, ...cmd],
    { encoding: 'utf8', cwd: root, env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`--profile needs valgrind (callgrind) on PATH (apt-get install -y valgrind): ${r.error.message}`);
  const m = /Collected : (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`callgrind ${cmd.join(' ')} failed:\n${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
  return { ir: Number(m[1]), out: r.stdout.trim() };
}

/** A child reports its guest instruction count this way. */
export function reportChild(guestInstructions: bigint | number): void {
  console.log(`guest-instructions ${guestInstructions}`);
}

/** Host instructions inside Cpu::run and guest instructions retired, of one child run. */
export function hostPerGuest(script: string, env: Record<string, string>): { host: number; guest: number; ratio: number } {
  const { ir: host, out } = callgrind([process.execPath, '--import=tsx', script, '--profile-child'], INSIDE_CPU_RUN, env);
  const m = /guest-instructions (\d+)/.exec(out);
  if (!m) throw new Error(`profile child printed no guest-instructions line:\n${out}`);
  const guest = Number(m[1]);
  return { host, guest, ratio: host / guest };
}
