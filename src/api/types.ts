/**
 * The public contract of hugevisor: what a script or the CLI passes to create a VM and
 * what a run returns. Hand-written and self-contained (it imports nothing): the internal
 * modules are checked against it in src/api/index.ts, so the implementation cannot drift
 * from what users see. docs/cli.md documents the JSON form of RunResult, which is this shape.
 *
 * Counter, TLB-structure and cost names are the kernel's and the hardware's (docs/counters
 * in docs/cli.md); the lists of counters and TLB structures come from the native addon at
 * run time, so they are typed as string-keyed records here.
 */

/** Page size of the guest's boot identity map. */
export type GuestPageSize = '4k' | '2m' | '1g';

/** transparent_hugepage/enabled and transparent_hugepage/defrag. */
export type ThpMode = 'always' | 'madvise' | 'never';

/** transparent_hugepage/khugepaged/* (sysfs names and units). */
export interface KhugepagedKnobs {
  defrag: boolean;
  pages_to_scan: number;
  scan_sleep_millisecs: number;
  alloc_sleep_millisecs: number;
  max_ptes_none: number;
  /** 6.x (default 64) */
  max_ptes_swap?: number;
  /** 6.x (default 256) */
  max_ptes_shared?: number;
}

/** The host kernel whose THP design the simulated host follows (docs/thp-model.md). */
export type HostKernel = '2.6.38' | '6.x';
/** hugepages-<N>kB/enabled: the anonymous multi-size THP sizes (6.x). */
export type MthpSize = '16kB' | '32kB' | '64kB' | '128kB' | '256kB' | '512kB' | '1024kB' | '2048kB';
export type MthpMode = 'always' | 'inherit' | 'madvise' | 'never';

/** The host's THP knobs (docs/thp-model.md); the 6.x-only ones are present exactly on a 6.x host. */
export interface ThpKnobs {
  enabled: ThpMode;
  defrag: ThpMode;
  /** 6.x: transparent_hugepage/use_zero_page, 0 or 1 (default 1). */
  use_zero_page?: number;
  /** 6.x: transparent_hugepage/shrink_underused, 0 or 1 (default 1): the underused-THP shrinker (6.12+). */
  shrink_underused?: number;
  /** 6.x: transparent_hugepage/hugepages-<N>kB/enabled (default 2048kB inherit, others never). */
  sizes?: Record<MthpSize, MthpMode>;
  khugepaged: KhugepagedKnobs;
}

/** The host's swap device. */
export interface SwapOptions {
  /** Size in bytes (0 = no swap). */
  bytes: number;
  /** Backing file; default: a new file in a fresh temporary folder, removed when the host closes. */
  path?: string;
  /**
   * What the host kernel sees (/proc/swaps Type): 'file' (default) or 'partition' (a block
   * device). Under host.kernel '6.x' only a partition takes a large folio whole.
   */
  type?: 'file' | 'partition';
}

/** VmConfig.host: the simulated host of an EPT-mode VM. */
export interface HostOptions {
  /** Host RAM in bytes, a multiple of 2 MiB from 8 MiB to 1 TiB. Default: guest memory + 1/8 + 32 MiB. */
  memory?: number;
  /** The THP design of the host: '2.6.38' (default) or '6.x' (Linux 6.18: folios, deferred split, huge zero page). */
  kernel?: HostKernel;
  /** THP knobs; omitted ones keep the kernel's defaults (the 6.x-only ones are an error under 2.6.38). */
  thp?: { enabled?: ThpMode; defrag?: ThpMode; use_zero_page?: number; shrink_underused?: number; sizes?: Partial<Record<MthpSize, MthpMode>>; khugepaged?: Partial<KhugepagedKnobs> };
  swap?: SwapOptions;
  /** The host's simulated time follows the guest's, so khugepaged and kswapd run during a run. Default true. */
  clock?: boolean;
  /** Check every host and EPT invariant after every operation (slow; for tests). Default false. */
  debugChecks?: boolean;
}

