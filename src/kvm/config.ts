/**
 * The VM's configuration: one schema per section, each owned by the layer that consumes it
 * (Firecracker's resources.rs), composed here into the VM's schema.
 *
 *   section        schema owner
 *   (top level)    this file: memory, guest pages, limits, console callbacks
 *   costs          src/kvm/cost.ts (costTableSchema)
 *   tlb            this file over the addon's structure names (native/mmu.h TlbGeometry)
 *   host           src/mm/config.ts (THP knobs, swap) + the KVM-side fields here (memory
 *                  default, the host clock, debug checks)
 *
 * resolveVmConfig validates once, at the edge, and fills every default: what passes is a
 * ResolvedVmConfig that nothing downstream validates again. Error messages name the path
 * and what it accepts (`host.thp.enabled: expected always|madvise|never, got "sometimes"`);
 * the CLI maps paths back to its flags (src/cli/flags.ts).
 */
import { z } from 'zod';
import { GUEST_PAGE_BYTES, type GuestPageSize } from '../guest/boot.ts';
import { checkKernelKnobs, kernelSchema, swapConfigSchema, thpConfigSchema, thpKnobsFor } from '../mm/config.ts';
import type { ThpKnobs } from '../mm/types.ts';
import type { NativeAddon, TlbGeometry } from '../native/types.ts';
import { disabledTlbGeometry, tlbStructureNames } from '../native/tlb.ts';
import { alignDown, alignUp, HPAGE_PMD_SIZE } from '../util/address.ts';
import { intRange, parseConfig, strictObject } from '../util/schema.ts';
import { ConfigError } from '../util/errors.ts';
import { costTableSchema, makeCostTable, type CostTable } from './cost.ts';
import { ARENA_MAX_BYTES } from '../native/types.ts';

export const DEFAULT_MEMORY = 64 * 1024 * 1024;
export const DEFAULT_GUEST_PAGE_SIZE: GuestPageSize = '4k';
export const DEFAULT_CHUNK_INSTRUCTIONS = 4 * 1024 * 1024;
/** Largest guest the VMM accepts (the boot tables alone would need 2 GiB of 4 KiB PTs at 1 TiB). */
export const MAX_MEMORY = 1024 * 1024 * 1024 * 1024;
/**
 * Whether a Vm runs with EPT when its config does not say: on, as on a KVM host.
 * `ept: false` (`--ept off`) is the native one-dimensional configuration.
 */
export const EPT_DEFAULT = true;

/** Smallest host: the zero page, EPT and host page tables and a little guest RAM. */
export const MIN_HOST_MEMORY = 8 * 1024 * 1024;
/**
 * Largest host: the arena's 1 TiB lazy reservation (ARENA_MAX_BYTES). Arena bytes cost only
 * when touched, but the host model's struct page array is allocated up front for the whole
 * host (24 bytes per frame).
 */
export const MAX_HOST_MEMORY = ARENA_MAX_BYTES;

/**
 * Default host size for a guest of `memory` bytes: room for guest RAM, tables and slack,
 * capped at MAX_HOST_MEMORY. Guest RAM is anonymous memory faulted in lazily, so a host
 * smaller than the guest is legal (overcommit): a guest that touches more than the host has
 * stops with host-oom (or swaps, with a swap device).
 */
export function defaultHostMemory(memory: number): number {
  const want = alignUp(memory + Math.floor(memory / 8) + 32 * 1024 * 1024, HPAGE_PMD_SIZE);
  return Math.max(MIN_HOST_MEMORY, Math.min(want, alignDown(MAX_HOST_MEMORY, HPAGE_PMD_SIZE)));
}

/** TLB presets: every structure at its default, or every TLB, paging-structure cache and the nested TLB off. */
export const TLB_PRESETS = ['default', 'none'] as const;
export type TlbPreset = (typeof TLB_PRESETS)[number];

const fn = z.custom<(...a: never[]) => unknown>((v) => typeof v === 'function', 'expected a function');

const tlbArraySchema = strictObject({ entries: intRange(0, 2 ** 31), ways: intRange(0, 2 ** 31) });

