// A run in pieces: run a guest for 1 M instructions with host THP off, turn THP on, run on.
// The pieces continue exactly; the EPT maps 2 MiB leaves once the knob is on.
import { createHost, sample } from 'hugevisor';

const host = createHost({ memory: 128 << 20, thp: { enabled: 'never' } });
try {
  const vm = host.createVm({ memory: 64 << 20, args: [32 << 20] }, sample('demand-paging'));
  const first = vm.run({ maxInstructions: 1_000_000 });
  console.log(`after ${first.instructions} instructions: ${first.memory.ept.pages_4k} 4K + ${first.memory.ept.pages_2m} 2M EPT leaves (${first.stopReason})`);
  host.setKnob('enabled', 'always');
  const rest = vm.run();
  console.log(`finished: ${rest.instructions} instructions, ${rest.memory.ept.pages_4k} 4K + ${rest.memory.ept.pages_2m} 2M EPT leaves, exit ${rest.exitStatus}`);
} finally {
  host.close();
}
