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
 *
 * host.kernel ('2.6.38' | '6.x') picks the THP design the host follows and so which knobs
 * exist and their defaults: 6.x follows Linux 6.18 (THP_DEFAULTS_6X); a knob 2.6.38 did not
 * have (use_zero_page, shrink_underused, sizes, khugepaged max_ptes_swap / max_ptes_shared) is a ConfigError
 * under 2.6.38.
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

/** host.kernel: which kernel's THP design the host follows (docs/thp-model.md). */
export const KERNELS = ['2.6.38', '6.x'] as const;
export type Kernel = (typeof KERNELS)[number];
export const kernelSchema = z.enum(KERNELS, { error: KERNELS.join('|') });

/**
 * The anonymous multi-size THP sizes of x86-64 (Linux 6.8+): orders 2 to 9
 * (THP_ORDERS_ALL_ANON drops orders 0 and 1), one hugepages-<N>kB/enabled file each.
 */
export const MTHP_SIZES = ['16kB', '32kB', '64kB', '128kB', '256kB', '512kB', '1024kB', '2048kB'] as const;
export type MthpSize = (typeof MTHP_SIZES)[number];
/** hugepages-<N>kB/enabled accepts inherit besides the global modes. */
export const MTHP_MODES = ['always', 'inherit', 'madvise', 'never'] as const;
export type MthpMode = (typeof MTHP_MODES)[number];
export const mthpModeSchema = z.enum(MTHP_MODES, { error: MTHP_MODES.join('|') });
/** The order of a per-size knob: 16kB → 2 ... 2048kB → 9. */
export const mthpOrder = (s: MthpSize): number => Math.log2(Number.parseInt(s, 10) / 4);

/** transparent_hugepage/use_zero_page (Linux 3.8+): 0 or 1 (single_hugepage_flag_store). */
export const useZeroPageSchema = intRange(0, 1, { accepts: '0|1' });

/**
 * transparent_hugepage/shrink_underused (Linux 6.12+, split_underused_thp): 0 or 1 in the
 * config; the sysfs store takes what kstrtobool does (knobs.ts), and shows 0 or 1.
 */
export const shrinkUnderusedSchema = intRange(0, 1, { accepts: '0|1' });