/** The tlb section: a preset, or { structure: { entries, ways } } over the addon's structure names. */
function tlbSchema(structures: readonly string[]) {
  const geometry = strictObject(Object.fromEntries(structures.map((n) => [n, tlbArraySchema.optional()])));
  return z.union([z.enum(TLB_PRESETS, { error: 'default|none or { structure: { entries, ways } }' }), geometry]);
}

/** The host section: the mm's knobs and swap plus what KVM decides about the host. */
const hostSchema = strictObject({
  /** Host RAM in bytes; default defaultHostMemory(guest memory). */
  memory: intRange(MIN_HOST_MEMORY, MAX_HOST_MEMORY, {
    step: HPAGE_PMD_SIZE,
    accepts: 'a multiple of 2 MiB from 8 MiB to 1 TiB (8388608 to 1099511627776 bytes)',
  }).optional(),
  /** Which kernel's THP design the host follows (src/mm/config.ts); default 2.6.38. */
  kernel: kernelSchema.default('2.6.38'),
  thp: thpConfigSchema.optional(),
  swap: swapConfigSchema.optional(),
  /** The host's simulated time follows the guest's (src/kvm/host-clock.ts). Default true. */
  clock: z.boolean().default(true),
  /** Check host and EPT invariants after every operation (slow; tests). */
  debugChecks: z.boolean().default(false),
})
  .superRefine((h, ctx) => checkKernelKnobs(h.kernel, h.thp, ctx, ['thp']))
  .transform((h) => ({ ...h, thp: thpKnobsFor(h.kernel, h.thp) }));

/** The KVM module parameters of the EPT layer (src/kvm/mmu/kvm-mmu.ts KvmMmuOptions). */
const onOff = z.enum(['off', 'on']);
const kvmSchema = strictObject({
  /** nx_huge_pages: no executable 2 MiB EPT leaves (the iTLB multihit mitigation of KVM 5.4+). */
  nx_huge_pages: onOff.default('off'),
  /** eager_page_split: split 2 MiB EPT leaves when dirty logging starts (KVM 5.19+; default on there too). */
  eager_page_split: onOff.default('on'),
});
export type ResolvedKvmConfig = z.output<typeof kvmSchema>;

function vmSchema(structures: readonly string[]) {
  const u64 = z.bigint({ error: 'a u64' }).min(0n, { error: 'a u64' }).max(2n ** 64n - 1n, { error: 'a u64' });
  const ms = 'a number of ms ≥ 0 (0 = no limit)';
  return strictObject({
    memory: intRange(4096, MAX_MEMORY, { step: 4096, accepts: 'a multiple of 4 KiB from 4 KiB to 1 TiB (4096 to 1099511627776 bytes)' }).default(DEFAULT_MEMORY),
    guestPageSize: z.enum(Object.keys(GUEST_PAGE_BYTES) as [GuestPageSize, ...GuestPageSize[]]).default(DEFAULT_GUEST_PAGE_SIZE),
    cmdline: z.string().optional(),
    args: z
      .array(z.union([intRange(0, Number.MAX_SAFE_INTEGER), u64]), { error: 'an array of u64 guest args' })
      .max(16, { error: 'at most 16 guest args (boot info holds 16)' })
      .readonly()
      .default([]),
    strict: z.boolean().default(false),
    /** 0 = no limit. */
    maxInstructions: intRange(0, Number.MAX_SAFE_INTEGER, { accepts: 'an integer ≥ 0 (0 = no limit)' }).default(0),
    /** Wall-clock ms; 0 = no limit. */
    timeoutMs: z.number().min(0, { error: ms }).finite({ error: ms }).default(0),
    chunkInstructions: intRange(1, 2 ** 31).default(DEFAULT_CHUNK_INSTRUCTIONS),
    costs: costTableSchema.default({}),
    tlb: tlbSchema(structures).default('default'),
    onConsole: fn.optional(),
    onConsoleBytes: fn.optional(),
    onLog: fn.optional(),
    ept: z.boolean().default(EPT_DEFAULT),
    host: hostSchema.optional(),
    kvm: kvmSchema.optional(),
  }).superRefine((c, ctx) => {
    if (!c.ept && c.host !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['host'], params: { rule: true }, message: 'only with EPT on (ept: true; --ept on): the host THP model backs guest RAM only in EPT mode' });
    }
    if (!c.ept && c.kvm !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['kvm'], params: { rule: true }, message: 'only with EPT on (ept: true; --ept on): these are parameters of the EPT layer' });
    }
    if (c.kvm?.nx_huge_pages === 'on' && (c.host?.kernel ?? '2.6.38') !== '6.x') {
      ctx.addIssue({ code: 'custom', path: ['kvm', 'nx_huge_pages'], params: { rule: true }, message: "on needs host.kernel 6.x (--host-kernel 6.x): the mitigation came with Linux 5.4, the 2.6.38 KVM maps executable 2 MiB leaves" });
    }
  });
}

