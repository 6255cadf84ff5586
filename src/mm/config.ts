/**
 * The host section of the configuration, declared once: the THP modes, the sysfs knobs
 * under /sys/kernel/mm/transparent_hugepage with their Linux 2.6.38 defaults and the
 * ranges the kernel's *_store functions accept (mm/huge_memory.c), and HostConfig. The
 * Host constructor parses its config with hostConfigSchema and knobs.ts validates every
 * sysfs write with the same field schemas, so each value has one rule and one message
 * (src/util/schema.ts: `host.thp.enabled: expected always|madvise|never, got "sometimes"`).
 *
 * 2.6.38 defaults: enabled=always (CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS), defrag=always
 * (TRANSPARENT_HUGEPAGE_DEFRAG_FLAG is set unconditionally; madvise became the default
 * only in 4.6), khugepaged/defrag=yes, pages_to_scan=HPAGE_PMD_NR*8=4096,
 * scan_sleep_millisecs=10000, alloc_sleep_millisecs=60000, max_ptes_none=HPAGE_PMD_NR-1.
 */
import { z } from 'zod';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE } from '../util/address.ts';
import type { ByteSource } from '../util/chunked-bytes.ts';
import { intRange, strictObject } from '../util/schema.ts';
import type { HostConfig } from './types.ts';

/** transparent_hugepage/enabled and /defrag: the values both files accept. */
export const THP_MODES = ['always', 'madvise', 'never'] as const;
export type ThpMode = (typeof THP_MODES)[number];

const UINT_MAX = 0xffffffff;
/** Frames are counted in 32-bit fields (struct page arrays, swap slots): below 8 TiB. */
const MAX_BYTES = 2 ** 31 * PAGE_SIZE;

export const thpModeSchema = z.enum(THP_MODES, { error: THP_MODES.join('|') });

/** transparent_hugepage/khugepaged/*: each file's accepted values. */
export const khugepagedKnobSchemas = {
  defrag: z.boolean({ error: 'true|false (sysfs: yes|no)' }),
  pages_to_scan: intRange(1, UINT_MAX), // 0 is -EINVAL in pages_to_scan_store
  scan_sleep_millisecs: intRange(0, UINT_MAX),
  alloc_sleep_millisecs: intRange(0, UINT_MAX),
  max_ptes_none: intRange(0, HPAGE_PMD_NR - 1),
};

/** The 2.6.38 defaults (see the header). */
export const THP_DEFAULTS = {
  enabled: 'always',
  defrag: 'always',
  khugepaged: {
    defrag: true,
    pages_to_scan: HPAGE_PMD_NR * 8,
    scan_sleep_millisecs: 10000,
    alloc_sleep_millisecs: 60000,
    max_ptes_none: HPAGE_PMD_NR - 1,
  },
} as const;

const k = khugepagedKnobSchemas;
const d = THP_DEFAULTS.khugepaged;
/** Every knob; a knob left out takes its default (input: any subset; output: all knobs). */
export const thpKnobsSchema = strictObject({
  enabled: thpModeSchema.default(THP_DEFAULTS.enabled),
  defrag: thpModeSchema.default(THP_DEFAULTS.defrag),
  khugepaged: strictObject({
    defrag: k.defrag.default(d.defrag),
    pages_to_scan: k.pages_to_scan.default(d.pages_to_scan),
    scan_sleep_millisecs: k.scan_sleep_millisecs.default(d.scan_sleep_millisecs),
    alloc_sleep_millisecs: k.alloc_sleep_millisecs.default(d.alloc_sleep_millisecs),
    max_ptes_none: k.max_ptes_none.default(d.max_ptes_none),
  }).prefault({}),
});

/** sysfs knobs under /sys/kernel/mm/transparent_hugepage (names as in sysfs). */
export type ThpKnobs = z.output<typeof thpKnobsSchema>;
/** HostConfig.thp: any subset of the knobs. */
export type ThpConfig = z.input<typeof thpKnobsSchema>;

/** A fresh set of default knobs (mutable: setKnob writes into it). */
export function defaultKnobs(): ThpKnobs {
  return thpKnobsSchema.parse({});
}

/**
 * What the swap device is, as /proc/swaps' Type column says: a swap file on a filesystem,
 * or a block device (SWP_BLKDEV). Under the 6.x kernel only a block device takes a large
 * folio whole (swap-cluster.ts); 2.6.38 never swaps a THP whole, so there it changes nothing.
 */
export const SWAP_TYPES = ['file', 'partition'] as const;

export const swapConfigSchema = strictObject({
  bytes: z
    .number()
    .refine((b) => b === 0 || (Number.isSafeInteger(b) && b >= 2 * PAGE_SIZE && b % PAGE_SIZE === 0 && b < MAX_BYTES), {
      error: '0 (no swap) or a multiple of 4096 from 8192 (header + one slot) up to 8 TiB',
    }),
  path: z.string().min(1, { error: 'a non-empty file path' }).optional(),
  type: z.enum(SWAP_TYPES, { error: SWAP_TYPES.join('|') }).optional(),
});

/** HostConfig (types.ts documents the fields). min_free_frames is checked against the RAM size too. */
export const hostConfigSchema = strictObject({
  memoryBytes: z
    .number()
    .refine((b) => Number.isSafeInteger(b) && b > 0 && b % HPAGE_PMD_SIZE === 0 && b < MAX_BYTES, {
      error: `a positive multiple of 2 MiB (${HPAGE_PMD_SIZE}) below 8 TiB`,
    }),
  physmem: z.custom<ByteSource>((v) => typeof v === 'object' && v !== null, { error: 'an ArrayBuffer or the native arena' }).optional(),
  thp: thpKnobsSchema.prefault({}),
  swap: swapConfigSchema.optional(),
  min_free_frames: z.number().int().min(0, { error: 'an integer ≥ 0' }).optional(),
  debugChecks: z.boolean().optional(),
}).superRefine((c, ctx) => {
  const frames = c.memoryBytes / PAGE_SIZE;
  if (c.min_free_frames !== undefined && c.min_free_frames > frames) {
    ctx.addIssue({ code: 'custom', path: ['min_free_frames'], input: c.min_free_frames, message: `an integer from 0 to ${frames}` });
  }
});

/** A HostConfig after parsing: every knob present. */
export type ParsedHostConfig = z.output<typeof hostConfigSchema>;

// The schema and the documented HostConfig interface (types.ts) must accept the same input.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const hostConfigMatchesSchema: Same<z.input<typeof hostConfigSchema>, HostConfig> = true;
void hostConfigMatchesSchema;
