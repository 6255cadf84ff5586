// `npm run bench -- lifecycle`: RSS growth over 200 create → run → close cycles of a VM whose
// guest touches 64 MiB, in one synchronous loop (no event-loop turn, no gc()), EPT on and off.
// Without close() the arena and the vCPU buffers wait for finalizers; with it the growth must
// stay within 50 MiB (the figure printed; a bench, not a timed test).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createVm } from '../src/api/index.ts';
import { figure } from './_figures.ts';

const MiB = 2 ** 20;
const root = fileURLToPath(new URL('..', import.meta.url));
const image = { bytes: new Uint8Array(readFileSync(`${root}/build/guests/demand-paging.elf`)), name: 'demand-paging' };
const rss = (): number => process.memoryUsage().rss / MiB;

export function lifecycle(cycles = 200): void {
  for (const ept of [true, false]) {
    // One cycle first, so lazily loaded code and the addon are not counted as growth.
    createVm({ memory: 128 * MiB, args: [64 * MiB], ept }, image).close();
    const before = rss();
    let peak = before;
    let pf = 0;
    for (let i = 0; i < cycles; i++) {
      using vm = createVm({ memory: 128 * MiB, args: [64 * MiB], ept }, image);
      const r = vm.run()!;
      if (r.exitStatus !== 0) throw new Error(`cycle ${i}: guest stopped with ${r.stopReason}`);
      pf = r.counters.exc_pf ?? 0;
      peak = Math.max(peak, rss());
    }
    const growth = rss() - before;
    figure(`RSS growth over ${cycles} cycles, EPT ${ept ? 'on' : 'off'}`, growth, 'MiB', 'lower');
    console.log(
      `lifecycle ept ${ept ? 'on ' : 'off'}: ${cycles} cycles of a 64 MiB-touching guest (${pf} #PF each): RSS ${before.toFixed(0)} → ${rss().toFixed(0)} MiB ` +
        `(growth ${growth.toFixed(1)} MiB, peak ${peak.toFixed(0)} MiB; bar: growth ≤ 50 MiB) ${growth <= 50 ? 'ok' : 'OVER'}`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) lifecycle(Number(process.argv[2] ?? 200));