/**
 * vmSchema per set of TLB structure names (one per addon build), built on first use:
 * building it anew for every VM was a third of the config cost of `hugevisor run hello`.
 */
const vmSchemas = new Map<string, ReturnType<typeof vmSchema>>();
function vmSchemaFor(structures: readonly string[]): ReturnType<typeof vmSchema> {
  const key = structures.join(',');
  let schema = vmSchemas.get(key);
  if (!schema) vmSchemas.set(key, (schema = vmSchema(structures)));
  return schema;
}

/** What createVm accepts (src/api/types.ts VmConfig is checked against it). */
export type VmConfigInput = z.input<ReturnType<typeof vmSchema>>;

/** The host section with its defaults filled: what the EPT memory backend builds the host from. */
export type ResolvedHostConfig = Omit<z.output<typeof hostSchema>, 'memory'> & { memory: number };

export interface ResolvedVmConfig {
  memory: number;
  guestPageSize: GuestPageSize;
  cmdline: string | undefined;
  args: readonly (number | bigint)[];
  strict: boolean;
  maxInstructions: number;
  timeoutMs: number;
  chunkInstructions: number;
  costs: CostTable;
  /** Every structure's geometry (presets and partial geometries resolved against the addon's defaults). */
  tlb: Required<TlbGeometry>;
  onConsole: ((text: string) => void) | undefined;
  onConsoleBytes: ((bytes: Uint8Array) => void) | undefined;
  onLog: ((message: string) => void) | undefined;
  /** EPT mode on, or native one-dimensional translation. */
  ept: boolean;
  /** The simulated host (null with ept off). */
  host: ResolvedHostConfig | null;
  /** KVM module parameters (null with ept off). */
  kvm: ResolvedKvmConfig | null;
}

/** What the config needs from the addon: the TLB structures and their default geometry. */
export type TlbDefaults = Pick<NativeAddon, 'defaultTlbGeometry' | 'tlbStructures'>;

/** A preset or a partial geometry, as the full geometry the native MMU is configured with. */
export function resolveTlb(spec: TlbPreset | TlbGeometry, addon: TlbDefaults): Required<TlbGeometry> {
  if (spec === 'none') return disabledTlbGeometry(addon);
  if (spec === 'default') return { ...addon.defaultTlbGeometry };
  return { ...addon.defaultTlbGeometry, ...spec };
}

/** Validate a VmConfig once and fill every default (ConfigError naming the path on a bad value). */
export function resolveVmConfig(c: unknown, addon: TlbDefaults): ResolvedVmConfig {
  const v = parseConfig(vmSchemaFor(tlbStructureNames(addon)), c, '');
  // EPT mode without a host section gets the section's defaults, from its own schema.
  const h = v.ept ? (v.host ?? hostSchema.parse({})) : null;
  const host: ResolvedHostConfig | null = h && { ...h, memory: h.memory ?? defaultHostMemory(v.memory) };
  return {
    memory: v.memory,
    guestPageSize: v.guestPageSize,
    cmdline: v.cmdline,
    args: v.args,
    strict: v.strict,
    maxInstructions: v.maxInstructions,
    timeoutMs: v.timeoutMs,
    chunkInstructions: v.chunkInstructions,
    costs: makeCostTable(v.costs),
    tlb: resolveTlb(v.tlb as TlbPreset | TlbGeometry, addon),
    onConsole: v.onConsole as ResolvedVmConfig['onConsole'],
    onConsoleBytes: v.onConsoleBytes as ResolvedVmConfig['onConsoleBytes'],
    onLog: v.onLog as ResolvedVmConfig['onLog'],
    ept: v.ept,
    host,
    kvm: v.ept ? (v.kvm ?? kvmSchema.parse({})) : null,
  };
}

