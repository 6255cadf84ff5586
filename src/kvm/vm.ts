/**
 * A virtual machine: guest memory, one vCPU, the port-I/O devices and the run loop.
 * Built in small steps (Firecracker's builder.rs); guest memory is a GuestMemoryBackend,
 * the EPT backend over the host THP model by default or one linear arena range with EPT off:
 *
 *   createVm(config, image)  =  resolveVmConfig → attachMemory → loadGuestImage
 *                               → attachVcpu → attachDevices
 *
 * Nothing is written to guest memory until the image and the boot layout have both been
 * validated, and a run never throws for something the guest or the simulated host did
 * (a triple fault, an MMIO access, a host out of memory): it finishes with a stopReason and,
 * for abnormal stops, an error report in the result.
 */
import { initialRegisters, planBoot, writeBoot, type BootLayout } from '../guest/boot.ts';
import { loadElf, parseElf, type ElfImage } from '../guest/elf.ts';
import { loadAddon } from '../native/addon.ts';
import { ExitReason, type NativeAddon } from '../native/types.ts';
import { ConfigError } from '../util/errors.ts';
import { hostEventsDelta, NO_HOST_EVENTS, simulate, type HostEvents } from './cost.ts';
import { faultRates, type FaultRates } from './rates.ts';
import { Console, DebugExit, PioBus, RoiPort, Serial8250, type VmControl } from './devices.ts';
import { unhandledSummary, type ExitContext, type StopInfo, type VmmStats } from './exits.ts';
import { RunLoop, type PieceLimits, type RunState } from './run.ts';
import { Sampler, type Sample, type SamplePoint } from './sampler.ts';
import { counterDelta, Vcpu, type CounterSnapshot } from './vcpu.ts';
import { effectiveConfigOf, parseRunOptions, resolveVmConfig, type ResolvedVmConfig, type RunOptionsInput, type VmConfigInput } from './config.ts';
import type { SimulatedTime } from './cost.ts';
import { createLinearMemory, type GuestMemoryBackend } from './memory.ts';
import { eptMemory } from './mmu/ept-memory.ts';
import { memoryReport } from './report.ts';
import { HostClock, SimClock } from './host-clock.ts';
import type { HostMachine } from './host-machine.ts';
import type { EptMemoryBackend } from './mmu/ept-memory.ts';
import { eptView, type EptView } from './mmu/debug.ts';
import { gpa } from '../util/address.ts';
import { describe } from '../util/schema.ts';
import { buildInfo } from '../util/build-info.ts';

/**
 * VMM diagnostic lines passed to onLog per VM at most; later ones are counted in
 * vmm.log_suppressed, and one closing line says how many. With the unhandled-report
 * summaries (src/kvm/exits.ts unhandledSummary) a run logs at most MAX_LOG_LINES + 3 lines,
 * whatever the guest does.
 */
export const MAX_LOG_LINES = 256;

export interface GuestImage {
  bytes: Uint8Array;
  /** For messages (a file path or sample name). */
  name: string;
}

export interface VmDeps {
  /** A host machine shared with other VMs (EPT mode): the VM is one more VMM process on it. */
  machine?: HostMachine;
  /** The native addon (tests pass one with a fake Vcpu). */
  addon?: NativeAddon;
  /** Guest memory; default: the EPT backend (src/kvm/mmu/ept-memory.ts), or createLinearMemory with ept: false. */
  memory?: (addon: NativeAddon, size: number) => GuestMemoryBackend;
}

export class Vm implements VmControl {
  readonly config: ResolvedVmConfig;
  readonly backend: GuestMemoryBackend;
  readonly vcpu: Vcpu;
  readonly bus = new PioBus();
  readonly console: Console;
  readonly boot: BootSummary;
  readonly stats: VmmStats = { io_out: 0, io_in: 0, io_unhandled: 0, roi_begin: 0, roi_end: 0, mmio_pages: 0, log_suppressed: 0 };
  private readonly ctx: ExitContext;
  private readonly loop: RunLoop;
  private closed = false;
  private readonly rois: { counters: CounterSnapshot; simulated: SimulatedTime; rates: FaultRates }[] = [];
  private roiStart: CounterSnapshot | null = null;
  private roiStartHost: HostEvents = NO_HOST_EVENTS;
  private roiStartVmstat: Readonly<Record<string, number>> | null = null;
  /** The host's /proc/vmstat when the guest started (EPT mode), for the rates of the run. */
  private readonly bootVmstat: Readonly<Record<string, number>> | null;
  /** Host events of building the VM (the VMM loading the image faults host pages): not guest time. */
  private readonly bootHost: HostEvents;
  /** EPT mode: the host clock that follows the guest (null without a host model). */
  readonly hostClock: HostClock | null;
  /** The run's simulated time, read from the counters in place. */
  private readonly simClock: SimClock;
  private logLines = 0;
  /** The run is over and its bounded reports were closed (finishReports). */
  private reportsFinished = false;

