/**
 * One sweep point, run on a pool thread (src/experiments/pool.ts): load the guest, create
 * the VM, run it to the end (with a time series when the sweep asks for one), close the VM,
 * and hand back what the results database stores. A thread runs one point at a time.
 */
import { createVm, loadGuest, type EffectiveConfig, type RunResult, type Sample, type VmConfig } from '../api/index.ts';

export interface PointTask {
  guest: string;
  guestPath: string;
  /** The guest's ELF bytes, when they come from elsewhere than `guestPath` (a point taken from a queue: src/experiments/queue.ts). */
  guestBytes?: Uint8Array;
  config: VmConfig;
  sampleEvery: { simulatedNs: number } | { instructions: number } | null;
}

/** A run's result without its console bytes (the decoded `console` stays) and its wall-clock figures. */
export type StoredResult = Omit<RunResult, 'consoleBytes' | 'wallSeconds' | 'mips'>;

export interface PointOutcome {
  effective: EffectiveConfig;
  result: StoredResult;
  samples: Sample[];
  /** Wall-clock seconds of the whole point (VM creation, run, close) and of the run loop alone, and the guest MIPS. */
  wallSeconds: number;
  runSeconds: number;
  mips: number;
  startedAt: string;
  finishedAt: string;
}

export default function runPoint(task: PointTask): PointOutcome {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const samples: Sample[] = [];
  let out: Omit<PointOutcome, 'wallSeconds' | 'startedAt' | 'finishedAt'>;
  const vm = createVm(task.config, loadGuest(task.guestBytes ?? task.guestPath, task.guest));
  try {
    const r = task.sampleEvery ? vm.run({ sampleEvery: task.sampleEvery, onSample: (s) => void samples.push(s) }) : vm.run();
    const { consoleBytes: _bytes, wallSeconds, mips, ...result } = r;
    out = { effective: vm.effectiveConfig(), result, samples, runSeconds: wallSeconds, mips };
  } finally {
    vm.close();
  }
  return { ...out, wallSeconds: (performance.now() - t0) / 1000, startedAt, finishedAt: new Date().toISOString() };
}
