// hugevisor sweep end to end, as a user runs it (the built CLI in a child process): a sweep
// killed with SIGKILL mid-point and rerun holds every point exactly once, equal to an
// uninterrupted sweep's row for row (wall-clock columns aside), time series included; a
// rerun of a finished sweep runs nothing; results exports the rows.
import test from 'ava';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rows } from './fixtures/results-db.ts';
import { cli, root } from './fixtures/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hv-sweep-'));
const spec = join(dir, 'grid.json');
// 8 points of about half a second each, with a time series per point.
writeFileSync(
  spec,
  JSON.stringify({
    guests: [{ guest: 'mem-scan', args: [16 << 20] }, { guest: 'pointer-chase', args: [16 << 20, 300000] }],
    config: { memory: 32 << 20 },
    sampleEvery: { simulatedNs: 1e6 },
    vary: { guestPageSize: ['4k', '2m'], 'host.thp.enabled': ['never', 'always'] },
  }),
);
const POINTS = 8;

function countPoints(db: string): number {
  if (!existsSync(db)) return 0;
  try {
    const d = new Database(db, { readonly: true });
    try {
      return (d.prepare('SELECT count(*) AS n FROM points').get() as { n: number }).n;
    } finally {
      d.close();
    }
  } catch {
    return 0; // created but not yet laid out
  }
}

test('a sweep killed with SIGKILL mid-point resumes: every point exactly once, equal to an uninterrupted sweep', async (t) => {
  t.timeout(4 * 60_000);
  const whole = join(dir, 'whole');
  const first = await cli(['sweep', spec, '--out', whole, '--jobs', '2']);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /sweep: 8 run, 0 already there, 0 failed/);

  const killed = join(dir, 'killed');
  const db = join(killed, 'results.sqlite');
  const child = spawn(process.execPath, ['bin/hugevisor.mjs', 'sweep', spec, '--out', killed, '--jobs', '2'], { cwd: root, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
  // Poll the database, not a clock: kill as soon as the first points have landed.
  let landed = 0;
  for (let i = 0; i < 6000 && landed === 0; i++) {
    await sleep(10);
    landed = countPoints(db);
  }
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  const atKill = countPoints(db);
  t.true(atKill >= 1 && atKill < POINTS, `killed mid-sweep with ${atKill} of ${POINTS} points stored`);
  const check = new Database(db, { readonly: true });
  t.is(check.pragma('integrity_check', { simple: true }), 'ok');
  check.close();

  const resumed = await cli(['sweep', spec, '--out', killed, '--jobs', '2']);
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stderr, new RegExp(`sweep: ${POINTS} points, ${atKill} already in `));
  t.regex(resumed.stderr, new RegExp(`sweep: ${POINTS - atKill} run, ${atKill} already there, 0 failed`));

  const want = rows(join(whole, 'results.sqlite'), 'points');
  const got = rows(db, 'points');
  t.is(want.size, POINTS);
  t.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, r] of want) t.deepEqual(got.get(k), r, `point ${r.label}`);
  const wantSamples = rows(join(whole, 'results.sqlite'), 'samples');
  t.true(wantSamples.size > POINTS, 'each point has a time series');
  t.deepEqual(rows(db, 'samples'), wantSamples);

  const again = await cli(['sweep', spec, '--out', killed]);
  t.is(again.code, 0);
  t.regex(again.stderr, /sweep: 0 run, 8 already there, 0 failed/);
  t.is(rows(db, 'points').size, POINTS);
});

test('results exports CSV or JSON Lines, filtered by an SQL expression; a bad expression is one error line', async (t) => {
  const out = join(dir, 'small');
  const small = join(dir, 'small.json');
  writeFileSync(small, JSON.stringify({ guests: ['hello'], config: { memory: 8 << 20 }, vary: { ept: [false, true] } }));
  t.is((await cli(['sweep', small, '--out', out])).code, 0);
  const csv = await cli(['results', out]);
  t.is(csv.code, 0);
  const lines = csv.stdout.trim().split('\n');
  t.is(lines.length, 3);
  t.true(lines[0]!.startsWith('key,sweep,guest,guest_sha256,repeat,label,params,ept,'));
  const jsonl = await cli(['results', join(out, 'results.sqlite'), '--jsonl', '--where', 'ept = 1']);
  const recs = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.is(recs.length, 1);
  t.is(recs[0].label, 'hello ept=true');
  t.is(recs[0].config.ept, true);
  t.is(recs[0].result.console, 'Hello from a hugevisor guest!\n');
  t.is(recs[0].stop_reason, 'exit');
  const bad = await cli(['results', out, '--where', 'no_such_column = 1']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^error: --where: no such column: no_such_column \(columns: key, /);
  t.is(bad.stderr.trim().split('\n').length, 1);
});

test('pool threads do not inherit a TypeScript loader the main thread runs under (it cost every thread ~0.5 s)', async (t) => {
  const { withoutTsLoader } = await import('../src/experiments/pool.ts');
  t.deepEqual(withoutTsLoader(['--import=tsx', '--max-old-space-size=4096', '--import', 'tsx', '--enable-source-maps']), ['--max-old-space-size=4096', '--enable-source-maps']);
  t.deepEqual(withoutTsLoader(['--import', './other.mjs']), ['--import', './other.mjs']);
});