/** VmConfig.kvm: KVM module parameters of the EPT layer (EPT mode only; docs/ept.md). */
export interface KvmOptions {
  /** The NX huge pages mitigation: no executable 2 MiB EPT leaves (KVM 6.x only). Default 'off'. */
  nx_huge_pages?: 'off' | 'on';
  /** Split 2 MiB EPT leaves when dirty logging starts (KVM 6.x; 2.6.38 zaps them). Default 'on'. */
  eager_page_split?: 'off' | 'on';
}

/** One modeled TLB or paging-structure cache: entries and associativity (0/0 = off). */
export interface TlbArrayGeometry {
  entries: number;
  ways: number;
}

/** Geometry by structure name (itlb4k, dtlb2m, stlb, pwcPde, nested, …: the addon's list). */
export type TlbGeometry = { readonly [structure: string]: TlbArrayGeometry };

/** 'default' = every structure at its default; 'none' = every TLB, cache and the nested TLB off. */
export type TlbPreset = 'default' | 'none';

/** The cost model: cycles per event, and the simulated clock (docs/mmu-model.md "Cost model"). */
export interface CostTable {
  clock_hz: number;
  instruction: number;
  l1_tlb_hit: number;
  stlb_hit: number;
  walk_ref: number;
  vm_exit: number;
  host_fault_4k: number;
  host_fault_2m: number;
  kib_zeroed: number;
  kib_copied: number;
  swap_io_page: number;
}
export type CostItem = Exclude<keyof CostTable, 'clock_hz'>;

export interface VmConfig {
  /** Guest-physical memory in bytes, a positive multiple of 4 KiB, at most 1 TiB. Default 64 MiB. */
  memory?: number;
  /** Page size of the boot identity map. Default '4k'. */
  guestPageSize?: GuestPageSize;
  /** Guest command line (boot info, at most 3000 bytes). */
  cmdline?: string;
  /** Up to 16 u64 parameters for the guest (boot info args). */
  args?: readonly (number | bigint)[];
  /** Unhandled port I/O or MMIO stops the VM with an error instead of being logged and ignored. */
  strict?: boolean;
  /** Stop (stopReason 'max-instructions') once this many instructions retired. 0 = no limit. */
  maxInstructions?: number;
  /** Stop (stopReason 'timeout') after this many wall-clock milliseconds of running. 0 = no limit. */
  timeoutMs?: number;
  /** Instructions per native run() call: the granularity of limits and console flushes. Default 4 Mi. */
  chunkInstructions?: number;
  /** Modeled TLB hierarchy: a preset, or geometries by structure (omitted structures keep their defaults). */
  tlb?: TlbPreset | TlbGeometry;
  /** Cost-model overrides. */
  costs?: Partial<CostTable>;
  /**
   * Console text as the guest prints it (at newlines and at least once per run chunk): the
   * bytes decoded as UTF-8, a character split across calls kept whole. Lossy: an invalid
   * byte, or a partial sequence at the end of the run, arrives as U+FFFD. For the exact
   * bytes use onConsoleBytes.
   */
  onConsole?: (text: string) => void;
  /**
   * Console bytes exactly as the guest wrote them to COM1, invalid UTF-8 included, at the
   * same moments as onConsole; never truncated. Each call gets its own copy.
   */
  onConsoleBytes?: (bytes: Uint8Array) => void;
  /** VMM diagnostics (unhandled ports...), one line each. */
  onLog?: (message: string) => void;
  /** KVM-like EPT over the host THP model (true, the default), or native one-dimensional translation (false). */
  ept?: boolean;
  /** The simulated host (EPT mode only). */
  host?: HostOptions;
  /** KVM module parameters (EPT mode only). */
  kvm?: KvmOptions;
}

