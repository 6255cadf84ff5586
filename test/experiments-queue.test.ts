// hugevisor sweep --queue and hugevisor worker, end to end on a real Redis server started
// here: two workers serve the queue, one is killed with SIGKILL in the middle of its first
// point, the other runs everything (the killed worker's point again, once its lock lapses);
// the submitter's database then holds every point exactly once, equal row for row and sample
// for sample to a local --jobs 2 sweep of the same spec (wall-clock columns aside).
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rows } from './fixtures/results-db.ts';
import { assertDistFresh, cli, root } from './fixtures/cli.ts';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
/** Every wait below ends by this much at the latest: a hang guard, not a margin. */
const HANG_GUARD_MS = 5 * 60_000;

const dir = mkdtempSync(join(tmpdir(), 'hv-queue-'));
const spec = join(dir, 'grid.json');
// 6 points of a fraction of a second each, with a time series per point.
writeFileSync(
  spec,
  JSON.stringify({
    guests: [{ guest: 'mem-scan', args: [16 << 20] }, { guest: 'pointer-chase', args: [16 << 20, 300000] }, { guest: 'mem-scan', args: [8 << 20] }],
    config: { memory: 32 << 20 },
    sampleEvery: { simulatedNs: 1e6 },
    vary: { guestPageSize: ['4k', '2m'] },
  }),
);
const POINTS = 6;


function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** True once the server answers PING. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    let got = '';
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) (c.destroy(), resolve(got.startsWith('+PONG')));
    });
    c.on('error', () => resolve(false));
  });
}

/** Wait until `cond` holds, polling; throws when the hang guard runs out. */
async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + HANG_GUARD_MS;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`hang guard: still waiting for ${what} after ${HANG_GUARD_MS / 1000} s`);
    await sleep(20);
  }
}

interface Proc {
  child: ChildProcess;
  log: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(cmd: string, args: string[]): Proc {
  const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, log: '', exit: new Promise((r) => child.on('exit', (code, signal) => r({ code, signal }))) };
  child.stdout!.on('data', (d) => (p.log += d.toString()));
  child.stderr!.on('data', (d) => (p.log += d.toString()));
  return p;
}

const procs: Proc[] = [];
test.after.always(async () => {
  for (const p of procs.reverse()) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGKILL');
      await p.exit;
    }
  }
});

if (!hasRedis) console.log('experiments-queue: skipped, redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)');

(hasRedis ? test : test.skip)('a sweep on a Redis queue: a worker killed mid-point loses its point to another, and every point lands once, equal to a local sweep', async (t) => {
  t.timeout(3 * HANG_GUARD_MS);
  assertDistFresh();
  const port = await freePort();
  const redis = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  procs.push(redis);
  await until('redis-server to answer', () => pong(port));
  const url = `redis://127.0.0.1:${port}`;

  const local = join(dir, 'local');
  const whole = await cli(['sweep', spec, '--out', local, '--jobs', '2']);
  t.is(whole.code, 0, whole.stderr);

  const workers = [0, 1].map(() => start(process.execPath, ['bin/hugevisor.mjs', 'worker', '--queue', url, '--stall-seconds', '2']));
  procs.push(...workers);
  await until('both workers to be ready', () => workers.every((w) => /: serving redis:/.test(w.log)));

  const remote = join(dir, 'remote');
  const submitter = start(process.execPath, ['bin/hugevisor.mjs', 'sweep', spec, '--out', remote, '--queue', url]);
  procs.push(submitter);

  // Kill the first worker to start a point, as soon as it says so.
  const started = (w: Proc) => /: started ([0-9a-f]{64}) /.exec(w.log)?.[1];
  await until('a worker to start a point', () => workers.some((w) => started(w) !== undefined));
  const victim = workers.find((w) => started(w) !== undefined)!;
  const survivor = workers.find((w) => w !== victim)!;
  const lostKey = started(victim)!;
  victim.child.kill('SIGKILL');
  t.is((await victim.exit).signal, 'SIGKILL');
  t.notRegex(victim.log, new RegExp(`done ${lostKey}`), 'killed before its point finished');

  let guard: NodeJS.Timeout | undefined;
  const ended = await Promise.race([submitter.exit, new Promise<null>((r) => (guard = setTimeout(() => r(null), HANG_GUARD_MS)))]);
  clearTimeout(guard);
  t.truthy(ended, `hang guard: the queued sweep did not finish\n${submitter.log}\n--- survivor\n${survivor.log}`);
  t.is(ended?.code, 0, submitter.log);
  t.regex(submitter.log, new RegExp(`sweep: ${POINTS} points, 0 already in .*, ${POINTS} to run on the workers of ${url}`));
  t.regex(submitter.log, new RegExp(`sweep: ${POINTS} run, 0 already there, 0 failed`));
  // The killed worker's point ran again on the survivor.
  t.regex(survivor.log, new RegExp(`started ${lostKey} `));
  t.regex(survivor.log, new RegExp(`done ${lostKey} `));

  const want = rows(join(local, 'results.sqlite'), 'points');
  const got = rows(join(remote, 'results.sqlite'), 'points');
  t.is(want.size, POINTS);
  t.deepEqual([...got.keys()], [...want.keys()]);
  for (const [k, r] of want) t.deepEqual(got.get(k), r, `point ${r.label}`);
  const wantSamples = rows(join(local, 'results.sqlite'), 'samples');
  t.true(wantSamples.size > POINTS, 'each point has a time series');
  t.deepEqual(rows(join(remote, 'results.sqlite'), 'samples'), wantSamples);

  // A rerun finds everything stored and enqueues nothing.
  const again = await cli(['sweep', spec, '--out', remote, '--queue', url]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, new RegExp(`sweep: 0 run, ${POINTS} already there, 0 failed`));

  survivor.child.kill('SIGTERM');
  t.is((await survivor.exit).code, 0, survivor.log);
  t.regex(survivor.log, /: stopped\n/);
});
