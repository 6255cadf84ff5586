import test from 'ava';
import { spawnSync } from 'node:child_process';
import { addonPath, loadAddon } from '../src/native/addon.ts';
import { ARENA_CHUNK_BYTES, ARENA_MAX_BYTES } from '../src/native/types.ts';

const GiB = 1024 * 1024 * 1024;

test('the arena is zeroed, writable through its ArrayBuffer, and reserved lazily', (t) => {
  const addon = loadAddon();
  const arena = new addon.Arena(4 * GiB);
  t.is(arena.byteLength, 4 * GiB);
  const far = new Uint8Array(arena.buffer, 3 * GiB, 4096);
  t.is(far[123], 0);
  far[123] = 0xab;
  t.is(new Uint8Array(arena.buffer, 3 * GiB + 123, 1)[0], 0xab);
  t.is(new Uint8Array(arena.chunks[3]!)[123], 0xab, 'chunks and buffer are views of the same bytes');
  t.true(arena.discard(3 * GiB, 4096));
  t.is(far[123], 0);
});

test('an arena above 4 GiB is exposed as 1 GiB chunks, the last one shorter', (t) => {
  const addon = loadAddon();
  const arena = new addon.Arena(4 * GiB + 4096);
  t.is(arena.chunkSize, ARENA_CHUNK_BYTES);
  t.deepEqual(arena.chunks.map((c) => c.byteLength), [GiB, GiB, GiB, GiB, 4096]);
  t.true(Object.isFrozen(arena.chunks));
  new Uint8Array(arena.chunks[4]!)[4095] = 7;
  t.true(arena.discard(4 * GiB, 4096));
  t.is(new Uint8Array(arena.chunks[4]!)[4095], 0);
  t.throws(() => arena.buffer, { instanceOf: RangeError, message: /larger than 4 GiB has no single ArrayBuffer; use arena\.chunks/ });
});

test('counter and exit-field names are exported in native order', (t) => {
  const addon = loadAddon();
  t.is(addon.counterNames[0], 'instructions');
  t.is(addon.exitFieldNames[0], 'reason');
  t.true(addon.counterNames.includes('walk_refs'));
});

test('a bad arena size is a clear error, not a crash', (t) => {
  const addon = loadAddon();
  t.throws(() => new addon.Arena(12345), { message: /multiple of 4096/ });
  for (const bad of [0, -4096, 0.5, Number.NaN, Infinity, 1e300, ARENA_MAX_BYTES + 4096]) {
    t.throws(() => new addon.Arena(bad), { instanceOf: RangeError, message: /bytes must be an integer in \(0, 1 TiB\]/ }, String(bad));
  }
});

// Ownership: the Arena lives while the wrapper or any chunk ArrayBuffer does, and is unmapped
// once (a double free would abort the child) after the last one is collected. Run in a child
// with --expose-gc; the 8 GiB mapping is recognised in /proc/self/maps by its size.
const OWNERSHIP_CHILD = `
const addon = require(process.argv[1]);
const { readFileSync } = require('node:fs');
const big = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => {
  const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(l);
  return m && parseInt(m[2], 16) - parseInt(m[1], 16) >= 8 * 2 ** 30;
}).length;
const settle = async () => { for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 5)); } };
(async () => {
  const before = big();
  let arena = new addon.Arena(8 * 2 ** 30);
  let keep = new Uint8Array(arena.chunks[7]);
  keep[2 ** 30 - 1] = 42;
  const mapped = big() - before;
  arena = null;
  await settle();
  const afterArena = big() - before;
  const value = keep[2 ** 30 - 1];
  keep = null;
  await settle();
  console.log(JSON.stringify({ mapped, afterArena, value, afterViews: big() - before }));
})();`;

test('the arena outlives its wrapper while a chunk is alive and is unmapped once after the last view goes', (t) => {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', OWNERSHIP_CHILD, addonPath()], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { mapped: 1, afterArena: 1, value: 42, afterViews: 0 });
});
