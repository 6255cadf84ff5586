/**
 * How `hugevisor list` shows the sample guests (the metadata comes from the API's samples(),
 * read from each guest's source header: src/guest/samples.ts).
 */
import type { SampleArg, SampleInfo } from '../api/index.ts';

/** `[0] region = 256M bytes (rounded down...), [1] updates = 1000000`. */
export function formatSampleArgs(args: readonly SampleArg[]): string {
  return args.map((a) => `[${a.index}] ${a.name} = ${a.default}${a.unit ? ' ' + a.unit : ''}${a.note ? ` (${a.note})` : ''}`).join(', ');
}

/** The list as text: name and description, and an indented `args:` line for a guest that takes any. */
export function formatSampleList(samples: readonly SampleInfo[]): string {
  const w = Math.max(0, ...samples.map((s) => s.name.length));
  let out = '';
  for (const s of samples) {
    out += `${s.name.padEnd(w)}  ${s.description}`.trimEnd() + '\n';
    if (s.args.length) out += `${''.padEnd(w)}  args: ${formatSampleArgs(s.args)}\n`;
  }
  return out;
}