  constructor(config: ResolvedVmConfig, backend: GuestMemoryBackend, vcpu: Vcpu, boot: BootSummary) {
    this.config = config;
    this.backend = backend;
    this.vcpu = vcpu;
    this.boot = boot;
    this.console = new Console({ onBytes: config.onConsoleBytes, onText: config.onConsole });
    this.bootHost = backend.hostEvents?.() ?? NO_HOST_EVENTS;
    this.machine?.vms.add(this);
    this.bootVmstat = this.vmstat();
    this.ctx = {
      bus: this.bus,
      strict: config.strict,
      log: (m) => this.log(m),
      setInValue: (v) => vcpu.setInValue(v),
      unhandledPorts: new Set(),
      completeMmio: (gpa) => vcpu.native.completeMmio(gpa),
      unhandledMmio: new Set(),
      pendingStop: null,
      ept: backend.handleEptViolation ? { handleEptViolation: (e) => backend.handleEptViolation!(e) } : undefined,
      stats: this.stats,
    };
    const { maxInstructions, timeoutMs, chunkInstructions } = config;
    // Console text streams at newlines (Console.putByte); a partial line is flushed when the
    // guest has run a whole chunk without exiting, and when the loop returns.
    // The host clock advances to the guest's simulated time at each return of the
    // native loop, so khugepaged and kswapd run between guest instructions (src/kvm/host-clock.ts).
    this.simClock = new SimClock(vcpu.native, vcpu.counterNames, config.costs, () => this.hostEvents());
    this.hostClock = backend.kind === 'ept' ? new HostClock((backend as EptMemoryBackend).host, this.simClock, config.host?.clock ?? true) : null;
    const clock = this.hostClock?.followsGuest ? this.hostClock : null;
    // KVM's own kthread on the same clock: the NX huge page recovery worker (6.x, nx_huge_pages on).
    const ept = backend.kind === 'ept' ? (backend as EptMemoryBackend) : null;
    const afterRun = (reason: number): void => {
      if (reason === ExitReason.BUDGET) this.console.flush();
      if (clock) {
        clock.sync(() => this.loop.pastDeadline());
        ept!.kvmMmu.nx_huge_page_recovery_worker(ept!.host.now);
      }
    };
    const limits = { maxInstructions, timeoutMs, chunkInstructions };
    this.loop = new RunLoop(vcpu, this.ctx, limits, afterRun, undefined, () => this.simClock.ns());
  }

  get state(): RunState {
    return this.loop.state;
  }

  // --- VmControl (what devices may ask) ---
  requestStop(stop: StopInfo): void {
    this.ctx.pendingStop ??= stop;
  }
  roiBegin(): void {
    this.stats.roi_begin++;
    if (this.roiStart) this.log('ROI begin while a ROI is open: restarting it');
    this.roiStart = this.snapshot();
    this.roiStartHost = this.hostEvents();
    this.roiStartVmstat = this.vmstat();
  }
  roiEnd(): void {
    this.stats.roi_end++;
    if (!this.roiStart) {
      this.log('ROI end without a begin: ignored');
      return;
    }
    const counters = counterDelta(this.roiStart, this.snapshot());
    this.roiStart = null;
    const host = hostEventsDelta(this.hostEvents(), this.roiStartHost);
    const simulated = simulate(counters, host, this.config.costs);
    this.rois.push({ counters, simulated, rates: faultRates(counters, simulated, this.vmstatSince(this.roiStartVmstat)) });
  }
  /** The host's /proc/vmstat and khugepaged counters now (EPT mode), or null. */
  private vmstat(): Readonly<Record<string, number>> | null {
    return this.backend.kind === 'ept' ? (this.backend as EptMemoryBackend).hostStats() : null;
  }

