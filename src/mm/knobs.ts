/**
 * The sysfs knobs of /sys/kernel/mm/transparent_hugepage with Linux 2.6.38 defaults and
 * the kernel's validation (mm/huge_memory.c *_store functions). A bad value is a
 * ConfigError naming the knob and the values it accepts.
 *
 * 2.6.38 defaults: enabled=always (CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS), defrag=always
 * (TRANSPARENT_HUGEPAGE_DEFRAG_FLAG is set unconditionally; madvise became the default
 * only in 4.6), khugepaged/defrag=yes, pages_to_scan=HPAGE_PMD_NR*8=4096,
 * scan_sleep_millisecs=10000, alloc_sleep_millisecs=60000, max_ptes_none=HPAGE_PMD_NR-1.
 */
import { HPAGE_PMD_NR } from '../util/address.ts';
import { ConfigError } from '../util/errors.ts';
import type { HostConfig, ThpDefrag, ThpEnabled, ThpKnobs } from './types.ts';

export function defaultKnobs(): ThpKnobs {
  return {
    enabled: 'always',
    defrag: 'always',
    khugepaged: {
      defrag: true,
      pages_to_scan: HPAGE_PMD_NR * 8,
      scan_sleep_millisecs: 10000,
      alloc_sleep_millisecs: 60000,
      max_ptes_none: HPAGE_PMD_NR - 1,
    },
  };
}

const MODES = ['always', 'madvise', 'never'] as const;
const UINT_MAX = 0xffffffff;

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

function mode(path: string, v: string | number): ThpEnabled & ThpDefrag {
  const s = String(v).trim();
  if (!(MODES as readonly string[]).includes(s)) {
    throw new ConfigError(`transparent_hugepage/${path}: invalid value ${JSON.stringify(v)} (allowed: always, madvise, never)`);
  }
  return s as ThpEnabled;
}

function yesNo(path: string, v: string | number | boolean): boolean {
  const s = String(v).trim();
  if (s === 'yes' || s === 'true') return true;
  if (s === 'no' || s === 'false') return false;
  throw new ConfigError(`transparent_hugepage/${path}: invalid value ${JSON.stringify(v)} (allowed: yes, no)`);
}

function uint(path: string, v: string | number, min: number, max: number): number {
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`transparent_hugepage/${path}: invalid value ${JSON.stringify(v)} (allowed: an integer from ${min} to ${max})`);
  }
  return n;
}

/** Validate and apply one knob write (the sysfs *_store). Mutates `k`. */
export function setKnob(k: ThpKnobs, path: string, value: string | number | boolean): void {
  switch (path) {
    case 'enabled':
      k.enabled = mode(path, value as string);
      return;
    case 'defrag':
      k.defrag = mode(path, value as string);
      return;
    case 'khugepaged/defrag':
      k.khugepaged.defrag = yesNo(path, value);
      return;
    case 'khugepaged/pages_to_scan': // 0 is -EINVAL in pages_to_scan_store
      k.khugepaged.pages_to_scan = uint(path, value as number, 1, UINT_MAX);
      return;
    case 'khugepaged/scan_sleep_millisecs':
      k.khugepaged.scan_sleep_millisecs = uint(path, value as number, 0, UINT_MAX);
      return;
    case 'khugepaged/alloc_sleep_millisecs':
      k.khugepaged.alloc_sleep_millisecs = uint(path, value as number, 0, UINT_MAX);
      return;
    case 'khugepaged/max_ptes_none':
      k.khugepaged.max_ptes_none = uint(path, value as number, 0, HPAGE_PMD_NR - 1);
      return;
    default:
      throw new ConfigError(`transparent_hugepage/${path}: no such knob (known: ${KNOB_PATHS.join(', ')})`);
  }
}

/** Knobs from a HostConfig.thp (defaults for what it leaves out), each value validated. */
export function knobsFromConfig(thp: HostConfig['thp']): ThpKnobs {
  const k = defaultKnobs();
  if (thp === undefined) return k;
  if (typeof thp !== 'object' || thp === null) throw new ConfigError('thp: must be an object of knobs');
  for (const [key, v] of Object.entries(thp)) {
    if (key === 'khugepaged') {
      if (typeof v !== 'object' || v === null) throw new ConfigError('thp.khugepaged: must be an object of knobs');
      for (const [kk, vv] of Object.entries(v)) {
        setKnob(k, `khugepaged/${kk}`, vv as string | number | boolean);
      }
    } else {
      setKnob(k, key, v as string | number);
    }
  }
  return k;
}
