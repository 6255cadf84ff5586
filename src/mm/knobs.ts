/**
 * Writes to the sysfs knobs of /sys/kernel/mm/transparent_hugepage (HostApi.setKnob):
 * the text a *_store function parses ('madvise', '512', 'yes'), checked against the
 * knob's schema in config.ts — the same rule and message as the knob in HostConfig.thp,
 * with the sysfs path as its name:
 *
 *   transparent_hugepage/khugepaged/max_ptes_none: expected an integer from 0 to 511, got 512
 *
 * A rejected write changes nothing.
 */
import type { z } from 'zod';
import { ConfigError } from '../util/errors.ts';
import { parseConfig } from '../util/schema.ts';
import { khugepagedKnobSchemas, mthpModeSchema, MTHP_SIZES, shrinkUnderusedSchema, thpModeSchema, useZeroPageSchema, type Kernel, type MthpSize, type ThpKnobs } from './config.ts';

export { defaultKnobs } from './config.ts';

/** Every knob path of Linux 2.6.38 accepted by setKnob (relative to transparent_hugepage/). */
export const KNOB_PATHS = [
  'enabled',
  'defrag',
  'khugepaged/defrag',
  'khugepaged/pages_to_scan',
  'khugepaged/scan_sleep_millisecs',
  'khugepaged/alloc_sleep_millisecs',
  'khugepaged/max_ptes_none',
] as const;

/** The knob paths Linux 6.18 has besides KNOB_PATHS (kernel '6.x'). */
export const KNOB_PATHS_6X = [
  'use_zero_page',
  'shrink_underused',
  'khugepaged/max_ptes_swap',
  'khugepaged/max_ptes_shared',
  ...MTHP_SIZES.map((s) => `hugepages-${s}/enabled`),
] as const;

/** The knob paths of `kernel`. */
export function knobPaths(kernel: Kernel): readonly string[] {
  return kernel === '6.x' ? [...KNOB_PATHS, ...KNOB_PATHS_6X] : KNOB_PATHS;
}

type KhugepagedKnob = keyof typeof khugepagedKnobSchemas;

/** A word as the store functions compare it (surrounding blanks and the newline of `echo` ignored). */
const word = (v: string | number | boolean) => (typeof v === 'string' ? v.trim() : v);

/** strict_strtoul: decimal digits only; anything else goes to the schema as given, which names it. */
const uintText = (v: string | number | boolean) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v);

/** khugepaged/defrag_store: yes or no (true/false also taken: the config's boolean spelled out). */
function yesNo(v: string | number | boolean): unknown {
  const s = word(v);
  if (s === 'yes' || s === 'true') return true;
  if (s === 'no' || s === 'false') return false;
  return s;
}

/**
 * kstrtobool (shrink_underused_store): the first character decides — 1 y Y t T are true,
 * 0 n N f F false, and 'on'/'off' by the second; the rest is refused (-EINVAL), so the
 * schema names it. Booleans are taken as the config's spelling of 1 and 0.
 */
function kstrtobool(v: string | number | boolean): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  const c = v[0] ?? '';
  if ('1yYtT'.includes(c) && c !== '') return 1;
  if ('0nNfF'.includes(c) && c !== '') return 0;
  if (c === 'o' || c === 'O') {
    const d = v[1] ?? '';
    if (d === 'n' || d === 'N') return 1;
    if (d === 'f' || d === 'F') return 0;
  }
  return v;
}

/** Validate and apply one knob write (the sysfs *_store) on a host of `kernel`. Mutates `k`. */
export function setKnob(k: ThpKnobs, path: string, value: string | number | boolean, kernel: Kernel = '2.6.38'): void {
  const name = `transparent_hugepage/${path}`;
  if (!knobPaths(kernel).includes(path)) {
    const note = (KNOB_PATHS_6X as readonly string[]).includes(path) ? ' in Linux 2.6.38 (a 6.x knob)' : '';
    throw new ConfigError(`${name}: no such knob${note} (known: ${knobPaths(kernel).join(', ')})`);
  }
  if (path === 'enabled' || path === 'defrag') {
    k[path] = parseConfig(thpModeSchema, word(value), name);
    return;
  }
  if (path === 'use_zero_page') {
    k.use_zero_page = parseConfig(useZeroPageSchema, uintText(value), name);
    return;
  }
  if (path === 'shrink_underused') {
    k.shrink_underused = parseConfig(shrinkUnderusedSchema, kstrtobool(value), name);
    return;
  }
  const size = /^hugepages-(\d+kB)\/enabled$/.exec(path)?.[1] as MthpSize | undefined;
  if (size !== undefined) {
    k.sizes![size] = parseConfig(mthpModeSchema, word(value), name);
    return;
  }
  const knob = path.slice('khugepaged/'.length);
  const kk = knob as KhugepagedKnob;
  const schema: z.ZodType = khugepagedKnobSchemas[kk];
  const parsed = parseConfig(schema, kk === 'defrag' ? yesNo(value) : uintText(value), name);
  (k.khugepaged as Record<KhugepagedKnob, unknown>)[kk] = parsed;
}