  /** The host's /proc/vmstat change since `before` (null without a host model). */
  private vmstatSince(before: Readonly<Record<string, number>> | null): Record<string, number> | null {
    const now = this.vmstat();
    if (!now || !before) return null;
    return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (before[k] ?? 0)]));
  }

  /** Host events since the guest started: what the VMM did while loading it is not guest time. */
  private hostEvents(): HostEvents {
    const now = this.backend.hostEvents?.();
    return now ? hostEventsDelta(now, this.bootHost) : NO_HOST_EVENTS;
  }
  log(message: string): void {
    if (this.logLines >= MAX_LOG_LINES) {
      this.stats.log_suppressed++;
      return;
    }
    this.logLines++;
    this.config.onLog?.(message);
  }

  /** The run is over: end the console stream and close the bounded reports with their counts. */
  private finishReports(): void {
    if (this.reportsFinished) return;
    this.reportsFinished = true;
    this.console.end();
    const lines = unhandledSummary(this.ctx);
    if (this.stats.log_suppressed > 0) lines.push(`${this.stats.log_suppressed} more diagnostic lines not shown (at most ${MAX_LOG_LINES} per run)`);
    for (const m of lines) this.config.onLog?.(m);
  }

  /** Ask a running VM to pause after the current exit (call from a callback). */
  pause(): void {
    this.loop.pause();
  }

  /**
   * Free everything the VM holds now — guest memory and the host behind it (the arena's pages
   * go back to the kernel), the host's swap file, the vCPU's decode cache — rather than when
   * the garbage collector runs. Idempotent; any other method after it is an error.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.machine?.vms.delete(this);
    this.vcpu.native.release();
    this.backend.close();
  }

  /** The host machine this VM runs on (EPT mode), its own or shared with other VMs. */
  get machine(): HostMachine | null {
    return this.backend.kind === 'ept' ? (this.backend as EptMemoryBackend).machine : null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private live(what: string): void {
    if (this.closed) throw new ConfigError(`vm.${what}: this VM was closed (vm.close())`);
  }

  /**
   * Runs until the guest stops, or until this call's limits, a VM limit, pause() or an abort
   * stop it; returns the result so far. A VM that did not finish (`result.finished` false)
   * continues exactly where it stopped at the next run(): a run split into any number of
   * pieces gives the same counters, console bytes and simulated time as one uninterrupted
   * run (src/kvm/run.ts). `sampleEvery` delivers a time series to `onSample` as it runs.
   */
  run(options: RunOptionsInput = {}): RunResult {
    this.live('run');
    const o = parseRunOptions(options);
    const pieceEnd = o.maxInstructions ? this.loop.used + o.maxInstructions : undefined;
    const sampler = o.sampleEvery && o.onSample ? new Sampler(o.sampleEvery, o.onSample as (row: Sample) => void, this.samplePoint(), this.config.costs) : null;
    for (;;) {
      const piece: PieceLimits = { untilUnits: pieceEnd, untilSimulatedNs: o.untilSimulatedNs, signal: o.signal, ...sampler?.next() };
      this.loop.run(piece);
      if (!this.loop.sampleDue) break;
      sampler!.take(this.samplePoint());
    }
    sampler?.take(this.samplePoint(), true);
    if (this.loop.state === 'Finished') this.finishReports();
    else this.console.flush();
    return this.result();
  }

  /** Where the run is now: what a time-series row is computed from. */
  private samplePoint(): SamplePoint {
    const b = this.backend.kind === 'ept' ? (this.backend as EptMemoryBackend) : null;
    return { units: this.loop.used, instructions: this.loop.executed, simulatedNs: this.simClock.ns(), counters: this.snapshot(), host: this.vmstat(), hostEvents: this.hostEvents() };
  }

  /**
   * The vCPU counters, with exits_budget counting the natural chunk ends only: a return for
   * a run() piece's limit or a sample point is how the run was driven, not an event of it.
   */
  private snapshot(): CounterSnapshot {
    const c = this.vcpu.snapshot();
    return this.loop.cutReturns ? { ...c, exits_budget: (c.exits_budget ?? 0) - this.loop.cutReturns } : c;
  }

  counters(): CounterSnapshot {
    this.live('counters');
    return this.snapshot();
  }

  /** The configuration this VM runs with, every default filled in (what results record). */
  effectiveConfig() {
    this.live('effectiveConfig');
    const b = this.backend.kind === 'ept' ? (this.backend as EptMemoryBackend) : null;
    // The knobs as the host holds them now (defaults, config, and any later setKnob).
    return effectiveConfigOf(this.config, b?.host.knobs);
  }

  /** The EPT leaves of a GPA range beside the host mapping of their HVA (EPT mode only). */
  eptView(gpaStart: number, gpaEnd: number): EptView {
    this.live('eptView');
    if (this.backend.kind !== 'ept') throw new ConfigError('eptView: this VM does not run with EPT (start it with ept: true / --ept on)');
    if (!(Number.isSafeInteger(gpaStart) && Number.isSafeInteger(gpaEnd) && 0 <= gpaStart && gpaStart < gpaEnd)) {
      throw new ConfigError(`eptView: [${gpaStart}, ${gpaEnd}) is not a GPA range with start < end`);
    }
    return eptView((this.backend as EptMemoryBackend).kvmMmu, gpa(gpaStart), gpa(gpaEnd));
  }

  /** The result so far (final once Finished). */
  result() {
    this.live('result');
    this.console.flush();
    const counters = this.snapshot();
    const host = this.hostEvents();
    const simulated = simulate(counters, host, this.config.costs);
    const stop: StopInfo = this.loop.stop ?? { reason: 'paused', exitStatus: null };
    const wallSeconds = this.loop.wallMs / 1000;
    const exits: Record<string, number> = {};
    for (const [k, v] of Object.entries(counters)) {
      if (k.startsWith('exits_') && k !== 'exits_budget') exits[k.slice('exits_'.length)] = v;
    }
    return {
      /** The shape of this object (bumped when a field changes meaning or shape; docs/cli.md). */
      schema: RESULT_SCHEMA,
      /** The tool that produced it: package version and, from a checkout, the git commit. */
      tool: buildInfo(),
      exitStatus: stop.exitStatus,
      stopReason: stop.reason,
      /** The guest stopped for good; false: run() continues where this result ends. */
      finished: this.loop.state === 'Finished',
      error: stop.error ?? null,
      console: this.console.text,
      consoleBytes: this.console.bytes,
      consoleTruncatedBytes: this.console.truncatedBytes,
      counters,
      exits,
      roi: [...this.rois],
      roiOpen: this.roiStart !== null,
      unhandledPorts: [...this.ctx.unhandledPorts].sort((a, b) => a - b),
      unhandledMmio: [...this.ctx.unhandledMmio].sort((a, b) => a - b),
      vmm: { ...this.stats, console_bytes: this.console.byteCount },
      instructions: this.loop.executed,
      wallSeconds,
      mips: wallSeconds > 0 ? this.loop.executed / wallSeconds / 1e6 : 0,
      simulated,
      rates: faultRates(counters, simulated, this.vmstatSince(this.bootVmstat)),
      boot: this.boot,
      memory: memoryReport(this.backend, counters, this.hostClock?.report() ?? null),
    };
  }
}

