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
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
 * The CLI bundled twice (bin/hugevisor.mjs picks one):
 *  - dist/cli/hugevisor.js, ES modules: loading ~60 modules one by one was most of
 *    `hugevisor run hello`'s start-up. The experiments commands are a chunk loaded only by
 *    sweep/worker/results/report, with their optional dependencies left as packages; --debug
 *    runs this one too (it has source maps).
 *  - dist/cli/hugevisor.cjs, one classic script that bin/hugevisor.mjs compiles with
 *    node:vm from V8's code cache (dist/cli/hugevisor.cjs.cache, written by writeCodeCache
 *    below): every other command. Node 20 has no code cache for ES modules, and compiling
 *    the bundle (zod is most of its megabyte) was the largest part of the start-up left.
 *    `import.meta` becomes the loader's __hvImportMeta (the bundle's own URL).
 * The native addon is loaded by path at run time in both.
 */
async function bundleCli(outDir) {
  let esbuild;
  try {
    esbuild = require('esbuild');
  } catch {
    console.error('error: bundling the CLI needs esbuild, a devDependency: run `npm install` in the checkout');
    process.exit(1);
  }
  // The optional dependencies (the experiments backend) stay packages, loaded when used.
  const external = Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).optionalDependencies ?? {});
  const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', external };
  await esbuild.build({
    ...common,
    entryPoints: { hugevisor: join(outDir, 'cli', 'main.js') },
    // Beside the modules it bundles: their root lookups (two folders up) hold for it too.
    outdir: join(outDir, 'cli'),
    entryNames: '[name]',
    chunkNames: 'bundle-[name]-[hash]',
    // The experiments commands become a chunk of their own, loaded only when used, that
    // shares the rest (error classes included) with the CLI.
    splitting: true,
    format: 'esm',
    sourcemap: true,
  });
  const cjs = join(outDir, 'cli', 'hugevisor.cjs');
  await esbuild.build({
    ...common,
    entryPoints: [join(outDir, 'cli', 'main.js')],
    outfile: cjs,
    format: 'cjs',
    define: { 'import.meta': '__hvImportMeta' },
    // ASCII without comments: a quarter smaller to read. Identifiers keep their names (error
    // and class names show in messages).
    charset: 'ascii',
    minifyWhitespace: true,
  });
  // esbuild leaves a few non-ASCII characters in regular expressions: a \uXXXX escape per
  // UTF-16 unit means the same there (and in strings and identifiers) and keeps the file
  // ASCII, which the loader reads as latin1 (no UTF-8 decoding).
  const code = readFileSync(cjs, 'utf8').replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  // The first line names the content, so a code cache is only ever used with the script it
  // was made from (V8's own check compares little more than the source's length).
  writeFileSync(cjs, `// hugevisor-cli ${createHash('sha256').update(code).digest('hex')}\n${code}`);
}

/**
 * V8's code cache of dist/cli/hugevisor.cjs, made by a child `node bin/hugevisor.mjs` (the
 * flags a user's start-up has: V8 rejects a cache made under other flags or another V8)
 * after it ran `run hello` (or `list` when the guests are not built), so it holds the
 * functions a run compiles, not only the top level. Written by the js step and again by
 * the install script's guests step, on the user's machine with the user's node. A rejected
 * or missing cache only costs start-up time: bin/hugevisor.mjs then compiles the script.
 */
function writeCodeCache() {
  const cjs = join(root, 'dist', 'cli', 'hugevisor.cjs');
  if (!existsSync(cjs)) return;
  const hello = join(root, 'build', 'guests', 'hello.elf');
  const argv = existsSync(hello) ? ['run', hello] : ['list'];
  try {
    execFileSync(process.execPath, [join(root, 'bin', 'hugevisor.mjs'), ...argv], {
      cwd: root, stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '', HUGEVISOR_WRITE_CODE_CACHE: '1' },
    });
  } catch {
    // `run hello` exits with the guest's status; the cache is written either way.
  }
  if (!existsSync(`${cjs}.cache`)) console.warn('warning: no V8 code cache for dist/cli/hugevisor.cjs: the CLI starts without it');
}

async function buildJs() {
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
    await bundleCli(tmp);
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
if (parts.has('js')) await buildJs();
// After the guests (the warm-up runs hello) and dist/: the install script refreshes it for the user's node.
if (parts.has('js') || (parts.has('guests') && outIdx < 0)) writeCodeCache();
