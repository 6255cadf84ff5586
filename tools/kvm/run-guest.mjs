#!/usr/bin/env node
// Runs a hugevisor guest ELF on real KVM (/dev/kvm) behind the tiny loader kvm-run.c,
// the second reference implementation next to tools/qemu/run-guest.mjs. The memory image
// is built by the project's own loader (tools/kvm/image.ts), so only execution differs.
// Library: runGuestKvm(); CLI: node tools/kvm/run-guest.mjs GUEST [--mem BYTES]
//   [--pages 4k|2m|1g] [--args 1,2,3] [--cmdline "..."] [--timeout SECONDS]
//   [--host-thp] [--strict] [--json]
// GUEST is a path or the name of a built guest (build/guests/NAME.elf). kvm-run is built
// with gcc into build/kvm/ on first use (and again whenever its sources are newer).
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
export const KVM_DEVICE = '/dev/kvm';
export const KVM_RUN_BINARY = join(root, 'build', 'kvm', 'kvm-run');
const SOURCES = [join(here, 'kvm-run.c'), join(here, 'kvm-stats.h')];
const MiB = 1024 * 1024;

/** Why KVM cannot be used here, or null when /dev/kvm opens and answers KVM_CREATE_VM. */
export function kvmUnavailableReason() {
  try {
    accessSync(KVM_DEVICE, constants.R_OK | constants.W_OK);
  } catch (e) {
    return `${KVM_DEVICE} is not usable (${e.code ?? e.message})`;
  }
  const gcc = spawnSync('gcc', ['--version'], { stdio: 'ignore' });
  if (gcc.status !== 0) return 'gcc not found (needed to build tools/kvm/kvm-run.c)';
  try {
    buildKvmRun();
  } catch (e) {
    return e.message;
  }
  return null;
}

export function kvmAvailable() {
  return kvmUnavailableReason() === null;
}

/** Compiles kvm-run.c unless build/kvm/kvm-run is newer than its sources. */
export function buildKvmRun() {
  const newest = Math.max(...SOURCES.map((s) => statSync(s).mtimeMs));
  if (existsSync(KVM_RUN_BINARY) && statSync(KVM_RUN_BINARY).mtimeMs >= newest) return KVM_RUN_BINARY;
  mkdirSync(dirname(KVM_RUN_BINARY), { recursive: true });
  const tmp = `${KVM_RUN_BINARY}.${process.pid}`; // renamed into place: concurrent builds never see half a file
  const r = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', tmp, SOURCES[0]], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building kvm-run failed: ${r.stderr || r.error?.message}`);
  renameSync(tmp, KVM_RUN_BINARY);
  return KVM_RUN_BINARY;
}

/**
 * Builds a probe guest of tools/kvm/guests/NAME.s (linked like the sample guests: the
 * guests/runtime entry stub and library, guests/link.ld) into build/kvm/NAME.elf.
 */
export function buildKvmGuest(name) {
  const src = join(here, 'guests', `${name}.s`);
  if (!existsSync(src)) throw new Error(`no probe guest ${src}`);
  const out = join(root, 'build', 'kvm', `${name}.elf`);
  const runtime = join(root, 'guests', 'runtime');
  const objDir = join(root, 'build', 'kvm', `obj-${process.pid}-${name}`);
  mkdirSync(objDir, { recursive: true });
  const run = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  };
  try {
    const objs = [];
    const asm = (file, obj) => { run('as', ['--64', '-I', runtime, '-o', obj, file]); objs.push(obj); };
    for (const f of readdirSync(runtime).filter((f) => f.endsWith('.s')).sort()) asm(join(runtime, f), join(objDir, `rt-${f}.o`));
    asm(src, join(objDir, `${name}.o`));
    for (const f of readdirSync(join(runtime, 'lib')).filter((f) => f.endsWith('.s')).sort()) asm(join(runtime, 'lib', f), join(objDir, `lib-${f}.o`));
    const elf = join(objDir, `${name}.elf`);
    run('ld', ['-static', '-nostdlib', '--no-warn-rwx-segments', '-T', join(root, 'guests', 'link.ld'), '-o', elf, ...objs]);
    renameSync(elf, out);
  } finally {
    rmSync(objDir, { recursive: true, force: true });
  }
  return out;
}

