#!/usr/bin/env node
// Builds everything `npm install` promises: the native addon (cmake-js, Release) and the
// sample guests (GNU as + ld → build/guests/*.elf). Flags: --native, --guests (only that
// part), --debug (native debug build).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const only = args.has('--native') ? 'native' : args.has('--guests') ? 'guests' : 'all';

function run(cmd, argv, opts = {}) {
  try {
    execFileSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts });
  } catch (e) {
    console.error(`error: build step failed: ${cmd} ${argv.join(' ')}`);
    process.exit(1);
  }
}

function buildNative() {
  const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  const argv = [cmakeJs, 'compile', '--out', 'build'];
  if (args.has('--debug')) argv.push('--debug');
  run(process.execPath, argv);
}

// Every guests/*.s is one guest; guests/runtime/*.s is linked into each of them;
// guests/isa/*.inc are the shared ISA test vectors (also assembled by tools/oracle/).
export function buildGuests() {
  const src = join(root, 'guests');
  const out = join(root, 'build', 'guests');
  mkdirSync(join(out, 'obj'), { recursive: true });
  const runtimeDir = join(src, 'runtime');
  const runtimeObjs = [];
  if (existsSync(runtimeDir)) {
    for (const f of readdirSync(runtimeDir).filter((f) => f.endsWith('.s')).sort()) {
      const obj = join(out, 'obj', `runtime-${basename(f, '.s')}.o`);
      run('as', ['--64', '-I', runtimeDir, '-o', obj, join(runtimeDir, f)]);
      runtimeObjs.push(obj);
    }
  }
  for (const f of readdirSync(src).filter((f) => f.endsWith('.s')).sort()) {
    const name = basename(f, '.s');
    const obj = join(out, 'obj', `${name}.o`);
    run('as', ['--64', '-I', runtimeDir, '-I', join(src, 'isa'), '-o', obj, join(src, f)]);
    run('ld', ['-static', '-nostdlib', '--no-warn-rwx-segments', '-T', join(src, 'link.ld'), '-o', join(out, `${name}.elf`), ...runtimeObjs, obj]);
  }
  buildQemuTrampoline();
}

// The multiboot trampoline that boots the same guests under QEMU (tools/qemu/).
function buildQemuTrampoline() {
  const dir = join(root, 'tools', 'qemu');
  if (!existsSync(join(dir, 'trampoline.s'))) return;
  const out = join(root, 'build', 'qemu');
  mkdirSync(out, { recursive: true });
  run('as', ['--32', '-o', join(out, 'trampoline.o'), join(dir, 'trampoline.s')]);
  run('ld', ['-m', 'elf_i386', '--no-warn-rwx-segments', '-T', join(dir, 'trampoline.ld'), '-o', join(out, 'trampoline.elf'), join(out, 'trampoline.o')]);
}

if (only !== 'guests') buildNative();
if (only !== 'native' && existsSync(join(root, 'guests', 'link.ld'))) buildGuests();