/** The configuration a VM runs with: every default filled in (what results record). */
export interface EffectiveConfig {
  memory: number;
  guestPageSize: GuestPageSize;
  cmdline: string | null;
  /** u64 guest arguments as decimal strings. */
  args: string[];
  strict: boolean;
  maxInstructions: number;
  timeoutMs: number;
  chunkInstructions: number;
  costs: CostTable;
  tlb: TlbGeometry;
  ept: boolean;
  /** null with EPT off. */
  host: {
    memory: number;
    kernel: HostKernel;
    thp: ThpKnobs;
    swap: { bytes: number; path: string | null; type: 'file' | 'partition' };
    clock: boolean;
    debugChecks: boolean;
  } | null;
  /** null with EPT off. */
  kvm: { nx_huge_pages: 'off' | 'on'; eager_page_split: 'off' | 'on' } | null;
}

/** A guest image: ELF bytes and a name for messages (a file path or a sample name). */
export interface GuestImage {
  bytes: Uint8Array;
  name: string;
}

/** Why a VM stopped (stable strings: --json and docs/cli.md use them). */
export type StopReason =
  | 'exit' // the guest wrote its status to the debug-exit port
  | 'hlt' // hlt with nothing to wake it: status 0
  | 'triple-fault'
  | 'unhandled-io' // strict mode: an access to a port no device decodes
  | 'mmio' // an access to guest-physical memory outside every memslot
  | 'ept-violation' // an EPT violation the memory backend could not resolve
  | 'ept-misconfig' // a malformed EPT entry: a hypervisor bug
  | 'host-oom' // the simulated host had no frame left for guest memory or an EPT table
  | 'efault' // the VMM memory behind a memslot cannot be faulted in
  | 'internal-error' // the emulator reported a bug
  | 'max-instructions' // a limit on budget units (resumable: run() continues)
  | 'timeout' // the wall-clock limit (resumable)
  | 'simulated-time' // run({ untilSimulatedNs }) reached (resumable)
  | 'aborted' // run({ signal }) was aborted (resumable)
  | 'paused'; // pause() was called, or the VM has not run (resumable)

/** What kind of failure an error or an abnormal stop is. */
export type ErrorCode =
  | 'EINVAL_CONFIG' // a config field or flag has a bad value
  | 'EINVAL_ELF' // malformed guest image
  | 'EGUEST' // the guest did something the VMM refuses (triple fault, strict mode, MMIO)
  | 'ENOMEM' // simulated host out of memory / swap
  | 'EFAULT' // VMM memory behind a memslot cannot be faulted in
  | 'EINTERNAL' // a hugevisor bug
  | 'ENATIVE' // native addon missing or failed
  | 'EIO'; // files unreadable

/** Every vCPU counter by name (instructions, exc_pf, walks, dtlb_4k_misses, exits_io, …). */
export type CounterSnapshot = Readonly<Record<string, number>>;

export interface SimulatedTime {
  cycles: number;
  seconds: number;
  /** Cycles charged to each cost item. */
  breakdown: Record<CostItem, number>;
  /** Events per item (what breakdown multiplied). */
  events: Record<CostItem, number>;
}

/** An event's total over an interval and its rates. */
export interface EventRate {
  total: number;
  per_million_instructions: number;
  per_sim_second: number;
}

/** Events rated in every result and ROI (docs/counters.md says where each comes from). */
export type RatedEvent =
  | 'guest_pf' // #PF delivered to the guest
  | 'ept_violations' // EPT violation exits
  | 'vm_exits' // VM exits of every reason
  | 'host_fault_4k' // host 4 KiB faults
  | 'host_fault_2m' // host THP faults (thp_fault_alloc)
  | 'thp_fault_fallback'
  | 'pgmajfault'
  | 'thp_split'
  | 'thp_collapse_alloc' // collapses by khugepaged
  | 'pswpin'
  | 'pswpout';

/** One TLB level's misses by page size: counts, misses per 1,000 instructions, and the miss ratio. */
export interface TlbLevelRates {
  misses: SizeSplit;
  mpki: SizeSplit;
  /** Misses over lookups at this level (all page sizes). */
  miss_ratio: number;
}

