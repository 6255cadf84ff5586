// How bin/hugevisor.mjs starts the CLI (docs/performance.md, "Start-up and the issue table"):
// run/stat/list/ept-dump come from dist/cli/hugevisor.cjs compiled from V8's code cache the
// build wrote, which must be the cache of exactly that script and accepted by this node; a
// cache from another build is never used, and without one the CLI runs the same.
import test from 'ava';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { cli, root } from './fixtures/cli.ts';

const report = { HUGEVISOR_CODE_CACHE_REPORT: '1' };

function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...report } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

test('the build writes the code cache of the bundle it built, headed by the bundle\'s content hash', (t) => {
  const source = readFileSync(join(root, 'dist', 'cli', 'hugevisor.cjs'), 'latin1');
  const firstLine = source.slice(0, source.indexOf('\n') + 1);
  t.regex(firstLine, /^\/\/ hugevisor-cli [0-9a-f]{64}\n$/);
  const cache = readFileSync(join(root, 'dist', 'cli', 'hugevisor.cjs.cache'));
  t.is(cache.subarray(0, firstLine.length).toString('latin1'), firstLine);
  t.true(cache.length - firstLine.length > 100_000, 'the cache holds compiled code, not only the top level');
  // The loader reads the bundle as latin1: every byte must be ASCII.
  t.false(/[^\x00-\x7f]/.test(source));
});

test('run and list start from the code cache, and node accepts it; sweep runs the ES-module bundle', async (t) => {
  const hello = await cli(['run', 'hello'], report);
  t.is(hello.code, 0);
  t.is(hello.stdout, 'Hello from a hugevisor guest!\n');
  t.regex(hello.stderr, /^code cache: used\n/);
  const list = await cli(['list'], report);
  t.is(list.code, 0);
  t.regex(list.stderr, /^code cache: used\n$/);
  // The experiments commands do not go through the script (no report line).
  const sweep = await cli(['sweep'], report);
  t.is(sweep.code, 2);
  t.notRegex(sweep.stderr, /code cache/);
});

test('a cache from another build is not handed to V8, a missing one neither; the CLI runs the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-startup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
  for (const f of ['hugevisor.cjs', 'hugevisor.cjs.cache']) cpSync(join(root, 'dist', 'cli', f), join(dir, 'dist', 'cli', f));
  const bin = join(dir, 'bin', 'hugevisor.mjs');
  const usage = (await run(join(root, 'bin', 'hugevisor.mjs'), ['--help'])).stdout;
  t.true(usage.startsWith('usage'), usage.slice(0, 40));

  const copied = await run(bin, ['--help']);
  t.is(copied.stderr, 'code cache: used\n');
  t.is(copied.stdout, usage);

  const cacheFile = join(dir, 'dist', 'cli', 'hugevisor.cjs.cache');
  const cache = readFileSync(cacheFile);
  cache[20] = cache[20] === 0x30 ? 0x31 : 0x30; // a hex digit of the header's hash
  writeFileSync(cacheFile, cache);
  const other = await run(bin, ['--help']);
  t.is(other.stderr, 'code cache: from another build\n');
  t.is(other.stdout, usage);

  rmSync(cacheFile);
  const none = await run(bin, ['--help']);
  t.is(none.stderr, 'code cache: none\n');
  t.is(none.stdout, usage);
});