/**
 * The configuration record results carry (EffectiveConfig in src/api/types.ts): every
 * default written out, args as decimal strings. `knobs` are the THP knobs as the host holds
 * them now (a VM passes its host's, which setKnob may have changed); default: the config's.
 */
export function effectiveConfigOf(c: ResolvedVmConfig, knobs?: ThpKnobs) {
  const thp = knobs ?? c.host?.thp;
  return {
    memory: c.memory,
    guestPageSize: c.guestPageSize,
    cmdline: c.cmdline ?? null,
    args: c.args.map(String),
    strict: c.strict,
    maxInstructions: c.maxInstructions,
    timeoutMs: c.timeoutMs,
    chunkInstructions: c.chunkInstructions,
    costs: { ...c.costs },
    tlb: { ...c.tlb },
    ept: c.ept,
    host:
      c.host && thp
        ? {
            memory: c.host.memory,
            kernel: c.host.kernel,
            thp: { ...thp, ...(thp.sizes && { sizes: { ...thp.sizes } }), khugepaged: { ...thp.khugepaged } },
            swap: { bytes: c.host.swap?.bytes ?? 0, path: c.host.swap?.path ?? null, type: c.host.swap?.type ?? 'file' },
            clock: c.host.clock,
            debugChecks: c.host.debugChecks,
          }
        : null,
    kvm: c.kvm && { ...c.kvm },
  };
}

const positive = 'a number > 0';
/** Options of one Vm.run() call. */
const runOptionsSchema = strictObject({
  /** Budget units this call may use (instructions; a REP iteration or an exception delivery counts one). */
  maxInstructions: intRange(1, Number.MAX_SAFE_INTEGER).optional(),
  /** Stop at the first boundary at or after this simulated time (ns since the guest started). */
  untilSimulatedNs: z.number({ error: 'a number of ns ≥ 0' }).min(0, { error: 'a number of ns ≥ 0' }).optional(),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'an AbortSignal').optional(),
  sampleEvery: z
    .union([
      strictObject({ instructions: intRange(1, Number.MAX_SAFE_INTEGER) }),
      strictObject({ simulatedNs: z.number({ error: positive }).positive({ error: positive }).finite({ error: positive }) }),
    ])
    .optional(),
  onSample: fn.optional(),
}).superRefine((o, ctx) => {
  if ((o.sampleEvery === undefined) !== (o.onSample === undefined)) {
    ctx.addIssue({ code: 'custom', path: [o.sampleEvery ? 'onSample' : 'sampleEvery'], params: { rule: true }, message: 'sampleEvery and onSample go together' });
  }
});

export type RunOptionsInput = z.input<typeof runOptionsSchema>;

/** Validate the options of one run() (a ConfigError naming the field, prefixed `run.`). */
export function parseRunOptions(o: unknown) {
  return parseConfig(runOptionsSchema, o, 'run');
}

/** A host of its own (createHost): the host section, with its memory given (there is no guest to size it by). */
export function resolveHostConfig(o: unknown): ResolvedHostConfig {
  const h = parseConfig(hostSchema, o ?? {}, 'host');
  if (h.memory === undefined) throw new ConfigError('host.memory: required for a host of its own (a multiple of 2 MiB from 8 MiB to 1 TiB)', { path: 'host.memory', detail: 'required' });
  return { ...h, memory: h.memory };
}
