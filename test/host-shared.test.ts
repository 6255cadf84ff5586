// A host with several VMs on it (createHost): each VM is a VMM process on the same simulated
// host, so they compete for its frames (overcommit swaps one VM's pages out for the other),
// knobs change between run() pieces, and closing the host closes its VMs.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { ConfigError, createHost } from '../src/api/index.ts';

const MiB = 2 ** 20;
const image = (name: string) => ({ bytes: new Uint8Array(readFileSync(`build/guests/${name}.elf`)), name });
const CHECKSUM = 'mem-scan: region 33554432 passes 1 checksum 0x000007ffffe00000\n';

test('two VMs overcommitting a 48 MiB host with swap both finish with their data intact; the host swapped', (t) => {
  using host = createHost({ memory: 48 * MiB, swap: { bytes: 64 * MiB }, thp: { enabled: 'never' } });
  const a = host.createVm({ memory: 64 * MiB, args: [32 * MiB] }, image('mem-scan'));
  const b = host.createVm({ memory: 64 * MiB, args: [32 * MiB] }, image('mem-scan'));
  t.is(a.run().console, CHECKSUM);
  t.is(b.run().console, CHECKSUM, 'B ran while A held most of the host: A was swapped out');
  t.like(host.vmstat(), { pswpout: 4883, pswpin: 21 });
  t.is(host.meminfo().MemFree, 2504);
  a.close();
  t.is(host.meminfo().MemFree, 16132, "A's frames went back to the host when A closed");
  t.is(b.result().exitStatus, 0, 'B is untouched by A closing');
});

test('without swap the second VM stops with host-oom, naming the host memory', (t) => {
  using host = createHost({ memory: 48 * MiB, thp: { enabled: 'never' } });
  const a = host.createVm({ memory: 64 * MiB, args: [32 * MiB] }, image('mem-scan'));
  const b = host.createVm({ memory: 64 * MiB, args: [32 * MiB] }, image('mem-scan'));
  t.is(a.run().exitStatus, 0);
  const r = b.run();
  t.is(r.stopReason, 'host-oom');
  t.is(r.error?.code, 'ENOMEM');
  t.true(r.finished);
});

test('a knob changed between run() pieces takes effect at once: THP turned on mid-run maps 2 MiB from then on', (t) => {
  using host = createHost({ memory: 128 * MiB, thp: { enabled: 'never' } });
  const vm = host.createVm({ memory: 64 * MiB, args: [32 * MiB] }, image('demand-paging'));
  const first = vm.run({ maxInstructions: 500_000 });
  t.is(first.memory.ept!.pages_2m, 0);
  t.false(first.finished);
  host.setKnob('enabled', 'always');
  t.is(host.knobs.enabled, 'always');
  const r = vm.run();
  t.is(r.exitStatus, 0);
  t.is(r.memory.ept!.pages_2m, 17);
  t.throws(() => host.setKnob('enabled', 'sometimes'), { instanceOf: ConfigError, message: 'transparent_hugepage/enabled: expected always|madvise|never, got "sometimes"' });
});

test('closing the host closes every VM on it; a VM config on a shared host has no host section', (t) => {
  const host = createHost({ memory: 64 * MiB });
  const vm = host.createVm({ memory: 16 * MiB }, image('hello'));
  t.throws(() => host.createVm({ memory: 16 * MiB, host: { clock: false } } as never, image('hello')), {
    instanceOf: ConfigError,
    message: 'host: a VM on a shared host takes its host from createHost(); set knobs with host.setKnob()',
  });
  host.close();
  t.throws(() => vm.run(), { instanceOf: ConfigError, message: 'vm.run: this VM was closed (vm.close())' });
  t.throws(() => host.createVm({ memory: 16 * MiB }, image('hello')), { instanceOf: ConfigError, message: 'host: used after close()' });
  t.throws(() => createHost({} as never), { instanceOf: ConfigError, message: /^host\.memory: required/ });
});

test('6.x host overcommitted by two VMs with THP: to a partition THPs go out whole (thp_swpout), to a swap file they are split first; the data stays intact', (t) => {
  const figures: Record<string, Record<string, number>> = {};
  for (const type of ['partition', 'file'] as const) {
    using host = createHost({ memory: 48 * MiB, kernel: '6.x', swap: { bytes: 64 * MiB, type } });
    const a = host.createVm({ memory: 64 * MiB, args: [32 * MiB] }, image('mem-scan'));
    const b = host.createVm({ memory: 64 * MiB, args: [32 * MiB] }, image('mem-scan'));
    t.is(a.run().console, CHECKSUM);
    t.is(b.run().console, CHECKSUM);
    t.is(a.run().exitStatus, 0);
    const v = host.vmstat();
    const pmd = host.mthpStats()!['2048kB'];
    t.is(pmd.swpout, v.thp_swpout, 'hugepages-2048kB/stats/swpout counts what thp_swpout counts');
    t.is(pmd.swpout_fallback, v.thp_swpout_fallback);
    figures[type] = { ...v, ...pmd };
    t.log(type, JSON.stringify({ pswpout: v.pswpout, pswpin: v.pswpin, thp_swpout: v.thp_swpout, thp_swpout_fallback: v.thp_swpout_fallback, thp_split_pmd: v.thp_split_pmd, thp_split_page: v.thp_split_page }));
  }
  t.true(figures.partition.thp_swpout >= 1, 'a partition takes whole THPs');
  t.is(figures.partition.thp_swpout_fallback, 0);
  t.true(figures.partition.pswpout >= 512 * figures.partition.thp_swpout);
  t.is(figures.file.thp_swpout, 0, 'a swap file never takes a large folio whole');
  t.true(figures.file.thp_swpout_fallback >= 1);
  t.true(figures.file.thp_split_page >= figures.file.thp_swpout_fallback);
});
