#!/usr/bin/env node
// Runs a hugevisor guest ELF under QEMU (TCG) behind the multiboot trampoline, the
// reference implementation the guests are checked against. Library: runGuestQemu();
// CLI: node tools/qemu/run-guest.mjs GUEST [--mem BYTES] [--pages 4k|2m|1g]
//        [--args 1,2,3] [--cmdline "..."] [--timeout SECONDS] [--json]
// GUEST is a path or the name of a built guest (build/guests/NAME.elf).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const QEMU_BINARY = 'qemu-system-x86_64';
export const TRAMPOLINE = join(root, 'build', 'qemu', 'trampoline.elf');
/** Exit status the trampoline uses for its own errors (bad ELF, memory too small...). */
export const TRAMPOLINE_ERROR_STATUS = 126;
const MiB = 1024 * 1024;

/** True when qemu-system-x86_64 can be started (Debian package qemu-system-x86). */
export function qemuAvailable() {
  const r = spawnSync(QEMU_BINARY, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

export function guestPath(guest) {
  if (existsSync(guest)) return resolve(guest);
  const built = join(root, 'build', 'guests', `${guest}.elf`);
  if (existsSync(built)) return built;
  throw new Error(`guest not found: ${guest} (neither a file nor build/guests/${guest}.elf)`);
}

/**
 * Boots one guest under QEMU and resolves with its console output and exit status.
 * status: the value the guest wrote to port 0xF4 (0..127 survive QEMU's (v<<1)|1 exit
 * code), or null when QEMU stopped otherwise (triple fault with -no-reboot, hlt loop
 * until timeout); reason says which.
 */
export function runGuestQemu(guest, opts = {}) {
  const mem = opts.memory ?? 64 * MiB;
  const pages = opts.pageSize ?? '4k';
  const timeoutMs = (opts.timeoutSeconds ?? 120) * 1000;
  if (!Number.isInteger(mem) || mem % 4096 !== 0 || mem < 2 * MiB || mem > 3072 * MiB) {
    throw new Error(`memory must be a multiple of 4096 between 2 MiB and 3 GiB, got ${mem}`);
  }
  if (!['4k', '2m', '1g'].includes(pages)) throw new Error(`pageSize must be 4k, 2m or 1g, got ${pages}`);
  const args = opts.args ?? [];
  if (args.length > 16) throw new Error(`at most 16 args, got ${args.length}`);
  const append = [`mem=${mem}`, `pages=${pages}`];
  if (args.length) append.push(`args=${args.map((a) => BigInt(a).toString()).join(',')}`);
  if (opts.cmdline !== undefined) append.push(`cmdline=${opts.cmdline}`);
  if (!existsSync(TRAMPOLINE)) throw new Error(`${TRAMPOLINE} missing: run npm run build:guests`);
  const dir = mkdtempSync(join(tmpdir(), 'hv-qemu-'));
  const serialFile = join(dir, 'serial.txt');
  const argv = [
    '-machine', 'pc', '-cpu', 'max', '-accel', 'tcg',
    '-m', `${Math.ceil(mem / MiB) + 2}M`,
    '-kernel', TRAMPOLINE, '-initrd', guestPath(guest), '-append', append.join(' '),
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x02',
    // A serial file, not stdio: QEMU's stdio chardev is non-blocking and drops the tail
    // of the output when it exits right after the guest's last byte.
    '-serial', `file:${serialFile}`, '-display', 'none', '-monitor', 'none', '-no-reboot', '-nodefaults',
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(QEMU_BINARY, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', (e) => { clearTimeout(timer); rmSync(dir, { recursive: true, force: true }); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      const consoleText = existsSync(serialFile) ? readFileSync(serialFile).toString('latin1') : '';
      rmSync(dir, { recursive: true, force: true });
      const stderr = Buffer.concat(err).toString('utf8');
      let status = null;
      let reason;
      if (timedOut) reason = 'timeout';
      else if (code !== null && code % 2 === 1) { status = (code - 1) / 2; reason = 'debug-exit'; }
      else if (code === 0) reason = 'shutdown (triple fault or reset with -no-reboot)';
      else reason = `qemu exited with ${code}: ${stderr.trim()}`;
      resolvePromise({ console: consoleText, status, reason, stderr, argv: [QEMU_BINARY, ...argv] });
    });
  });
}

function parseCli(argv) {
  const o = { guest: undefined, opts: {}, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--mem') o.opts.memory = Number(next());
    else if (a === '--pages') o.opts.pageSize = next();
    else if (a === '--args') o.opts.args = next().split(',').filter((s) => s !== '');
    else if (a === '--cmdline') o.opts.cmdline = next();
    else if (a === '--timeout') o.opts.timeoutSeconds = Number(next());
    else if (a === '--json') o.json = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (o.guest === undefined) o.guest = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!o.guest) throw new Error('usage: run-guest.mjs GUEST [--mem BYTES] [--pages 4k|2m|1g] [--args a,b] [--cmdline TEXT] [--timeout S] [--json]');
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { guest, opts, json } = parseCli(process.argv.slice(2));
    if (!qemuAvailable()) throw new Error(`${QEMU_BINARY} not found (apt-get install -y qemu-system-x86)`);
    const r = await runGuestQemu(guest, opts);
    if (json) console.log(JSON.stringify({ console: r.console, status: r.status, reason: r.reason }));
    else {
      process.stdout.write(r.console);
      console.error(`[qemu] ${r.reason}${r.status === null ? '' : ` status ${r.status}`}`);
    }
    process.exit(r.status ?? 1);
  } catch (e) {
    console.error(`error: ${e.message}`);
    process.exit(2);
  }
}