/** The fault-rate block of a result or ROI. */
export interface FaultRates {
  events: Record<RatedEvent, EventRate>;
  tlb: { itlb: TlbLevelRates; dtlb: TlbLevelRates; stlb: TlbLevelRates };
  walks: { walks: number; refs_per_walk: number; guest_refs_per_walk: number; ept_refs_per_walk: number };
}

/** Counters of one region of interest (ROI port 0xF6: 1 = begin, 2 = end). */
export interface RoiResult {
  /** Counter deltas between the begin and end markers. */
  counters: CounterSnapshot;
  simulated: SimulatedTime;
  rates: FaultRates;
}

/** Where the boot protocol put things (docs/guest-abi.md). */
export interface BootSummary {
  memory: number;
  guestPageSize: GuestPageSize;
  entry: number;
  imageEnd: number;
  pml4: number;
  pageTables: number;
  bootInfo: number;
  freeStart: number;
}

/** Misses of one TLB level split by the page size of the looked-up translation. */
export interface SizeSplit {
  '4k': number;
  '2m': number;
  '1g': number;
  total: number;
}

/** TLB misses per level and walk references per miss, from the vCPU counters. */
export interface TlbReport {
  l1_misses: { itlb: number; dtlb: number };
  stlb_misses: number;
  misses: { itlb: SizeSplit; dtlb: SizeSplit; stlb: SizeSplit };
  walks: number;
  walk_refs: number;
  walk_refs_guest: number;
  walk_refs_ept: number;
  /** walk_refs / walks: 24 for 4K guest over 4K EPT with cold caches (docs/mmu-model.md). */
  refs_per_walk: number;
  pwc_hits: { pml4e: number; pdpte: number; pde: number };
  nested_tlb_hits: number;
}

/** The EPT layer's counters (KVM stat names) and the leaves and tables mapped at the end. */
export interface EptRunStats {
  ept_violations: number;
  pf_fixed: number;
  mmio_exits: number;
  mmu_notifier_retry: number;
  mmu_notifier_invalidate: number;
  mmu_zapped_leaves: number;
  mmu_shadow_zapped: number;
  remote_tlb_flush: number;
  mmu_notifier_age_zapped: number;
  /** 2 MiB regions mapped 4 KiB because the guest executed there (the NX huge pages mitigation, KVM 6.x); a gauge. */
  nx_lpage_splits: number;
  /** Large EPT leaves split in place (eager page split, NX splits): KVM's tracepoint of that name, counted. */
  kvm_mmu_split_huge_page: number;
  pages_4k: number;
  pages_2m: number;
  ept_tables: number;
}

export interface HostClockReport {
  /** The host clock follows the guest's simulated time. */
  follows_guest: boolean;
  /** The host's simulated time, ms since its boot. */
  host_ms: number;
  /** Times the clock was advanced during runs. */
  syncs: number;
}

export interface MemoryReport {
  mode: 'ept' | 'native';
  /** EPT-layer counters (null in native mode). */
  ept: EptRunStats | null;
  /** Host /proc/vmstat + khugepaged counters (null in native mode). */
  host: Record<string, number> | null;
  /** Host /proc/meminfo in kB (null in native mode). */
  meminfo: Record<string, number> | null;
  /**
   * The host's per-size THP counters, /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats/*
   * by size ('16kB' … '2048kB') and file name (anon_fault_alloc, swpout, split, nr_anon…);
   * null in native mode and under host.kernel '2.6.38', which has no per-size THP.
   */
  mthp: Record<string, Record<string, number>> | null;
  /** The host clock (null in native mode). */
  clock: HostClockReport | null;
  tlb: TlbReport;
}

