import test from 'ava';
import { ConfigError } from '../src/util/errors.ts';
import { createHost } from '../src/mm/index.ts';
import { defaultKnobs } from '../src/mm/knobs.ts';

const MiB = 1 << 20;

test('knob defaults are those of Linux 2.6.38 (defrag=always)', (t) => {
  const h = createHost({ memoryBytes: 4 * MiB });
  t.deepEqual(h.knobs, {
    enabled: 'always',
    defrag: 'always',
    khugepaged: { defrag: true, pages_to_scan: 4096, scan_sleep_millisecs: 10000, alloc_sleep_millisecs: 60000, max_ptes_none: 511 },
  });
  t.deepEqual(defaultKnobs(), h.knobs);
  h.close();
});

test('valid knob writes take effect', (t) => {
  const h = createHost({ memoryBytes: 4 * MiB });
  h.setKnob('enabled', 'madvise');
  h.setKnob('defrag', 'never');
  h.setKnob('khugepaged/defrag', 'no');
  h.setKnob('khugepaged/pages_to_scan', '512');
  h.setKnob('khugepaged/max_ptes_none', 0);
  t.is(h.knobs.enabled, 'madvise');
  t.is(h.knobs.defrag, 'never');
  t.false(h.knobs.khugepaged.defrag);
  t.is(h.knobs.khugepaged.pages_to_scan, 512);
  t.is(h.knobs.khugepaged.max_ptes_none, 0);
  h.close();
});

test('bad knob values are ConfigErrors naming the knob and the allowed values', (t) => {
  const h = createHost({ memoryBytes: 4 * MiB });
  t.throws(() => h.setKnob('enabled', 'sometimes'), {
    instanceOf: ConfigError,
    message: 'transparent_hugepage/enabled: expected always|madvise|never, got "sometimes"',
  });
  t.throws(() => h.setKnob('defrag', 1), { instanceOf: ConfigError, message: 'transparent_hugepage/defrag: expected always|madvise|never, got 1' });
  t.throws(() => h.setKnob('khugepaged/defrag', 'maybe'), {
    instanceOf: ConfigError,
    message: 'transparent_hugepage/khugepaged/defrag: expected true|false (sysfs: yes|no), got "maybe"',
  });
  t.throws(() => h.setKnob('khugepaged/max_ptes_none', 512), {
    instanceOf: ConfigError,
    message: 'transparent_hugepage/khugepaged/max_ptes_none: expected an integer from 0 to 511, got 512',
  });
  t.throws(() => h.setKnob('khugepaged/pages_to_scan', 0), {
    instanceOf: ConfigError,
    message: 'transparent_hugepage/khugepaged/pages_to_scan: expected an integer from 1 to 4294967295, got 0',
  });
  t.throws(() => h.setKnob('khugepaged/scan_sleep_millisecs', '-5'), {
    instanceOf: ConfigError,
    message: 'transparent_hugepage/khugepaged/scan_sleep_millisecs: expected an integer from 0 to 4294967295, got "-5"',
  });
  t.throws(() => h.setKnob('khugepaged/alloc_sleep_millisecs', 1.5), {
    instanceOf: ConfigError,
    message: 'transparent_hugepage/khugepaged/alloc_sleep_millisecs: expected an integer from 0 to 4294967295, got 1.5',
  });
  t.throws(() => h.setKnob('hugeness', 'always'), { instanceOf: ConfigError, message: /^transparent_hugepage\/hugeness: no such knob \(known: enabled, / });
  t.is(h.knobs.enabled, 'always', 'a rejected write changes nothing');
  h.close();
});

test('bad host config values are ConfigErrors naming the field', (t) => {
  t.throws(() => createHost({ memoryBytes: 3 * MiB }), {
    instanceOf: ConfigError,
    message: 'host.memoryBytes: expected a positive multiple of 2 MiB (2097152) below 8 TiB, got 3145728',
  });
  t.throws(() => createHost({ memoryBytes: 16 * 2 ** 40 }), { instanceOf: ConfigError, message: /^host\.memoryBytes: .*below 8 TiB, got 17592186044416$/ });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { enabled: 'yes' as never } }), {
    instanceOf: ConfigError,
    message: 'host.thp.enabled: expected always|madvise|never, got "yes"',
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { khugepaged: { max_ptes_none: -1 } } }), {
    instanceOf: ConfigError,
    message: 'host.thp.khugepaged.max_ptes_none: expected an integer from 0 to 511, got -1',
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, min_free_frames: 1025 }), {
    instanceOf: ConfigError,
    message: 'host.min_free_frames: expected an integer from 0 to 1024, got 1025',
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, physmem: new ArrayBuffer(MiB) }), { instanceOf: ConfigError, message: /smaller than memoryBytes/ });
  t.throws(() => createHost(null as never), { instanceOf: ConfigError, message: 'host: expected an object, got null' });
});

