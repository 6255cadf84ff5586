#!/usr/bin/env node
// `node tools/testtime/run.mjs [FILE...] [--jobs N] [--slow] [--json OUT] [--before OLD.json]`:
// the CPU time of each ava test file, run on its own (`ava FILE` under /usr/bin/time), as a
// table sorted by CPU seconds (user + sys, the process and all its waited-for children: the
// ava workers, their tsx loaders, and the builds, guests, QEMU and KVM runs they start). CPU
// time is what a loaded machine does not change much; the suite's wall on a quiet 2-core
// machine is about max(total CPU / 2, the longest file's CPU). With no FILE it times every
// file `npm test` runs (package.json "ava".files); --slow adds `npm run test:slow`'s.
// Each file pays its own ava start-up here, which one `npm test` pays once: the estimate
// subtracts it (measured: `ava` given no file) and adds what `npm test` runs before ava
// (`node scripts/build.mjs --js`, `tsc --noEmit`), timed the same way.
// --jobs N runs N files at once (default 1; each file's CPU is still its own); --json saves
// the table, --before prints an earlier --json beside it. Options also take the form --jobs=N.
// `npm run bench -- testtime` runs it. Needs `npm run build` first (dist/, the addon, guests).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const opt = (name) => {
  const eq = argv.findIndex((a) => a.startsWith(`${name}=`));
  if (eq >= 0) return argv.splice(eq, 1)[0].slice(name.length + 1);
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) {
    console.error(`error: ${name} needs a value`);
    process.exit(2);
  }
  argv.splice(i, 2);
  return v;
};
const jobs = Number(opt('--jobs') ?? 1);
const jsonOut = opt('--json');
const compareFile = opt('--before');
const slow = argv.includes('--slow');
if (!Number.isInteger(jobs) || jobs < 1) {
  console.error('error: --jobs needs a positive integer');
  process.exit(2);
}
if (!existsSync('/usr/bin/time')) {
  console.error('error: /usr/bin/time is missing (Debian package `time`)');
  process.exit(2);
}

/** The files `npm test` runs: test/*.test.ts less package.json's "!" patterns (plain paths). */
function suiteFiles() {
  const ava = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).ava;
  const skip = new Set(ava.files.filter((p) => p.startsWith('!')).map((p) => p.slice(1)));
  const all = readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`);
  return slow ? all : all.filter((f) => !skip.has(f));
}
let files = argv.filter((a) => !a.startsWith('--'));
if (!files.length) files = suiteFiles();
for (const f of files) {
  if (!existsSync(join(root, f))) {
    console.error(`error: no test file ${f}`);
    process.exit(2);
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'hv-testtime-'));
const ava = join(root, 'node_modules', '.bin', 'ava');
// A file named on ava's command line runs even if package.json's "files" leaves it out;
// the slow files need the slow config's options, which are package.json's.
function timeOne(file, i) {
  return new Promise((resolve) => {
    const out = join(tmp, `${i}.time`);
    const child = spawn('/usr/bin/time', ['-f', '%U %S %e', '-o', out, ava, file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => { log += d; });
    child.on('close', (code) => {
      const [user, sys, wall] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
      const passed = /(\d+) tests? passed/.exec(log)?.[1] ?? '0';
      const skipped = /(\d+) tests? skipped/.exec(log)?.[1] ?? '0';
      resolve({ file, user, sys, cpu: +(user + sys).toFixed(2), wall, ok: code === 0, passed: Number(passed), skipped: Number(skipped), log: code === 0 ? undefined : log.slice(-3000) });
    });
  });
}

const results = [];
let next = 0;
async function worker() {
  while (next < files.length) {
    const i = next++;
    const r = await timeOne(files[i], i);
    results.push(r);
    process.stderr.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.cpu.toFixed(1).padStart(7)} s CPU ${r.wall.toFixed(1).padStart(7)} s wall  ${r.file}\n`);
    if (!r.ok) process.stderr.write(r.log + '\n');
  }
}
/** CPU seconds (user + sys, children included) of one command, run to completion. */
function cpuOf(cmd, args) {
  const out = join(tmp, 'one.time');
  spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', out, cmd, ...args], { cwd: root, stdio: 'ignore' });
  const [u, s] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return u + s;
}
const started = Date.now();
const avaStart = Math.min(...[0, 1, 2].map(() => cpuOf(ava, [join('test', 'no-such-file.test.ts')])));
const before = cpuOf(process.execPath, [join(root, 'scripts', 'build.mjs'), '--js']) + cpuOf(join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', '.']);
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));

results.sort((a, b) => b.cpu - a.cpu || a.file.localeCompare(b.file));
const old = compareFile ? new Map(JSON.parse(readFileSync(compareFile, 'utf8')).files.map((r) => [r.file, r])) : undefined;
const total = results.reduce((s, r) => s + r.cpu, 0);
console.log(`| # | file | CPU s (user+sys) |${old ? ' before |' : ''} wall s | tests |`);
console.log(`|---:|---|---:|${old ? '---:|' : ''}---:|---:|`);
results.forEach((r, i) => {
  const o = old?.get(r.file);
  const before = old ? ` ${o ? o.cpu.toFixed(1) : '–'} |` : '';
  console.log(`| ${i + 1} | ${r.file.replace(/^test\//, '')}${r.ok ? '' : ' (FAILED)'} | ${r.cpu.toFixed(1)} |${before} ${r.wall.toFixed(1)} | ${r.passed}${r.skipped ? ` (+${r.skipped} skipped)` : ''} |`);
});
const longest = results[0]?.cpu ?? 0;
const oldTotal = old ? results.reduce((s, r) => s + (old.get(r.file)?.cpu ?? 0), 0) : undefined;
const suite = total - (results.length - 1) * avaStart;
const wall = before + Math.max(suite / 2, longest);
console.log(`\n${results.length} files, total CPU ${total.toFixed(0)} s${old ? ` (before ${oldTotal.toFixed(0)} s)` : ''}; longest file ${longest.toFixed(1)} s CPU`);
console.log(`ava start-up (no file) ${avaStart.toFixed(2)} s CPU, paid once by one ava run: the files in one run ≈ ${suite.toFixed(0)} s CPU`);
console.log(`npm test before ava (build:js + tsc --noEmit): ${before.toFixed(1)} s CPU`);
console.log(`estimated wall of \`npm test\` on a quiet 2-core machine: ${before.toFixed(0)} + max(${suite.toFixed(0)} / 2, ${longest.toFixed(0)}) = ${wall.toFixed(0)} s`);
console.log(`this run: ${((Date.now() - started) / 1000).toFixed(0)} s wall, --jobs ${jobs}`);
rmSync(tmp, { recursive: true, force: true });
const summary = { files: results.length, totalCpu: total, avaStartCpu: avaStart, suiteCpu: suite, beforeAvaCpu: before, longestCpu: longest, quietWallEstimate: wall };
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ when: new Date().toISOString(), node: process.version, ...summary, files: results.map(({ log, ...r }) => r) }, null, 2) + '\n');
if (process.env.HV_TESTTIME_SUMMARY) writeFileSync(process.env.HV_TESTTIME_SUMMARY, JSON.stringify(summary) + '\n');
if (results.some((r) => !r.ok)) process.exitCode = 1;