export interface RunResult {
  /** The version of this shape: 'hugevisor.run/4' (docs/cli.md lists what each version changed). */
  schema: string;
  /** The tool that produced the result: its version and, when run from a git checkout, the commit. */
  tool: { name: string; version: string; commit: string | null };
  /** The guest's exit status (debug-exit value; 0 for HLT); null when the guest did not finish. */
  exitStatus: number | null;
  stopReason: StopReason;
  /** The guest stopped for good; false: run() continues where this result ends. */
  finished: boolean;
  /** Abnormal stops (triple fault, strict I/O, MMIO, host out of memory, internal error): the report. */
  error: { code: ErrorCode; message: string } | null;
  /**
   * What the guest printed on COM1, decoded as UTF-8 (each invalid byte and a trailing
   * partial sequence as U+FFFD): the decoding of consoleBytes.
   */
  console: string;
  /** The bytes the guest printed on COM1, exactly: the first 16 MiB (Console.MAX_COLLECTED). */
  consoleBytes: Uint8Array;
  /** Bytes printed beyond the 16 MiB kept (streamed to onConsoleBytes/onConsole, not kept); 0 normally. */
  consoleTruncatedBytes: number;
  /** Every vCPU counter, by name, at the stop. */
  counters: CounterSnapshot;
  /** VM exits by reason (io, hlt, ept_violation, mmio, shutdown), from the counters. */
  exits: Record<string, number>;
  /** Regions of interest, in guest order. */
  roi: RoiResult[];
  /** A ROI begun and not ended when the VM stopped. */
  roiOpen: boolean;
  /** Ports reported as unhandled (non-strict mode), ascending; every one (at most 65536). */
  unhandledPorts: number[];
  /**
   * Page-aligned GPAs of MMIO pages reported as unhandled (non-strict mode), ascending: the
   * first 64 reported; vmm.mmio_pages counts them all.
   */
  unhandledMmio: number[];
  /**
   * VMM statistics: port accesses (io_out, io_in, io_unhandled), ROI markers, console_bytes
   * (every byte printed), mmio_pages (unhandled MMIO pages reported), log_suppressed
   * (diagnostic lines beyond the per-run limit of 256).
   */
  vmm: Record<string, number>;
  instructions: number;
  /** Wall-clock seconds spent in the run loop. */
  wallSeconds: number;
  /** Guest instructions per wall-clock microsecond (millions per second). */
  mips: number;
  simulated: SimulatedTime;
  rates: FaultRates;
  boot: BootSummary;
  /** EPT-layer and host THP counters, TLB misses and walk references per walk. */
  memory: MemoryReport;
}

/** One EPT leaf beside what the host page tables map at the memslot's HVA. */
export interface EptLeafView {
  gpa: number;
  size: '4k' | '2m';
  writable: boolean;
  pfn: number;
  /** The memslot's HVA for the GPA; null when no memslot covers it. */
  hva: number | null;
  /** The host mapping at that HVA; null when the host maps nothing there. */
  host: { pfn: number; huge: boolean; headPfn: number; writable: boolean } | null;
}

/** The EPT leaves of a GPA range and the VM-wide leaf and table counts. */
export interface EptView {
  start: number;
  end: number;
  leaves: EptLeafView[];
  pages_4k: number;
  pages_2m: number;
  tables: number;
}

/** One row of a run's time series: the interval since the previous row. */
export interface Sample {
  index: number;
  /** Instructions retired, in all, at the end of the interval. */
  instructions: number;
  /** Simulated ns since the guest started, at the end of the interval. */
  simulatedNs: number;
  /** Every vCPU counter's change over the interval. */
  counters: CounterSnapshot;
  /** The host's /proc/vmstat and khugepaged counters' change over the interval (EPT mode), or null. */
  host: Record<string, number> | null;
  /** The interval's event totals and rates, TLB MPKI and miss ratios and walk references per walk (as RunResult.rates). */
  rates: FaultRates;
}

