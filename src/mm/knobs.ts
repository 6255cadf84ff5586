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
import { khugepagedKnobSchemas, thpModeSchema, type ThpKnobs } from './config.ts';

export { defaultKnobs } from './config.ts';

/** Every knob path accepted by setKnob (relative to transparent_hugepage/). */
export const KNOB_PATHS = [
  'enabled',
  'defrag',
  'khugepaged/defrag',
  'khugepaged/pages_to_scan',
  'khugepaged/scan_sleep_millisecs',
  'khugepaged/alloc_sleep_millisecs',
  'khugepaged/max_ptes_none',
] as const;

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

/** Validate and apply one knob write (the sysfs *_store). Mutates `k`. */
export function setKnob(k: ThpKnobs, path: string, value: string | number | boolean): void {
  const name = `transparent_hugepage/${path}`;
  if (path === 'enabled' || path === 'defrag') {
    k[path] = parseConfig(thpModeSchema, word(value), name);
    return;
  }
  const knob = path.startsWith('khugepaged/') ? path.slice('khugepaged/'.length) : '';
  if (!Object.hasOwn(khugepagedKnobSchemas, knob)) {
    throw new ConfigError(`${name}: no such knob (known: ${KNOB_PATHS.join(', ')})`);
  }
  const kk = knob as KhugepagedKnob;
  const schema: z.ZodType = khugepagedKnobSchemas[kk];
  const parsed = parseConfig(schema, kk === 'defrag' ? yesNo(value) : uintText(value), name);
  (k.khugepaged as Record<KhugepagedKnob, unknown>)[kk] = parsed;
}
