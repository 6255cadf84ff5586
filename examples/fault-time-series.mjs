// A time series: the guest's page-fault rate every 500,000 instructions as demand-paging
// fills its region, as CSV (instructions, simulated µs, guest #PF, #PF per M instructions).
import { createVm, sample } from 'hugevisor';

const vm = createVm({ memory: 128 << 20, args: [64 << 20], host: { thp: { enabled: 'never' } } }, sample('demand-paging'));
console.log('instructions,simulated_us,guest_pf,guest_pf_per_M_instr');
vm.run({
  sampleEvery: { instructions: 500_000 },
  onSample: (s) => console.log([s.instructions, (s.simulatedNs / 1e3).toFixed(1), s.counters.exc_pf, ((s.counters.exc_pf * 1e6) / s.counters.instructions).toFixed(1)].join(',')),
});
vm.close();
