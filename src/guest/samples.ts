/**
 * The sample guests `npm install` builds (build/guests/NAME.elf) and what their sources say
 * about them, read from the header comment of guests/NAME.s so it cannot drift from the
 * guest: the first line `# name: what it does`, and one line per argument the guest reads
 * with arg_or:
 *
 *   # arg 0: region = 256M bytes (rounded down to a power of two)
 *
 * `arg N:` the boot-info args[] index, then the name, `=` the default (a number or a size),
 * an optional unit and an optional note in parentheses. test/cli-list.test.ts checks that
 * each guest documents exactly the indices and defaults its arg_or calls use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sampleNames, samplesSourceDir } from './file.ts';

export interface SampleArg {
  index: number;
  name: string;
  /** The default as written (1000000, 256M). */
  default: string;
  unit: string | null;
  note: string | null;
}

export interface SampleInfo {
  name: string;
  description: string;
  args: SampleArg[];
}

const ARG_LINE = /^#\s*arg\s+(\d+):\s*([^=]+?)\s*=\s*(\S+)\s*([^(]*?)\s*(?:\((.*)\))?\s*$/;

/** The description and arguments from a guest's source text (the leading comment block). */
export function parseSampleHeader(source: string): { description: string; args: SampleArg[] } {
  const lines = source.split('\n');
  const m = /^#\s*[\w-]+:\s*(.*)$/.exec(lines[0] ?? '');
  const args: SampleArg[] = [];
  for (const line of lines) {
    if (!line.startsWith('#')) break;
    const a = ARG_LINE.exec(line);
    if (a) args.push({ index: Number(a[1]), name: a[2]!, default: a[3]!, unit: a[4] || null, note: a[5] ?? null });
  }
  return { description: m ? m[1]!.trim() : '', args: args.sort((x, y) => x.index - y.index) };
}

/** Every built sample with the description and arguments of its source's header. */
export function sampleInfos(): SampleInfo[] {
  return sampleNames().map((name) => {
    const src = join(samplesSourceDir(), `${name}.s`);
    return { name, ...parseSampleHeader(existsSync(src) ? readFileSync(src, 'utf8') : '') };
  });
}
