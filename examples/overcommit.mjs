// Overcommit: two VMs on a 48 MiB host with a swap device, each touching 32 MiB. The second
// one's faults push the first one's pages to swap; both finish with their data intact.
import { createHost, sample } from 'hugevisor';

const host = createHost({ memory: 48 << 20, swap: { bytes: 64 << 20 }, thp: { enabled: 'never' } });
try {
  const [a, b] = [1, 2].map(() => host.createVm({ memory: 64 << 20, args: [32 << 20] }, sample('mem-scan')));
  for (const [name, vm] of [['A', a], ['B', b]]) process.stdout.write(`${name}: ${vm.run().console}`);
  const { pswpout, pswpin } = host.vmstat();
  console.log(`host: pswpout ${pswpout}, pswpin ${pswpin}, MemFree ${host.meminfo().MemFree} kB`);
} finally {
  host.close();
}