/** The version of RunResult's shape (docs/cli.md lists what each version changed). */
export const RESULT_SCHEMA = 'hugevisor.run/4';

/** What a run returns: the public RunResult (src/api/types.ts) is checked against this shape. */
export type RunResult = ReturnType<Vm['result']>;

/** Where the boot protocol put things (docs/guest-abi.md). */
export function bootSummary(config: ResolvedVmConfig, elf: ElfImage, layout: BootLayout) {
  return {
    memory: config.memory,
    guestPageSize: config.guestPageSize,
    entry: elf.entry,
    imageEnd: elf.end,
    pml4: layout.pml4,
    pageTables: layout.tables.length,
    bootInfo: layout.bootInfo,
    freeStart: layout.freeStart,
  };
}
export type BootSummary = ReturnType<typeof bootSummary>;

// --- builder steps -------------------------------------------------------------------

export function attachMemory(addon: NativeAddon, config: ResolvedVmConfig, deps: VmDeps): GuestMemoryBackend {
  // attach_ept (src/kvm/mmu/ept-memory.ts) unless the config asks for native translation.
  if (deps.machine) {
    if (!config.ept) throw new ConfigError('ept: a VM on a shared host runs with EPT (the host backs guest RAM only in EPT mode)');
    return eptMemory({ machine: deps.machine, kvm: config.kvm ?? undefined })(addon, config.memory);
  }
  const factory = deps.memory ?? (config.host ? eptMemory({ host: config.host, kvm: config.kvm ?? undefined }) : createLinearMemory);
  return factory(addon, config.memory);
}

