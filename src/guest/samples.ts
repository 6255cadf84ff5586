/**
 * The sample guests `npm install` builds (build/guests/NAME.elf) and what their sources say
 * about them, read from the header comment of guests/NAME.s (`#` comments) or
 * guests/c/NAME.c (`//` comments) so it cannot drift from the guest: the first line
 * `# name: what it does`, and one line per argument the guest reads with arg_or (assembly)
 * or hv_arg (C):
 *
 *   # arg 0: region = 256M bytes (rounded down to a power of two)
 *   // arg 0: table = 8M bytes (rounded down to a power of two, at least 4 KiB)
 *
 * `arg N:` the boot-info args[] index, then the name, `=` the default (a number or a size),
 * an optional unit and an optional note in parentheses. test/cli-list.test.ts checks that
 * each guest documents exactly the indices and defaults its arg_or/hv_arg calls use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sampleNames, samplesSourceDir } from './file.ts';

/** The source a sample is built from: guests/NAME.s, else guests/c/NAME.c (null: neither). */
export function sampleSource(name: string): string | null {
  for (const src of [join(samplesSourceDir(), `${name}.s`), join(samplesSourceDir(), 'c', `${name}.c`)]) if (existsSync(src)) return src;
  return null;
}

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

const ARG_LINE = /^(?:#|\/\/)\s*arg\s+(\d+):\s*([^=]+?)\s*=\s*(\S+)\s*([^(]*?)\s*(?:\((.*)\))?\s*$/;

/**
 * The description and arguments from a guest's source text: the leading block of `#`
 * (assembly) or `//` (C) comment lines, whichever the first line uses.
 */
export function parseSampleHeader(source: string): { description: string; args: SampleArg[] } {
  const lines = source.split('\n');
  const marker = lines[0]?.startsWith('//') ? '//' : '#';
  const m = /^(?:#|\/\/)\s*[\w-]+:\s*(.*)$/.exec(lines[0] ?? '');
  const args: SampleArg[] = [];
  for (const line of lines) {
    if (!line.startsWith(marker)) break;
    const a = ARG_LINE.exec(line);
    if (a) args.push({ index: Number(a[1]), name: a[2]!, default: a[3]!, unit: a[4] || null, note: a[5] ?? null });
  }
  return { description: m ? m[1]!.trim() : '', args: args.sort((x, y) => x.index - y.index) };
}

/** Every built sample with the description and arguments of its source's header. */
export function sampleInfos(): SampleInfo[] {
  return sampleNames().map((name) => {
    const src = sampleSource(name);
    return { name, ...parseSampleHeader(src ? readFileSync(src, 'utf8') : '') };
  });
}
