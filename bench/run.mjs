#!/usr/bin/env node
// `npm run bench [-- NAME...] [--compare OLD.json] [--no-save]`: runs bench/NAME.ts for each
// name (every bench when none), each in its own process so they do not disturb one another.
// Each bench prints its text and records its figures (bench/_figures.ts); the run's figures
// are saved to bench/results/<time>.json (git-ignored) and, with --compare, printed beside
// an earlier run's with the change. `npm run bench -- --help` lists the benches.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
// Benches run only when named, not by a bare `npm run bench`: testtime runs the whole test suite.
const onDemand = new Set(['testtime']);
const argv = process.argv.slice(2);

/** A bench's one-line description: the first sentence of its header comment, without the bench's own name. */
function describe(name) {
  const lines = readFileSync(join(dir, `${name}.ts`), 'utf8').split('\n');
  const words = [];
  for (const l of lines) {
    const m = /^\s*(?:\/\*\*|\/\/|\*)\s?(.*)$/.exec(l);
    if (!m || l.trim() === '*/') break;
    if (m[1].trim()) words.push(m[1].trim());
  }
  const text = words.join(' ').replace(/^`npm run bench -- \w+`:\s*|^bench \w+:\s*/, '');
  const first = (/^.*?[.:;](?=\s|$)/.exec(text)?.[0] ?? text).replace(/[:;]$/, '');
  return first.length > 100 ? `${first.slice(0, 99)}…` : first;
}

if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: npm run bench -- [NAME...] [--compare OLD.json] [--no-save]\n\nbenches:');
  for (const n of all) console.log(`  ${n.padEnd(10)} ${describe(n)}${onDemand.has(n) ? ' (only when named)' : ''}`);
  console.log('\nFigures are saved to bench/results/<time>.json; --compare prints each beside OLD.json\'s.');
  console.log('`npm run bench -- table --with-test` also times `npm test` in a fresh clone (the table\'s last row).');
  process.exit(0);
}
const compareAt = argv.indexOf('--compare');
const compareFile = compareAt >= 0 ? argv[compareAt + 1] : undefined;
if (compareAt >= 0 && (!compareFile || !existsSync(compareFile))) {
  console.error(`error: --compare needs an earlier results file (bench/results/*.json), got ${compareFile ?? 'nothing'}`);
  process.exit(2);
}
const names = argv.filter((a, i) => !a.startsWith('-') && !(compareAt >= 0 && i === compareAt + 1));
const extra = argv.filter((a) => a.startsWith('-') && a !== '--compare' && a !== '--no-save');
for (const n of names) {
  if (!all.includes(n)) {
    console.error(`error: unknown bench "${n}" (have: ${all.join(', ')})`);
    process.exit(2);
  }
}

const figuresFile = join(tmpdir(), `hv-bench-${process.pid}.jsonl`);
rmSync(figuresFile, { force: true });
let status = 0;
for (const n of names.length ? names : all.filter((b) => !onDemand.has(b))) {
  console.log(`== bench ${n}`);
  const env = { ...process.env, HV_BENCH_FIGURES: figuresFile, HV_BENCH_NAME: n };
  const r = spawnSync(process.execPath, ['--import=tsx', join(dir, `${n}.ts`), ...extra], { stdio: 'inherit', env });
  if (r.status !== 0) status = 1;
}

const figures = existsSync(figuresFile) ? readFileSync(figuresFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
rmSync(figuresFile, { force: true });
const run = { when: new Date().toISOString(), node: process.version, figures };
if (!argv.includes('--no-save') && figures.length) {
  const out = join(dir, 'results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `${run.when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(run, null, 2) + '\n');
  console.log(`\n${figures.length} figures saved to ${file}`);
}
if (compareFile) {
  const old = new Map(JSON.parse(readFileSync(compareFile, 'utf8')).figures.map((f) => [`${f.bench}: ${f.name}`, f]));
  console.log(`\nchange against ${compareFile}:`);
  for (const f of figures) {
    const key = `${f.bench}: ${f.name}`;
    const o = old.get(key);
    if (!o) {
      console.log(`  ${key}: ${f.value} ${f.unit} (new)`);
      continue;
    }
    const change = o.value !== 0 ? ((f.value - o.value) / Math.abs(o.value)) * 100 : 0;
    const good = f.better === 'higher' ? change >= 0 : change <= 0;
    console.log(`  ${key}: ${o.value} → ${f.value} ${f.unit} (${change >= 0 ? '+' : ''}${change.toFixed(1)}%, ${Math.abs(change) < 0.05 ? 'same' : good ? 'better' : 'worse'})`);
  }
}
process.exit(status);
