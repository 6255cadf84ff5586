// The package's front door: guests by sample name or from a file or bytes, and every result
// saying which tool produced it (version, and the commit when run from a checkout).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, createVm, faultRates, FileError, loadGuest, resolveConfig, resultSchema, sample, sampleNames } from '../src/api/index.ts';
import { root } from './fixtures/cli.ts';

test('sample(name) loads a built sample guest; an unknown name is a FileError listing the samples', (t) => {
  t.true(sampleNames().includes('hello'));
  const hello = sample('hello');
  t.is(hello.name, 'hello');
  t.is(createVm({ memory: 4 << 20 }, hello).run().console, 'Hello from a hugevisor guest!\n');
  t.throws(() => sample('nope'), { instanceOf: FileError, message: /^unknown sample 'nope' \(samples: .*hello.*\)$/ });
});

test('loadGuest reads a checked ELF file, or takes bytes you already have', (t) => {
  const fromFile = loadGuest('build/guests/hello.elf');
  t.is(fromFile.name, 'build/guests/hello.elf');
  t.deepEqual(loadGuest(fromFile.bytes, 'mine'), { bytes: fromFile.bytes, name: 'mine' });
  t.is(loadGuest(fromFile.bytes.slice().buffer).bytes.length, fromFile.bytes.length);
  t.throws(() => loadGuest('/dev/zero'), { instanceOf: FileError, message: "cannot read '/dev/zero': not a regular file (a character device)" });
  t.throws(() => loadGuest('README.md'), { message: 'README.md: bad magic: not an ELF file' });
  t.throws(() => loadGuest(42 as never), { instanceOf: ConfigError, message: 'loadGuest: expected a file path, a Uint8Array or an ArrayBuffer, got 42' });
});

test('every result records its schema and the tool: version and, from a checkout, the commit', (t) => {
  using vm = createVm({ memory: 4 << 20, ept: false }, sample('hello'));
  const r = vm.run();
  t.is(r.schema, resultSchema);
  t.is(r.schema, 'hugevisor.run/4');
  const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
  const checkout = (() => {
    try {
      return statSync(`${root}/.git`).isDirectory();
    } catch {
      return false;
    }
  })();
  const commit = checkout ? execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim() : null;
  t.deepEqual(r.tool, { name: 'hugevisor', version: pkg.version, commit });
});

test('docs/api.md names every export of the API, value and type', async (t) => {
  const doc = readFileSync(`${root}/docs/api.md`, 'utf8');
  const api = await import('../src/api/index.ts');
  const types = [...readFileSync(`${root}/src/api/types.ts`, 'utf8').matchAll(/^export (?:interface|type) (\w+)/gm)].map((m) => m[1]!);
  const missing = [...Object.keys(api), ...types].filter((name) => !doc.includes(`\`${name}`));
  t.deepEqual(missing, []);
  t.true(types.length > 30);
});

test('faultRates(result) gives the result\'s rate block; with other costs the per-second rates follow the new simulated time', (t) => {
  using vm = createVm({ memory: 128 << 20, args: [64 << 20], host: { thp: { enabled: 'never' } } }, sample('demand-paging'));
  const r = vm.run();
  t.deepEqual(faultRates(r), r.rates);
  const slow = faultRates(r, { walk_ref: 250 });
  t.deepEqual(slow.events.guest_pf.total, r.rates.events.guest_pf.total);
  t.is(slow.events.guest_pf.per_million_instructions, r.rates.events.guest_pf.per_million_instructions);
  t.true(slow.events.guest_pf.per_sim_second < r.rates.events.guest_pf.per_sim_second, 'more cycles per walk reference: longer simulated time');
  t.deepEqual(slow.tlb, r.rates.tlb);
  t.deepEqual(faultRates(r.roi[0]!), r.roi[0]!.rates, 'a ROI too');
});

test('resolveConfig(config) is the effective config a VM from it starts with, and rejects a bad value as createVm does', (t) => {
  for (const config of [{ memory: 8 << 20 }, { memory: 8 << 20, ept: false, guestPageSize: '2m' as const, args: [5, 7n] }, { memory: 8 << 20, host: { thp: { enabled: 'never' as const } }, tlb: 'none' as const }]) {
    using vm = createVm(config, sample('hello'));
    t.deepEqual(resolveConfig(config), vm.effectiveConfig());
  }
  const bad = { memory: 8 << 20, host: { thp: { enabled: 'sometimes' } } } as never;
  const e = t.throws(() => resolveConfig(bad), { instanceOf: ConfigError });
  t.is(e?.message, t.throws(() => createVm(bad, sample('hello')))?.message);
  t.is(e?.path, 'host.thp.enabled');
});
