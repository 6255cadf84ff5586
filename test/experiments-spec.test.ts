// Sweep specs: the product of the varied fields over the guests, times the repeats, plus the
// explicit points; every point checked by the API before anything runs (one error naming
// the point and the field), keyed by what runs, and EPT-off points without a host section.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, resolveConfig } from '../src/api/index.ts';
import { expandSpec, pointKey } from '../src/experiments/spec.ts';

function specFile(name: string, body: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'hv-spec-'));
  const p = join(dir, name);
  writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
  return p;
}

test('a spec expands to guests × the product of vary × repeats, then the explicit points', (t) => {
  const s = expandSpec(
    specFile('grid.json', {
      guests: ['hello', { guest: 'mem-scan', args: [1048576] }],
      config: { memory: 8 << 20 },
      vary: { guestPageSize: ['4k', '2m'], 'host.thp.enabled': ['never', 'always'] },
      repeats: 2,
      points: [{ guest: 'gups', args: ['4194304', 100], config: { memory: 16 << 20, tlb: 'none' } }],
    }),
  );
  t.is(s.name, 'grid');
  t.is(s.points.length, 2 * 4 * 2 + 2);
  t.is(s.duplicates, 0);
  const p = s.points[3]!;
  t.deepEqual(p.params, { guestPageSize: '4k', 'host.thp.enabled': 'always' });
  t.is(p.repeat, 1);
  t.is(p.label, 'hello guestPageSize=4k host.thp.enabled=always #1');
  t.is(p.effective.host?.thp.enabled, 'always');
  t.deepEqual(p.effective, resolveConfig({ memory: 8 << 20, guestPageSize: '4k', host: { thp: { enabled: 'always' } } }));
  t.is(p.key, pointKey(p.effective, p.guestSha256, 1));
  t.not(p.key, s.points[2]!.key, 'repeats are distinct points');
  const last = s.points.at(-1)!;
  t.deepEqual(last.effective.args, ['4194304', '100']);
  t.is(last.effective.memory, 16 << 20);
  t.is(new Set(s.points.map((q) => q.key)).size, s.points.length);
});

test('with EPT off a point drops the host section, so points that differ only there run once', (t) => {
  const s = expandSpec(specFile('seed.json', { guests: ['hello'], config: { memory: 8 << 20 }, vary: { ept: [false, true], 'host.thp.enabled': ['never', 'always'] } }));
  t.is(s.points.length, 3);
  t.is(s.duplicates, 1);
  t.deepEqual(s.points.map((p) => p.label), ['hello ept=false', 'hello ept=true host.thp.enabled=never', 'hello ept=true host.thp.enabled=always']);
  t.is(s.points[0]!.effective.host, null);
});

test('a YAML spec reads as its JSON twin and gives the same keys', (t) => {
  const yaml = expandSpec(specFile('s.yaml', 'guests: [hello]\nconfig:\n  memory: 8388608\nvary:\n  guestPageSize: [4k, 2m]\n'));
  const json = expandSpec(specFile('s.json', { guests: ['hello'], config: { memory: 8388608 }, vary: { guestPageSize: ['4k', '2m'] } }));
  t.deepEqual(yaml.points.map((p) => p.key), json.points.map((p) => p.key));
});

test('a bad point is one ConfigError naming the point and the field; a bad spec names the file and the entry', (t) => {
  t.throws(() => expandSpec(specFile('bad.json', { guests: ['hello'], vary: { 'host.thp.enabled': ['never', 'sometimes'] } })), {
    instanceOf: ConfigError,
    message: 'point 1 (hello host.thp.enabled=sometimes): host.thp.enabled: expected always|madvise|never, got "sometimes"',
  });
  t.throws(() => expandSpec(specFile('bad.json', { guests: ['hello'], vary: { memory: [8 << 20, 1000] } })), { message: /^point 1 \(hello memory=1000\): memory: expected a multiple of 4 KiB/ });
  t.throws(() => expandSpec(specFile('bad.json', { guests: ['nope'] })), { message: /^point 0 \(nope\): unknown sample 'nope' \(samples: .*hello/ });
  const f = specFile('bad.json', { guests: ['hello'], repeats: 0 });
  t.throws(() => expandSpec(f), { message: `${f}: repeats: Too small: expected number to be >=1` });
  const g = specFile('bad.json', { guest: ['hello'] });
  t.throws(() => expandSpec(g), { message: new RegExp(`^${g}: \\(top level\\): Unrecognized key: "guest"`) });
  const h = specFile('bad.yaml', 'guests: [hello\n');
  t.throws(() => expandSpec(h), { message: new RegExp(`^${h}: not valid YAML`) });
});

test("a guest's `when` adds config at one value of a varied field, outside the label; a field not varied is an error", (t) => {
  const s = expandSpec(
    specFile('when.json', {
      guests: ['hello', { guest: 'mem-scan', args: [1048576], when: { guestPageSize: { '2m': { cmdline: 'huge', args: [2097152] } } } }],
      config: { memory: 8 << 20 },
      vary: { guestPageSize: ['4k', '2m'] },
    }),
  );
  t.deepEqual(s.points.map((p) => [p.label, p.effective.cmdline, p.effective.args]), [
    ['hello guestPageSize=4k', null, []],
    ['hello guestPageSize=2m', null, []],
    ['mem-scan guestPageSize=4k', null, ['1048576']],
    ['mem-scan guestPageSize=2m', 'huge', ['2097152']],
  ]);
  const f = specFile('when-bad.json', { guests: [{ guest: 'hello', when: { ept: { true: { cmdline: 'x' } } } }], vary: { guestPageSize: ['4k'] } });
  t.throws(() => expandSpec(f), { instanceOf: ConfigError, message: `${f}: guest hello: when.ept: not a varied field (vary: guestPageSize)` });
});