/** transparent_hugepage/khugepaged/*: each file's accepted values. */
export const khugepagedKnobSchemas = {
  defrag: z.boolean({ error: 'true|false (sysfs: yes|no)' }),
  pages_to_scan: intRange(1, UINT_MAX), // 0 is -EINVAL in pages_to_scan_store
  scan_sleep_millisecs: intRange(0, UINT_MAX),
  alloc_sleep_millisecs: intRange(0, UINT_MAX),
  max_ptes_none: intRange(0, HPAGE_PMD_NR - 1),
  /** Linux 4.8+ */
  max_ptes_swap: intRange(0, HPAGE_PMD_NR - 1),
  /** Linux 5.8+ */
  max_ptes_shared: intRange(0, HPAGE_PMD_NR - 1),
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

/**
 * The Linux 6.18 defaults (mm/huge_memory.c transparent_hugepage_flags, mm/khugepaged.c
 * khugepaged_init, hugepage_init_sysfs): enabled=always (Kconfig default
 * TRANSPARENT_HUGEPAGE_ALWAYS), defrag=madvise (TRANSPARENT_HUGEPAGE_DEFRAG_REQ_MADV_FLAG),
 * use_zero_page=1, shrink_underused=1, max_ptes_swap=HPAGE_PMD_NR/8, max_ptes_shared=HPAGE_PMD_NR/2, and of
 * the per-size knobs only the PMD size inherits the global mode, the others are never.
 */
export const THP_DEFAULTS_6X = {
  enabled: 'always',
  defrag: 'madvise',
  use_zero_page: 1,
  shrink_underused: 1,
  sizes: Object.fromEntries(MTHP_SIZES.map((s) => [s, s === '2048kB' ? 'inherit' : 'never'])) as Record<MthpSize, MthpMode>,
  khugepaged: {
    ...THP_DEFAULTS.khugepaged,
    max_ptes_swap: HPAGE_PMD_NR / 8,
    max_ptes_shared: HPAGE_PMD_NR / 2,
  },
} as const;

const k = khugepagedKnobSchemas;
/** host.thp as given: any subset of the knobs (which exist depends on host.kernel: thpKnobsFor). */
export const thpConfigSchema = strictObject({
  enabled: thpModeSchema.optional(),
  defrag: thpModeSchema.optional(),
  /** 6.x only */
  use_zero_page: useZeroPageSchema.optional(),
  /** 6.x only */
  shrink_underused: shrinkUnderusedSchema.optional(),
  /** 6.x only: hugepages-<N>kB/enabled by size. */
  sizes: strictObject(Object.fromEntries(MTHP_SIZES.map((s) => [s, mthpModeSchema.optional()])) as Record<MthpSize, z.ZodOptional<typeof mthpModeSchema>>).optional(),
  khugepaged: strictObject({
    defrag: k.defrag.optional(),
    pages_to_scan: k.pages_to_scan.optional(),
    scan_sleep_millisecs: k.scan_sleep_millisecs.optional(),
    alloc_sleep_millisecs: k.alloc_sleep_millisecs.optional(),
    max_ptes_none: k.max_ptes_none.optional(),
    /** 6.x only */
    max_ptes_swap: k.max_ptes_swap.optional(),
    /** 6.x only */
    max_ptes_shared: k.max_ptes_shared.optional(),
  }).optional(),
});

/** HostConfig.thp: any subset of the knobs. */
export type ThpConfig = z.input<typeof thpConfigSchema>;

/**
 * sysfs knobs under /sys/kernel/mm/transparent_hugepage (names as in sysfs). The knobs
 * 2.6.38 did not have are present exactly when the kernel is 6.x.
 */
export interface ThpKnobs {
  enabled: ThpMode;
  defrag: ThpMode;
  /** 6.x: transparent_hugepage/use_zero_page */
  use_zero_page?: number;
  /** 6.x: transparent_hugepage/shrink_underused (the underused-THP shrinker, 6.12+) */
  shrink_underused?: number;
  /** 6.x: transparent_hugepage/hugepages-<N>kB/enabled */
  sizes?: Record<MthpSize, MthpMode>;
  khugepaged: {
    defrag: boolean;
    pages_to_scan: number;
    scan_sleep_millisecs: number;
    alloc_sleep_millisecs: number;
    max_ptes_none: number;
    /** 6.x */
    max_ptes_swap?: number;
    /** 6.x */
    max_ptes_shared?: number;
  };
}

/** The knobs 2.6.38 did not have, as paths below host.thp (and transparent_hugepage/). */
export const KNOBS_6X_ONLY = ['use_zero_page', 'shrink_underused', 'sizes', 'khugepaged.max_ptes_swap', 'khugepaged.max_ptes_shared'] as const;

/** Refuse the knobs `kernel` does not have (a ConfigError naming the path, via ctx). */
export function checkKernelKnobs(kernel: Kernel, thp: z.output<typeof thpConfigSchema> | undefined, ctx: z.RefinementCtx, at: PropertyKey[]): void {
  if (kernel !== '2.6.38' || !thp) return;
  for (const name of KNOBS_6X_ONLY) {
    const [a, b] = name.split('.') as [string, string | undefined];
    const v = b === undefined ? (thp as Record<string, unknown>)[a] : (thp.khugepaged as Record<string, unknown> | undefined)?.[b];
    if (v === undefined) continue;
    ctx.addIssue({
      code: 'custom',
      path: [...at, ...name.split('.')],
      params: { rule: true },
      message: `no such knob in Linux 2.6.38 (a 6.x knob: set host.kernel to '6.x')`,
    });
  }
}

/** The knobs of `kernel`: its defaults, overridden by `thp` (already checked by checkKernelKnobs). */
export function thpKnobsFor(kernel: Kernel, thp: z.output<typeof thpConfigSchema> = {}): ThpKnobs {
  if (kernel === '2.6.38') {
    return {
      enabled: thp.enabled ?? THP_DEFAULTS.enabled,
      defrag: thp.defrag ?? THP_DEFAULTS.defrag,
      khugepaged: { ...THP_DEFAULTS.khugepaged, ...defined(thp.khugepaged) },
    };
  }
  const d = THP_DEFAULTS_6X;
  return {
    enabled: thp.enabled ?? d.enabled,
    defrag: thp.defrag ?? d.defrag,
    use_zero_page: thp.use_zero_page ?? d.use_zero_page,
    shrink_underused: thp.shrink_underused ?? d.shrink_underused,
    sizes: { ...d.sizes, ...defined(thp.sizes) },
    khugepaged: { ...d.khugepaged, ...defined(thp.khugepaged) },
  };
}

function defined<T extends object>(o: T | undefined): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as never;
}

/** A fresh set of default knobs of `kernel` (mutable: setKnob writes into it). */
export function defaultKnobs(kernel: Kernel = '2.6.38'): ThpKnobs {
  return thpKnobsFor(kernel);
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
  /** Which kernel's THP design the host follows; default 2.6.38. */
  kernel: kernelSchema.default('2.6.38'),
  thp: thpConfigSchema.optional(),
  swap: swapConfigSchema.optional(),
  min_free_frames: z.number().int().min(0, { error: 'an integer ≥ 0' }).optional(),
  debugChecks: z.boolean().optional(),
}).superRefine((c, ctx) => {
  const frames = c.memoryBytes / PAGE_SIZE;
  if (c.min_free_frames !== undefined && c.min_free_frames > frames) {
    ctx.addIssue({ code: 'custom', path: ['min_free_frames'], input: c.min_free_frames, message: `an integer from 0 to ${frames}` });
  }
  checkKernelKnobs(c.kernel, c.thp, ctx, ['thp']);
}).transform((c) => ({ ...c, thp: thpKnobsFor(c.kernel, c.thp) }));

/** A HostConfig after parsing: every knob present. */
export type ParsedHostConfig = z.output<typeof hostConfigSchema>;

// The schema and the documented HostConfig interface (types.ts) must accept the same input.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const hostConfigMatchesSchema: Same<z.input<typeof hostConfigSchema>, HostConfig> = true;
void hostConfigMatchesSchema;
