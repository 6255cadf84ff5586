#!/usr/bin/env node
// `npm run bench [-- name...]`: runs bench/<name>.ts for each name (all benches when none),
// each in its own process so they do not disturb one another.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const extra = process.argv.slice(2).filter((a) => a.startsWith('-'));
for (const n of names) {
  if (!all.includes(n)) {
    console.error(`error: unknown bench "${n}" (have: ${all.join(', ')})`);
    process.exit(2);
  }
}
let status = 0;
for (const n of names.length ? names : all) {
  console.log(`== bench ${n}`);
  const r = spawnSync(process.execPath, ['--import=tsx', join(dir, `${n}.ts`), ...extra], { stdio: 'inherit' });
  if (r.status !== 0) status = 1;
}
process.exit(status);
