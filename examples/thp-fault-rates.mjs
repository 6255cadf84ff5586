// One guest's fault rates with host THP always vs never: totals, per million instructions
// and per simulated second (node thp-fault-rates.mjs, with hugevisor installed).
import { createVm, sample } from 'hugevisor';

const guest = sample('demand-paging');
for (const thp of ['always', 'never']) {
  const vm = createVm({ memory: 128 << 20, args: [64 << 20], host: { thp: { enabled: thp } } }, guest);
  const { rates } = vm.run();
  vm.close();
  console.log(`host THP ${thp}\n${'event'.padEnd(20)}${'total'.padStart(12)}${'per M instr'.padStart(16)}${'per sim-s'.padStart(16)}`);
  for (const [name, r] of Object.entries(rates.events)) {
    console.log(`${name.padEnd(20)}${String(r.total).padStart(12)}${r.per_million_instructions.toFixed(2).padStart(16)}${r.per_sim_second.toFixed(0).padStart(16)}`);
  }
}