test('unknown host config keys are refused, naming the known ones', (t) => {
  t.throws(() => createHost({ memoryBytes: 4 * MiB, memory: 1 } as never), {
    instanceOf: ConfigError,
    message: 'host: unknown key "memory" (known: memoryBytes, physmem, kernel, thp, swap, min_free_frames, debugChecks)',
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { khugepaged: { scan_sleep: 1 } } } as never), {
    instanceOf: ConfigError,
    message: /^host\.thp\.khugepaged: unknown key "scan_sleep" \(known: defrag, pages_to_scan, /,
  });
});

test('host.kernel: 2.6.38 by default; 6.x has the Linux 6.18 defaults (defrag=madvise, use_zero_page=1, shrink_underused=1, max_ptes_swap=64, max_ptes_shared=256, 2048kB inherit)', (t) => {
  const old = createHost({ memoryBytes: 4 * MiB });
  t.is(old.kernel, '2.6.38');
  t.false('use_zero_page' in old.knobs);
  t.false('max_ptes_swap' in old.knobs.khugepaged);
  old.close();
  const h = createHost({ memoryBytes: 4 * MiB, kernel: '6.x' });
  t.is(h.kernel, '6.x');
  t.deepEqual(h.knobs, {
    enabled: 'always',
    defrag: 'madvise',
    use_zero_page: 1,
    shrink_underused: 1,
    sizes: { '16kB': 'never', '32kB': 'never', '64kB': 'never', '128kB': 'never', '256kB': 'never', '512kB': 'never', '1024kB': 'never', '2048kB': 'inherit' },
    khugepaged: { defrag: true, pages_to_scan: 4096, scan_sleep_millisecs: 10000, alloc_sleep_millisecs: 60000, max_ptes_none: 511, max_ptes_swap: 64, max_ptes_shared: 256 },
  });
  t.deepEqual(defaultKnobs('6.x'), h.knobs);
  h.close();
  const given = createHost({ memoryBytes: 4 * MiB, kernel: '6.x', thp: { use_zero_page: 0, sizes: { '64kB': 'always' }, khugepaged: { max_ptes_shared: 0 } } });
  t.is(given.knobs.use_zero_page, 0);
  t.is(given.knobs.sizes!['64kB'], 'always');
  t.is(given.knobs.sizes!['2048kB'], 'inherit');
  t.is(given.knobs.khugepaged.max_ptes_shared, 0);
  t.is(given.knobs.khugepaged.max_ptes_swap, 64);
  given.close();
});

test('host.kernel errors: an unknown kernel, and the knobs 2.6.38 did not have, are ConfigErrors naming the path', (t) => {
  t.throws(() => createHost({ memoryBytes: 4 * MiB, kernel: '5' as never }), { instanceOf: ConfigError, message: 'host.kernel: expected 2.6.38|6.x, got "5"' });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { use_zero_page: 1 } }), {
    instanceOf: ConfigError,
    message: "host.thp.use_zero_page: no such knob in Linux 2.6.38 (a 6.x knob: set host.kernel to '6.x')",
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, kernel: '2.6.38', thp: { khugepaged: { max_ptes_swap: 64, max_ptes_shared: 1 } } }), {
    instanceOf: ConfigError,
    message:
      "host.thp.khugepaged.max_ptes_swap: no such knob in Linux 2.6.38 (a 6.x knob: set host.kernel to '6.x'); host.thp.khugepaged.max_ptes_shared: no such knob in Linux 2.6.38 (a 6.x knob: set host.kernel to '6.x')",
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { sizes: { '2048kB': 'inherit' } } }), { instanceOf: ConfigError, message: /^host\.thp\.sizes: no such knob in Linux 2\.6\.38/ });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, kernel: '6.x', thp: { sizes: { '8kB': 'always' } as never } }), { instanceOf: ConfigError, message: /^host\.thp\.sizes: unknown key "8kB" \(known: 16kB, 32kB, / });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, kernel: '6.x', thp: { sizes: { '64kB': 'sometimes' as never } } }), {
    instanceOf: ConfigError,
    message: 'host.thp.sizes.64kB: expected always|inherit|madvise|never, got "sometimes"',
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, kernel: '6.x', thp: { use_zero_page: 2 } }), { instanceOf: ConfigError, message: 'host.thp.use_zero_page: expected 0|1, got 2' });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, kernel: '6.x', thp: { khugepaged: { max_ptes_swap: 512 } } }), {
    instanceOf: ConfigError,
    message: 'host.thp.khugepaged.max_ptes_swap: expected an integer from 0 to 511, got 512',
  });
});

