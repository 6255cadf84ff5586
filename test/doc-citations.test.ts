// Every file a document or a comment cites resolves in a clone of this repo: the contracts
// live in docs/, not in a brief outside the tree, and a moved file leaves no dangling name.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { root } from './fixtures/cli.ts';

const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
const TEXT = /\.(md|ts|mts|mjs|cc|h|s|inc|c|ld|sh|txt|json)$/;
/** A repo path in running text: a top-level folder, then a file name with an extension. */
const CITED = /(?<![\w./-])((?:docs|src|native|test|tools|bench|guests|scripts)\/[\w./-]*\.(?:md|ts|mts|mjs|cc|h|sh|s|inc|c|ld|txt|json))(?![\w-])/g;
/** Placeholders that name a family of files, not one. */
const TEMPLATE = /\bNAME\b|\bEARLIER\b|\*/;

function citations(): Array<{ from: string; cited: string }> {
  const out: Array<{ from: string; cited: string }> = [];
  for (const f of tracked) {
    if (!TEXT.test(f) || f.startsWith('test/fixtures/')) continue;
    const text = readFileSync(join(root, f), 'utf8');
    for (const m of text.matchAll(CITED)) if (!TEMPLATE.test(m[1]!)) out.push({ from: f, cited: m[1]! });
  }
  return out;
}

test('every repo path cited in docs, README and source comments exists', (t) => {
  const all = citations();
  t.true(all.length > 100, 'the scan finds the citations');
  t.deepEqual(all.filter((c) => !existsSync(join(root, c.cited))).map((c) => `${c.from} cites ${c.cited}`), []);
});

test('every relative markdown link in README.md and docs/ resolves', (t) => {
  const broken: string[] = [];
  for (const f of tracked.filter((p) => p === 'README.md' || (p.startsWith('docs/') && p.endsWith('.md')))) {
    for (const m of readFileSync(join(root, f), 'utf8').matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      if (!existsSync(join(root, normalize(join(dirname(f), target))))) broken.push(`${f} links ${target}`);
    }
  }
  t.deepEqual(broken, []);
});

test('nothing cites the design brief that a clone does not contain', (t) => {
  const brief = /\b(GUEST-ABI|MMU-MODEL|THP-MODEL|ARCHITECTURE|PERFORMANCE|STYLE)\.md\b|shared\/design/;
  const offenders = tracked.filter((f) => TEXT.test(f) && brief.test(readFileSync(join(root, f), 'utf8')));
  t.deepEqual(offenders, []);
});

test('a link whose text is a code name (`name`) into src/ points at a file that defines or uses that name', (t) => {
  const wrong: string[] = [];
  for (const f of tracked.filter((p) => p === 'README.md' || (p.startsWith('docs/') && p.endsWith('.md')))) {
    for (const m of readFileSync(join(root, f), 'utf8').matchAll(/\[`([\w.]+)(?:\(\))?`\]\(([^)#\s]+\.ts)(?:#[^)]*)?\)/g)) {
      const target = normalize(join(dirname(f), m[2]!));
      if (!target.startsWith('src/') || !existsSync(join(root, target))) continue;
      const name = m[1]!.split('.').pop()!;
      if (!new RegExp(`\\b${name}\\b`).test(readFileSync(join(root, target), 'utf8'))) wrong.push(`${f}: \`${m[1]}\` is not in ${target}`);
    }
  }
  t.deepEqual(wrong, []);
});
