// Runs the standalone MMU test driver (native/test/*.cc, including the table builder
// walk_fixture.cc): linked with g++ against every core source of native/sources.txt except
// the N-API glue, so the walker, the EPT and the TLB hierarchy are checked without Node in
// the loop. The build is the AddressSanitizer/UBSan one test/fuzz-native.test.ts links
// against (test/fixtures/native-asan.ts: the core is compiled once, cached by content), so an
// out-of-bounds access or undefined behaviour in a walk fails here too. The driver prints one line per
// check; this test asserts the run passed and that the reference-count oracle checks (docs/mmu-model.md) ran.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ASAN_ENV, asanBinary, root } from './fixtures/native-asan.ts';

const driverDir = join(root, 'native', 'test');
const driver = (ext: string) => readdirSync(driverDir).filter((f) => f.endsWith(ext)).sort().map((f) => join(driverDir, f));

let output = '';
let status: number | null = null;
let stderr = '';

test.before(async () => {
  const binary = await asanBinary('mmu_test', driver('.cc'), driver('.h'));
  const r = spawnSync(binary, { encoding: 'utf8', env: ASAN_ENV });
  output = r.stdout;
  status = r.status;
  stderr = r.stderr;
});

test('the native MMU driver passes every check and exits 0', (t) => {
  const failures = output.split('\n').filter((l) => l.startsWith('FAIL'));
  t.deepEqual(failures, []);
  t.regex(output, /^passed \d+ failed 0$/m);
  t.deepEqual(stderr.split('\n').filter((l) => /AddressSanitizer|runtime error:|LeakSanitizer/.test(l)), []);
  t.is(status, 0);
});

test('the 2D reference counts Σ(m(table)+1) + m(data) are checked for all 9 combinations and native', (t) => {
  for (const g of ['4K', '2M', '1G']) {
    for (const h of ['4K', '2M', '1G', 'none']) {
      for (const mode of ['caches disabled', 'cold caches']) {
        t.true(output.includes(`ok 2d table guest ${g} x EPT ${h} (${mode}): refs\n`), `${g} x ${h} ${mode}`);
      }
    }
  }
  t.true(output.includes('ok mixed example: 4K guest, tables in 4K EPT, data in 2M EPT = 23\n'));
});

test('cache savings, splintering, flushes, violations and bounds are checked', (t) => {
  for (const line of [
    'ok PDE cache hit saves 3x(4+1): 9 refs',
    'ok nested TLB hits save 4 EPT reads per table: 8 refs',
    'ok STLB hit: no references',
    'ok 2M guest over 4K EPT: 4K DTLB entries',
    'ok INVEPT: everything EPT-derived gone, full 2D walk',
    'ok EPT violation on a guest table stops at EPT level 4',
    'ok EPT table pointer outside the arena: misconfig at the next level',
    'ok fuzzed tables: every translation is an in-arena pointer or a fault',
  ]) t.true(output.includes(line + '\n'), line);
});
