#!/usr/bin/env node
// Builds everything `npm install` promises: the native addons (cmake-js, Release: the
// production hugevisor.node and the test/bench hugevisor_bench.node, see CMakeLists.txt), the
// sample guests (GNU as + ld → build/guests/*.elf) and the JavaScript of src/ (tsc →
// dist/*.js + .d.ts). Flags: --native, --guests, --js (only those parts; none = all),
// --debug (native debug build), --out DIR (guests into DIR instead of build/guests).
//
// The package's "install" script builds only --native --guests: that is what a user's
// machine must build (the addon cannot be downloaded prebuilt). dist/ is built by "prepare"
// — after `npm install` in a checkout and before `npm pack` — so the tarball ships it and a
// user's install needs no TypeScript (a devDependency, absent there).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, basename, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const chosen = ['native', 'guests', 'js'].filter((p) => args.has(`--${p}`));
const parts = new Set(chosen.length ? chosen : ['native', 'guests', 'js']);
// A dependency's files are found where Node finds them: in a user's project npm hoists them
// beside this package (node_modules/cmake-js), not under node_modules/hugevisor/.
const require = createRequire(import.meta.url);

function run(cmd, argv, opts = {}) {
  try {
    execFileSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts });
  } catch (e) {
    console.error(`error: build step failed: ${cmd} ${argv.join(' ')}`);
    process.exit(1);
  }
}

function buildNative() {
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const argv = [cmakeJs, 'compile', '--out', 'build'];
  if (args.has('--debug')) argv.push('--debug');
  run(process.execPath, argv);
}

// Every guests/*.s is one guest. guests/runtime/*.s (the entry stub) is linked into each;
// guests/runtime/lib/*.s is the runtime library, linked as an archive so a guest only gets
// the functions it calls (hello stays the bare entry stub + its own code). guests/isa/*.inc
// are the shared ISA test vectors (also assembled by tools/oracle/).
// Objects go to a per-process directory and each ELF is renamed into place, so concurrent
// builds (parallel test files) never see a half-written file. --out DIR builds elsewhere.
export function buildGuests(out = join(root, 'build', 'guests')) {
  const src = join(root, 'guests');
  const objDir = join(out, `obj-${process.pid}`);
  mkdirSync(objDir, { recursive: true });
  const runtimeDir = join(src, 'runtime');
  const includes = ['-I', runtimeDir, '-I', join(src, 'isa')];
  const assemble = (dir, prefix) => {
    const objs = [];
    if (!existsSync(dir)) return objs;
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.s')).sort()) {
      const obj = join(objDir, `${prefix}${basename(f, '.s')}.o`);
      run('as', ['--64', ...includes, '-o', obj, join(dir, f)]);
      objs.push(obj);
    }
    return objs;
  };
  const runtimeObjs = assemble(runtimeDir, 'runtime-');
  const libObjs = assemble(join(runtimeDir, 'lib'), 'lib-');
  const lib = join(objDir, 'libguest.a');
  if (libObjs.length) run('ar', ['rcs', lib, ...libObjs]);
  for (const f of readdirSync(src).filter((f) => f.endsWith('.s')).sort()) {
    const name = basename(f, '.s');
    const obj = join(objDir, `${name}.o`);
    run('as', ['--64', ...includes, '-o', obj, join(src, f)]);
    const elf = join(objDir, `${name}.elf`);
    run('ld', ['-static', '-nostdlib', '--no-warn-rwx-segments', '-T', join(src, 'link.ld'), '-o', elf, ...runtimeObjs, obj, ...(libObjs.length ? [lib] : [])]);
    renameSync(elf, join(out, `${name}.elf`));
  }
  buildCGuests(objDir, out, new Set(readdirSync(src).filter((f) => f.endsWith('.s')).map((f) => basename(f, '.s'))));
  buildQemuTrampoline(objDir, out === join(root, 'build', 'guests') ? join(root, 'build', 'qemu') : join(out, 'qemu'));
  rmSync(objDir, { recursive: true, force: true });
}

// The C guests (docs/c-guests.md): every guests/c/*.c is one guest, linked with the SDK
// (guests/c/sdk/: crt0, console, boot info, IDT...) and the guest kernel (guests/c/kernel/:
// demand-paged heap, malloc) as one archive, so a guest gets only what it calls. Each is
// built twice: -O2 into OUT/NAME.elf (the guest) and -O0 into OUT/O0/NAME.elf (only for
// test/guests-build.test.ts, which checks the instructions both levels emit).
export const C_FLAGS = ['-ffreestanding', '-nostdlib', '-static', '-fno-pic', '-fno-pie', '-mno-red-zone', '-mgeneral-regs-only',
  '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables', '-fcf-protection=none', '-fno-builtin',
  '-fno-tree-loop-distribute-patterns', '-std=gnu11', '-Wall', '-Wextra', '-Werror'];
