// One guest run through the public API, timed: the helper of bench/table.ts and
// bench/cworkloads.ts (the leading underscore keeps bench/run.mjs from listing it).
import { createVm, sample, type RunResult, type VmConfig } from '../src/api/index.ts';

/** Run sample `guest` once in a fresh VM (closed after); CPU and wall time of run() alone. A run that does not finish with status 0 throws. */
export function timedApiRun(guest: string, config: VmConfig): { r: RunResult; cpuNs: number; wallNs: number } {
  const vm = createVm(config, sample(guest));
  try {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const r = vm.run();
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    if (r.exitStatus !== 0 || !r.finished) throw new Error(`${guest} ${(config.args ?? []).join(' ')}: ${r.stopReason}, status ${r.exitStatus}\n${r.console}`);
    return { r, cpuNs: (c1.user + c1.system) * 1000, wallNs: Number(t1 - t0) };
  } finally {
    vm.close();
  }
}
