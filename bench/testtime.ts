/**
 * `npm run bench -- testtime`: the CPU time of every `npm test` file, each run alone under
 * /usr/bin/time, as a table sorted by CPU seconds, and the estimated wall of `npm test` on a
 * quiet 2-core machine. Options: --jobs=N (files at once), --slow (test:slow's files too),
 * --json=OUT, --before=OLD.json. It is tools/testtime/run.mjs, which also takes file names
 * (`node tools/testtime/run.mjs test/NAME.test.ts ...`). Only when named: it runs the whole
 * suite (~5 min of CPU). docs/testing.md "Test time".
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure } from './_figures.ts';

const script = fileURLToPath(new URL('../tools/testtime/run.mjs', import.meta.url));
const summaryFile = join(tmpdir(), `hv-testtime-${process.pid}.json`);
const r = spawnSync(process.execPath, [script, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, HV_TESTTIME_SUMMARY: summaryFile } });
if (existsSync(summaryFile)) {
  const s = JSON.parse(readFileSync(summaryFile, 'utf8'));
  rmSync(summaryFile, { force: true });
  figure('npm test files, CPU in one ava run', s.suiteCpu, 's', 'lower');
  figure('longest test file, CPU', s.longestCpu, 's', 'lower');
  figure('npm test, estimated wall on a quiet 2-core machine', s.quietWallEstimate, 's', 'lower');
}
process.exitCode = r.status ?? 1;
