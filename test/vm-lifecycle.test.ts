// A VM's memory comes back when it is closed, not when the event loop turns or the garbage
// collector runs: close() (or `using`) returns the arena's pages, the host's frames and swap
// file and the vCPU's buffers at once; anything but close() afterwards is a clear error.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { ConfigError, createVm } from '../src/api/index.ts';
import { createVm as createInternalVm } from '../src/kvm/vm.ts';
import type { EptMemoryBackend } from '../src/kvm/mmu/ept-memory.ts';

const MiB = 2 ** 20;
const image = (name: string) => ({ bytes: new Uint8Array(readFileSync(`build/guests/${name}.elf`)), name });
const demandPaging = image('demand-paging');

test('close() frees at once: the guest bytes read zero, the host is closed, the vCPU refuses to run', (t) => {
  const vm = createInternalVm({ memory: 32 * MiB, args: [8 * MiB] }, demandPaging);
  t.is(vm.run()!.exitStatus, 0);
  const b = vm.backend as EptMemoryBackend;
  const chunk = new Uint8Array(b.arena.chunks[0]!);
  t.true(chunk.some((x) => x !== 0), 'the guest wrote its memory');
  vm.close();
  t.true(chunk.every((x) => x === 0), 'MADV_DONTNEED: the pages went back to the kernel');
  t.throws(() => b.host.newProcess(), { message: 'host: used after close()' });
  t.is(vm.vcpu.native.run(1000), 7, 'a stray native run() after release is an INTERNAL exit, not a crash');
  vm.close(); // idempotent
});

test('every method but close() after close() is a ConfigError naming it', (t) => {
  const vm = createVm({ memory: 4 * MiB, ept: false }, image('hello'));
  vm.close();
  t.throws(() => vm.run(), { instanceOf: ConfigError, message: 'vm.run: this VM was closed (vm.close())' });
  t.throws(() => vm.result(), { instanceOf: ConfigError, message: 'vm.result: this VM was closed (vm.close())' });
  t.throws(() => vm.counters(), { instanceOf: ConfigError, message: 'vm.counters: this VM was closed (vm.close())' });
  t.throws(() => vm.eptView(0, 4096), { instanceOf: ConfigError, message: 'vm.eptView: this VM was closed (vm.close())' });
});

test('`using` closes the VM at the end of its block', (t) => {
  let outside: ReturnType<typeof createVm>;
  {
    using vm = createVm({ memory: 4 * MiB }, image('hello'));
    outside = vm;
    t.is(vm.run()!.console, 'Hello from a hugevisor guest!\n');
  }
  t.throws(() => outside.run(), { instanceOf: ConfigError });
});

test('a synchronous create/run/close loop does not accumulate guest memory', (t) => {
  // 40 VMs each touching 16 MiB: 640 MiB if nothing came back before the loop ends (the
  // bench `lifecycle` runs 200 × 64 MiB and prints the growth).
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 40; i++) {
    using vm = createVm({ memory: 32 * MiB, args: [16 * MiB] }, demandPaging);
    t.is(vm.run()!.exitStatus, 0);
  }
  const growth = (process.memoryUsage().rss - before) / MiB;
  t.true(growth < 200, `RSS grew ${growth.toFixed(0)} MiB over 40 closed VMs`);
});
