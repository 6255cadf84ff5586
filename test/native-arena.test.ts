import test from 'ava';
import { loadAddon } from '../src/native/addon.ts';

test('the arena is zeroed, writable through its ArrayBuffer, and reserved lazily', (t) => {
  const addon = loadAddon();
  const arena = new addon.Arena(4 * 1024 * 1024 * 1024);
  t.is(arena.byteLength, 4 * 1024 * 1024 * 1024);
  const far = new Uint8Array(arena.buffer, 3 * 1024 * 1024 * 1024, 4096);
  t.is(far[123], 0);
  far[123] = 0xab;
  t.is(new Uint8Array(arena.buffer, 3 * 1024 * 1024 * 1024 + 123, 1)[0], 0xab);
  t.true(arena.discard(3 * 1024 * 1024 * 1024, 4096));
  t.is(far[123], 0);
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
});