/** Options of one Vm.run() call. */
export interface RunOptions {
  /**
   * Budget units this call may use: instructions (a REP iteration and an exception delivery
   * count one each, so no instruction runs past the limit). Stops with 'max-instructions'.
   */
  maxInstructions?: number;
  /** Stop at the first VM exit or chunk end at or after this simulated time (ns since the guest started). */
  untilSimulatedNs?: number;
  /** Stop ('aborted') at the next boundary once aborted (e.g. from an onConsole or onSample callback). */
  signal?: AbortSignal;
  /** Deliver a time series to onSample: a row every this many instructions, or simulated ns. */
  sampleEvery?: { instructions: number } | { simulatedNs: number };
  onSample?: (row: Sample) => void;
}

/** A VM ready to run: the guest loaded and booted to its entry point. */
export interface Vm {
  /**
   * Runs until the guest stops, or until this call's limits, the VM's limits, pause() or an
   * abort stop it, and returns the result so far. Unless `result.finished`, the next run()
   * continues exactly where this one stopped: a run in any number of pieces equals one
   * uninterrupted run, counter for counter and byte for byte.
   */
  run(options?: RunOptions): RunResult;
  /** Ask a running VM to pause after the current exit (call from a callback). */
  pause(): void;
  /** The result so far (final once the VM stopped). */
  result(): RunResult;
  /** Every vCPU counter now. */
  counters(): CounterSnapshot;
  /** The configuration the VM runs with, defaults filled in. */
  effectiveConfig(): EffectiveConfig;
  /** The EPT leaves of a GPA range beside the host mapping of their HVA (EPT mode only). */
  eptView(gpaStart: number, gpaEnd: number): EptView;
  /**
   * Free guest memory, the host behind it, its swap file and the vCPU's buffers now (not at
   * garbage collection). Idempotent; any other method afterwards throws a ConfigError.
   * `using vm = createVm(...)` closes it at the end of the block.
   */
  close(): void;
  [Symbol.dispose](): void;
}

/** createHost's options: the host section of a VM config, with its memory given. */
export interface HostMachineOptions extends HostOptions {
  /** Host RAM in bytes, a multiple of 2 MiB from 8 MiB to 1 TiB (required: no guest sizes it). */
  memory: number;
}

/**
 * A simulated host with VMs on it: each VM is a VMM process whose guest RAM is anonymous
 * memory of this host, so VMs compete for its frames (one VM's pressure reclaims or swaps
 * another's) and share its khugepaged. Host events (faults, collapses, swap) are the host's:
 * every VM's simulated time is charged for the host's work while it runs.
 */
export interface Host {
  /** The THP knobs now (transparent_hugepage/*, sysfs names). */
  readonly knobs: Readonly<ThpKnobs>;
  /** Write a knob below transparent_hugepage/ ('enabled', 'khugepaged/pages_to_scan'…); effective at once. */
  setKnob(path: string, value: string | number | boolean): void;
  /** /proc/vmstat and khugepaged's counters. */
  vmstat(): Record<string, number>;
  /** /proc/meminfo in kB. */
  meminfo(): Record<string, number>;
  /**
   * /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats/* by size ('16kB' … '2048kB')
   * and file name (anon_fault_alloc, swpout, split, nr_anon…); null when the host kernel is 2.6.38.
   */
  mthpStats(): Record<string, Record<string, number>> | null;
  /** A VM on this host (EPT mode; the config has no `host` section: the host is this one). */
  createVm(config: Omit<VmConfig, 'host' | 'ept'>, image: GuestImage): Vm;
  /** Close every VM on the host, then the host: its frames, swap file and RAM come back at once. */
  close(): void;
  [Symbol.dispose](): void;
}

/** One argument a sample guest reads (boot-info args[index]), from its source's header. */
export interface SampleArg {
  index: number;
  name: string;
  /** The default as written (1000000, 256M). */
  default: string;
  unit: string | null;
  note: string | null;
}

/** A built sample guest: its name, what it does, and the arguments it takes. */
export interface SampleInfo {
  name: string;
  description: string;
  args: SampleArg[];
}