/** Validates the image and the boot layout together, then writes both (nothing half-loaded). */
export function loadGuestImage(backend: GuestMemoryBackend, config: ResolvedVmConfig, image: GuestImage): { elf: ElfImage; layout: BootLayout } {
  const elf = parseElf(image.bytes, config.memory, image.name);
  const layout = planBoot({ memorySize: config.memory, imageEnd: elf.end, pageSize: config.guestPageSize, cmdline: config.cmdline, args: config.args });
  loadElf(elf, image.bytes, backend.memory);
  writeBoot(layout, backend.memory);
  return { elf, layout };
}

export function attachVcpu(addon: NativeAddon, backend: GuestMemoryBackend, config: ResolvedVmConfig, elf: ElfImage, layout: BootLayout): Vcpu {
  const native = new addon.Vcpu(backend.arena);
  try {
    native.configureMmu({ ...backend.mmu, tlb: config.tlb });
  } catch (e) {
    // The native MMU judges the TLB geometry (native/mmu.h) and names the structure.
    const m = (e as Error).message;
    throw new ConfigError(`MMU configuration: ${m}`, { path: 'tlb', detail: m });
  }
  backend.attachVcpu?.(native);
  const vcpu = new Vcpu(native, addon.counterNames, addon.exitFieldNames);
  vcpu.setRegisters(initialRegisters(layout, elf.entry));
  return vcpu;
}

export function attachDevices(vm: Vm): void {
  vm.bus.register(new Serial8250(vm.console));
  vm.bus.register(new DebugExit(vm));
  vm.bus.register(new RoiPort(vm));
}

/** Creates a VM with `image` loaded and booted to its entry point, ready to run(). */
/** The image argument checked at the edge: ELF bytes (a Uint8Array or an ArrayBuffer) and a name. */
function checkImage(image: unknown): GuestImage {
  const i = image as { bytes?: unknown; name?: unknown } | null;
  if (typeof i !== 'object' || i === null) throw new ConfigError(`image: expected { bytes: Uint8Array, name: string }, got ${describe(image)}`);
  const bytes = i.bytes instanceof Uint8Array ? i.bytes : i.bytes instanceof ArrayBuffer ? new Uint8Array(i.bytes) : null;
  if (!bytes) throw new ConfigError(`image.bytes: expected a Uint8Array or an ArrayBuffer of ELF bytes, got ${describe(i.bytes)}`);
  if (typeof i.name !== 'string') throw new ConfigError(`image.name: expected a string (a file path or sample name), got ${describe(i.name)}`);
  return { bytes, name: i.name };
}

export function createVm(config: VmConfigInput, imageArg: GuestImage, deps: VmDeps = {}): Vm {
  const image = checkImage(imageArg);
  const addon = deps.addon ?? loadAddon();
  let resolved = resolveVmConfig(config, addon);
  if (deps.machine) {
    // The host section belongs to the shared host (createHost), not to each VM on it.
    if ((config as { host?: unknown }).host !== undefined) {
      throw new ConfigError('host: a VM on a shared host takes its host from createHost(); set knobs with host.setKnob()', { path: 'host', detail: 'set on the shared host' });
    }
    resolved = { ...resolved, host: deps.machine.config };
  }
  const backend = attachMemory(addon, resolved, deps);
  const { elf, layout } = loadGuestImage(backend, resolved, image);
  const vcpu = attachVcpu(addon, backend, resolved, elf, layout);
  const vm = new Vm(resolved, backend, vcpu, bootSummary(resolved, elf, layout));
  attachDevices(vm);
  return vm;
}
