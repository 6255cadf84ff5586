// Real guests on the real vCPU through the Vm API (no CLI): the boot protocol seen from
// inside the guest for every guest page size, including memory sizes with remainders.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createVm } from '../src/kvm/vm.ts';
import type { VmConfig } from '../src/api/types.ts';
import { ConfigError } from '../src/util/errors.ts';

const image = (n: string) => ({ bytes: new Uint8Array(readFileSync(new URL(`./fixtures/${n}.elf`, import.meta.url))), name: n });
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const configs: [string, VmConfig][] = [
  ['4k pages, 4 MiB', { memory: 4 * MiB, guestPageSize: '4k' }],
  ['2m pages, 3 MiB + 4 KiB', { memory: 3 * MiB + 4 * KiB, guestPageSize: '2m' }],
  ['1g pages, 1 GiB + 2 MiB', { memory: GiB + 2 * MiB, guestPageSize: '1g' }],
  ['1g pages, 2 GiB + 4 KiB', { memory: 2 * GiB + 4 * KiB, guestPageSize: '1g' }],
];

for (const [name, cfg] of configs) {
  test(`the guest sees the boot protocol and can reach the last byte of memory: ${name}`, (t) => {
    const vm = createVm({ ...cfg, cmdline: 'hello boot', args: [40, 7] }, image('bootcheck'));
    const r = vm.run()!;
    t.is(r.error, null);
    t.is(r.console, 'hello boot');
    t.is(r.exitStatus, 42);
    t.is(r.counters.exc_pf, 0);
  });
}

test('without a command line or args the guest sees 0 for both', (t) => {
  const r = createVm({ memory: 8 * MiB }, image('bootcheck')).run()!;
  t.deepEqual([r.console, r.exitStatus], ['', 0]);
});

test('ROI deltas from a real guest count the loop exactly', (t) => {
  const r = createVm({ memory: 4 * MiB }, image('roi')).run()!;
  t.is(r.exitStatus, 300);
  t.is(r.roi.length, 1);
  // mov ecx; 1000 x (add, dec, jnz); mov al; out
  t.is(r.roi[0].counters.instructions, 3003);
  t.is(r.roi[0].counters.exits_io, 1);
  t.is(r.roiOpen, false);
});

test('a TLB geometry in the VM config reaches the native MMU; a bad one is a ConfigError', (t) => {
  const off = { entries: 0, ways: 0 };
  const dflt = createVm({ memory: 4 * MiB }, image('bootcheck')).run()!;
  const r = createVm({ memory: 4 * MiB, tlb: { dtlb4k: off, itlb4k: off } }, image('bootcheck')).run()!;
  t.true(dflt.counters.dtlb_4k_hits > 0);
  t.is(r.counters.dtlb_4k_hits, 0);
  t.is(r.counters.itlb_4k_hits, 0);
  t.is(r.exitStatus, 0);
  // With the L1 arrays off, every L1 hit becomes an STLB hit; the walks stay the same.
  t.is(r.counters.stlb_4k_hits, dflt.counters.stlb_4k_hits + dflt.counters.dtlb_4k_hits + dflt.counters.itlb_4k_hits);
  t.is(r.counters.walks, dflt.counters.walks);
  t.throws(() => createVm({ memory: 4 * MiB, tlb: { dtlb4k: { entries: 3, ways: 2 } } }, image('roi')), { instanceOf: ConfigError, message: /^MMU configuration: tlb\.dtlb_?4k/ });
});

test('guest memory beyond the largest arena (1 TiB) is a ConfigError, not an abort', (t) => {
  t.throws(() => createVm({ memory: 1024 * GiB + 4 * KiB }, image('bootcheck')), { instanceOf: ConfigError, message: 'memory: expected a multiple of 4 KiB from 4 KiB to 1 TiB (4096 to 1099511627776 bytes), got 1099511631872' });
  // Native mode: guest RAM is one arena range of 4 GiB.
  const r = createVm({ ept: false, memory: 4 * GiB, guestPageSize: '1g' }, image('bootcheck')).run()!;
  t.is(r.exitStatus, 0);
});
