/**
 * The figures a bench reports, beside its printed text: `figure(name, value, unit, better)`
 * appends one JSON line to the file bench/run.mjs names in HV_BENCH_FIGURES, so a run can be
 * saved (bench/results/*.json, git-ignored) and compared with an earlier one
 * (`npm run bench -- --compare OLD.json`). Without the variable it does nothing.
 */
import { appendFileSync } from 'node:fs';

export type Better = 'higher' | 'lower';

export function figure(name: string, value: number, unit: string, better: Better): void {
  const file = process.env.HV_BENCH_FIGURES;
  if (!file || !Number.isFinite(value)) return;
  appendFileSync(file, JSON.stringify({ bench: process.env.HV_BENCH_NAME ?? '', name, value, unit, better }) + '\n');
}