function buildCGuests(objDir, out, asmNames) {
  const dir = join(root, 'guests', 'c');
  if (!existsSync(join(dir, 'link.ld'))) return;
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
  } catch {
    console.warn('warning: gcc not found: the C guests (guests/c/) are not built; the assembly guests are');
    return;
  }
  const include = ['-I', join(dir, 'include')];
  const libSources = ['sdk', 'kernel'].flatMap((d) => readdirSync(join(dir, d)).filter((f) => /\.(c|s)$/.test(f)).sort().map((f) => join(dir, d, f)));
  const crt0 = libSources.find((f) => basename(f) === 'crt0.s');
  for (const [opt, dest] of [['-O2', out], ['-O0', join(out, 'O0')]]) {
    const o = join(objDir, `c${opt}`);
    mkdirSync(o, { recursive: true });
    mkdirSync(dest, { recursive: true });
    const compile = (file) => {
      const obj = join(o, `${basename(file).replace(/\.(c|s)$/, '')}-${basename(dirname(file))}.o`);
      if (file.endsWith('.s')) run('as', ['--64', '-o', obj, file]);
      else run('gcc', [opt, ...C_FLAGS, ...include, '-c', '-o', obj, file]);
      return obj;
    };
    const objs = libSources.map((f) => [f, compile(f)]);
    const lib = join(o, 'libhv.a');
    run('ar', ['rcs', lib, ...objs.filter(([f]) => f !== crt0).map(([, obj]) => obj)]);
    const crt0Obj = objs.find(([f]) => f === crt0)[1];
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.c')).sort()) {
      const name = basename(f, '.c');
      if (asmNames.has(name)) {
        console.error(`error: guests/c/${f} and guests/${name}.s would both build ${name}.elf`);
        process.exit(1);
      }
      const obj = compile(join(dir, f));
      const elf = join(o, `${name}.elf`);
      run('ld', ['-static', '-nostdlib', '--no-warn-rwx-segments', '-z', 'noexecstack', '-T', join(dir, 'link.ld'), '-o', elf, crt0Obj, obj, lib]);
      renameSync(elf, join(dest, `${name}.elf`));
    }
  }
}

// The multiboot trampoline that boots the same guests under QEMU (tools/qemu/).
function buildQemuTrampoline(objDir, out) {
  const dir = join(root, 'tools', 'qemu');
  if (!existsSync(join(dir, 'trampoline.s'))) return;
  mkdirSync(out, { recursive: true });
  run('as', ['--32', '-o', join(objDir, 'trampoline.o'), join(dir, 'trampoline.s')]);
  run('ld', ['-m', 'elf_i386', '--no-warn-rwx-segments', '-T', join(dir, 'trampoline.ld'), '-o', join(objDir, 'trampoline.elf'), join(objDir, 'trampoline.o')]);
  renameSync(join(objDir, 'trampoline.elf'), join(out, 'trampoline.elf'));
}

// src/ → dist/ (tsconfig.build.json). tsc writes into a per-process directory beside dist/
// (the same depth, so the source maps' relative paths hold) and each file is renamed into
// place, as the guests are: a CLI started while dist/ is rebuilt (a test
// running beside `npm pack`) never loads a half-written module. Files whose source is gone
// are removed, so dist/ is exactly what src/ builds.
/**
 * The CLI bundled (dist/cli/hugevisor.js, what bin/hugevisor.mjs runs): loading ~60
 * ES modules one by one was most of `hugevisor run hello`'s start-up. The experiments
 * commands are a chunk loaded only by sweep/results/report, with their optional
 * dependencies left as packages; the native addon is loaded by path at run time.
 */
function bundleCli(outDir) {
  let esbuild;
  try {
    esbuild = require('esbuild');
  } catch {
    console.error('error: bundling the CLI needs esbuild, a devDependency: run `npm install` in the checkout');
    process.exit(1);
  }
  esbuild.buildSync({
    entryPoints: { hugevisor: join(outDir, 'cli', 'main.js') },
    // Beside the modules it bundles: their root lookups (two folders up) hold for it too.
    outdir: join(outDir, 'cli'),
    entryNames: '[name]',
    chunkNames: 'bundle-[name]-[hash]',
    bundle: true,
    // The experiments commands become a chunk of their own, loaded only when used, that
    // shares the rest (error classes included) with the CLI.
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning',
    // The optional dependencies (the experiments backend) stay packages, loaded when used.
    external: Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).optionalDependencies ?? {}),
  });
}

function buildJs() {
  let tsc;
  try {
    tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
  } catch {
    console.error('error: building dist/ needs TypeScript, a devDependency: run `npm install` in the checkout');
    process.exit(1);
  }
  const out = join(root, 'dist');
  const tmp = join(root, `dist-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', tmp]);
    bundleCli(tmp);
    const fresh = new Set();
    const place = (dir) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const from = join(dir, e.name);
        const to = join(out, relative(tmp, from));
        if (e.isDirectory()) {
          mkdirSync(to, { recursive: true });
          place(from);
        } else {
          renameSync(from, to);
        }
        fresh.add(to);
      }
    };
    mkdirSync(out, { recursive: true });
    place(tmp);
    const prune = (dir) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (!fresh.has(p)) rmSync(p, { recursive: true, force: true });
        else if (e.isDirectory()) prune(p);
      }
    };
    prune(out);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (parts.has('native')) buildNative();
const outIdx = process.argv.indexOf('--out');
if (parts.has('guests') && existsSync(join(root, 'guests', 'link.ld'))) buildGuests(outIdx > 0 ? process.argv[outIdx + 1] : undefined);
if (parts.has('js')) buildJs();
