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
    message: 'transparent_hugepage/enabled: invalid value "sometimes" (allowed: always, madvise, never)',
  });
  t.throws(() => h.setKnob('defrag', 1), { instanceOf: ConfigError, message: /defrag.*allowed: always, madvise, never/ });
  t.throws(() => h.setKnob('khugepaged/defrag', 'maybe'), { instanceOf: ConfigError, message: /khugepaged\/defrag.*allowed: yes, no/ });
  t.throws(() => h.setKnob('khugepaged/max_ptes_none', 512), { instanceOf: ConfigError, message: /max_ptes_none.*from 0 to 511/ });
  t.throws(() => h.setKnob('khugepaged/pages_to_scan', 0), { instanceOf: ConfigError, message: /pages_to_scan.*from 1 to/ });
  t.throws(() => h.setKnob('khugepaged/scan_sleep_millisecs', '-5'), { instanceOf: ConfigError, message: /scan_sleep_millisecs/ });
  t.throws(() => h.setKnob('khugepaged/alloc_sleep_millisecs', 1.5), { instanceOf: ConfigError, message: /alloc_sleep_millisecs/ });
  t.throws(() => h.setKnob('hugeness', 'always'), { instanceOf: ConfigError, message: /no such knob/ });
  t.is(h.knobs.enabled, 'always', 'a rejected write changes nothing');
  h.close();
});

test('bad host config values are ConfigErrors naming the field', (t) => {
  t.throws(() => createHost({ memoryBytes: 3 * MiB }), { instanceOf: ConfigError, message: /memoryBytes.*multiple of 2 MiB/ });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { enabled: 'yes' as never } }), { instanceOf: ConfigError, message: /enabled/ });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, thp: { khugepaged: { max_ptes_none: -1 } } }), {
    instanceOf: ConfigError,
    message: /max_ptes_none/,
  });
  t.throws(() => createHost({ memoryBytes: 4 * MiB, physmem: new ArrayBuffer(MiB) }), { instanceOf: ConfigError, message: /smaller than memoryBytes/ });
});