export function guestPath(guest) {
  if (existsSync(guest)) return resolve(guest);
  const built = join(root, 'build', 'guests', `${guest}.elf`);
  if (existsSync(built)) return built;
  throw new Error(`guest not found: ${guest} (neither a file nor build/guests/${guest}.elf)`);
}

/** image.ts through tsx: already loaded under `node --import tsx` (ava), registered otherwise. */
async function imageModule() {
  try {
    return await import('./image.ts');
  } catch (e) {
    if (e?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw e;
    const { tsImport } = await import('tsx/esm/api');
    return tsImport('./image.ts', import.meta.url);
  }
}

/**
 * Boots one guest on KVM and resolves with kvm-run's JSON result plus `argv`:
 * { console, reason ('exit' | 'hlt' | 'triple-fault' | 'unhandled-io' | 'mmio' | 'timeout'
 *   | 'internal-error'), status, exits, vmm, unhandledPorts, regs, roi, stats, log }.
 */
export async function runGuestKvm(guest, opts = {}) {
  const memory = opts.memory ?? 64 * MiB;
  const pageSize = opts.pageSize ?? '4k';
  const timeoutMs = Math.round((opts.timeoutSeconds ?? 120) * 1000);
  const file = guestPath(guest);
  const { buildKvmImage, kvmRunArgs } = await imageModule();
  const img = buildKvmImage(new Uint8Array(readFileSync(file)), { memory, pageSize, args: opts.args, cmdline: opts.cmdline }, file);
  const bin = buildKvmRun();
  const argv = [...kvmRunArgs(img, memory), '--timeout-ms', String(timeoutMs), '--host-thp', opts.hostThp ? '1' : '0'];
  if (opts.strict) argv.push('--strict');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // kvm-run refusing the image closes stdin early: reported below
    child.on('close', (code) => {
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code !== 0) return reject(new Error(`kvm-run exited with ${code}: ${stderr}`));
      try {
        const r = JSON.parse(Buffer.concat(out).toString('utf8'));
        resolvePromise({ ...r, stderr, argv: [bin, ...argv], boot: { entry: img.entry, pml4: img.layout.pml4, bootInfo: img.layout.bootInfo, freeStart: img.layout.freeStart } });
      } catch (e) {
        reject(new Error(`kvm-run printed no JSON result (${e.message}): ${stderr}`));
      }
    });
    child.stdin.end(img.records);
  });
}

function parseCli(argv) {
  const o = { guest: undefined, opts: {}, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--mem') o.opts.memory = Number(next());
    else if (a === '--pages') o.opts.pageSize = next();
    else if (a === '--args') o.opts.args = next().split(',').filter((s) => s !== '').map((s) => BigInt(s));
    else if (a === '--cmdline') o.opts.cmdline = next();
    else if (a === '--timeout') o.opts.timeoutSeconds = Number(next());
    else if (a === '--host-thp') o.opts.hostThp = true;
    else if (a === '--strict') o.opts.strict = true;
    else if (a === '--json') o.json = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (o.guest === undefined) o.guest = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!o.guest) throw new Error('usage: run-guest.mjs GUEST [--mem BYTES] [--pages 4k|2m|1g] [--args a,b] [--cmdline TEXT] [--timeout S] [--host-thp] [--strict] [--json]');
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { guest, opts, json } = parseCli(process.argv.slice(2));
    const why = kvmUnavailableReason();
    if (why) throw new Error(why);
    const r = await runGuestKvm(guest, opts);
    if (json) console.log(JSON.stringify(r));
    else {
      process.stdout.write(r.console);
      if (r.log) process.stderr.write(r.log);
      console.error(`[kvm] ${r.reason}${r.status === null ? '' : ` status ${r.status}`} at RIP ${r.regs.rip}`);
    }
    process.exit(r.status ?? 1);
  } catch (e) {
    console.error(`error: ${e.message}`);
    process.exit(2);
  }
}