test('the 6.x sysfs knobs: writable on a 6.x host, "no such knob" on a 2.6.38 host', (t) => {
  const h = createHost({ memoryBytes: 4 * MiB, kernel: '6.x' });
  h.setKnob('use_zero_page', '0');
  h.setKnob('khugepaged/max_ptes_swap', '8');
  h.setKnob('khugepaged/max_ptes_shared', 0);
  h.setKnob('hugepages-64kB/enabled', 'inherit');
  t.is(h.knobs.use_zero_page, 0);
  t.is(h.knobs.khugepaged.max_ptes_swap, 8);
  t.is(h.knobs.khugepaged.max_ptes_shared, 0);
  t.is(h.knobs.sizes!['64kB'], 'inherit');
  t.throws(() => h.setKnob('use_zero_page', '2'), { instanceOf: ConfigError, message: 'transparent_hugepage/use_zero_page: expected 0|1, got 2' });
  t.throws(() => h.setKnob('hugepages-8kB/enabled', 'always'), { instanceOf: ConfigError, message: /^transparent_hugepage\/hugepages-8kB\/enabled: no such knob \(known: / });
  h.close();
  const old = createHost({ memoryBytes: 4 * MiB });
  for (const path of ['use_zero_page', 'khugepaged/max_ptes_swap', 'khugepaged/max_ptes_shared', 'hugepages-2048kB/enabled']) {
    t.throws(() => old.setKnob(path, '1'), { instanceOf: ConfigError, message: new RegExp(`^transparent_hugepage/${path}: no such knob in Linux 2\\.6\\.38 \\(a 6\\.x knob\\)`) });
  }
  old.close();
});

test('transparent_hugepage/shrink_underused (6.x): host.thp.shrink_underused 0|1, a ConfigError under 2.6.38; its sysfs store takes what kstrtobool does', (t) => {
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { shrink_underused: 0 } }), {
    instanceOf: ConfigError,
    message: "host.thp.shrink_underused: no such knob in Linux 2.6.38 (a 6.x knob: set host.kernel to '6.x')",
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, kernel: '6.x', thp: { shrink_underused: 2 } }), { instanceOf: ConfigError, message: /^host\.thp\.shrink_underused: / });
  const old = createHost({ memoryBytes: 4 * MiB });
  t.throws(() => old.setKnob('shrink_underused', '0'), { instanceOf: ConfigError, message: /^transparent_hugepage\/shrink_underused: no such knob in Linux 2\.6\.38 \(a 6\.x knob\)/ });
  old.close();
  const h = createHost({ memoryBytes: 4 * MiB, kernel: '6.x', thp: { shrink_underused: 0 } });
  t.is(h.knobs.shrink_underused, 0);
  // kstrtobool: the first character decides (1 y Y t T / 0 n N f F), 'on' / 'off' by the second
  const seen: [string, number][] = [];
  for (const v of ['1', 'n', 'yes', 'off', 'True', 'no\n', 'on', '0']) {
    h.setKnob('shrink_underused', v);
    seen.push([v, h.knobs.shrink_underused!]);
  }
  t.deepEqual(seen, [['1', 1], ['n', 0], ['yes', 1], ['off', 0], ['True', 1], ['no\n', 0], ['on', 1], ['0', 0]]);
  for (const bad of ['2', 'o', 'maybe', '']) {
    t.throws(() => h.setKnob('shrink_underused', bad), { instanceOf: ConfigError, message: /^transparent_hugepage\/shrink_underused: / }, JSON.stringify(bad));
  }
  t.is(h.knobs.shrink_underused, 0, 'a rejected write changes nothing');
  h.close();
});
