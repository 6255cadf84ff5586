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
    message: 'host: unknown key "memory" (known: memoryBytes, physmem, thp, swap, min_free_frames, debugChecks)',
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { khugepaged: { scan_sleep: 1 } } } as never), {
    instanceOf: ConfigError,
    message: /^host\.thp\.khugepaged: unknown key "scan_sleep" \(known: defrag, pages_to_scan, /,
  });
});
