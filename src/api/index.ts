/**
 * The hypervisor's public API: a facade over src/kvm, typed by the hand-written contract in
 * src/api/types.ts. Scripts, experiments and the CLI import this module and nothing below it
 * (docs/api.md is the guide and the reference).
 *
 *   import { createVm, sample } from 'hugevisor';
 *   const vm = createVm({ memory: 256 << 20, guestPageSize: '2m', args: [42] }, sample('gups'));
 *   const r = vm.run();        // RunResult: exitStatus, stopReason, rates, counters, roi, simulated...
 *
 * The checks at the end of this file make the compiler prove that every internal shape maps
 * onto its public type, so the contract cannot drift from the implementation.
 */
import type * as Public from './types.ts';
import { createVm as createInternalVm, RESULT_SCHEMA, type RunResult, type Vm as InternalVm } from '../kvm/vm.ts';
import type { VmConfigInput } from '../kvm/config.ts';
import type { StopReason } from '../kvm/exits.ts';
import type { CostTable, SimulatedTime } from '../kvm/cost.ts';
import type { FaultRates } from '../kvm/rates.ts';
import type { MemoryReport } from '../kvm/report.ts';
import type { Sample } from '../kvm/sampler.ts';
import type { EptView } from '../kvm/mmu/debug.ts';
import type { ErrorCode } from '../util/errors.ts';
import type { ThpKnobs } from '../mm/types.ts';
import { DEFAULT_COSTS, makeCostTable, simulate } from '../kvm/cost.ts';
import { faultRates as rates } from '../kvm/rates.ts';
import { effectiveConfigOf, resolveHostConfig, resolveVmConfig } from '../kvm/config.ts';
import { HostMachine } from '../kvm/host-machine.ts';
import { ConfigError } from '../util/errors.ts';
import { describe } from '../util/schema.ts';
import { readGuestFile, sampleNames as listSampleNames, samplePath as sampleFile, samplesDir } from '../guest/file.ts';
import { sampleInfos } from '../guest/samples.ts';
import { addonPath, loadAddon } from '../native/addon.ts';

export type * from './types.ts';
export { ConfigError, ElfError, FileError, GuestError, HugevisorError, NativeError, OutOfMemoryError } from '../util/errors.ts';

/**
 * Create a VM with `image` loaded and booted to its entry point, ready to run(). The config
 * is validated once, here: a bad value is a ConfigError naming its path and what it accepts.
 */
export function createVm(config: Public.VmConfig, image: Public.GuestImage): Public.Vm {
  return createInternalVm(config, image);
}

/**
 * Validate a VM config and fill every default, without creating a VM: the EffectiveConfig a
 * VM created from it would report before it runs (`vm.effectiveConfig()`). A bad value is
 * the ConfigError createVm would throw, naming its path. For checking many configurations
 * up front (a sweep) and for keying results by what actually runs.
 */
export function resolveConfig(config: Public.VmConfig): Public.EffectiveConfig {
  return effectiveConfigOf(resolveVmConfig(config, loadAddon()));
}

/**
 * A simulated host for several VMs (see Host in src/api/types.ts). A bad option is one
 * ConfigError naming its path (`host.memory: required …`).
 */
export function createHost(options: Public.HostMachineOptions): Public.Host {
  const machine = new HostMachine(loadAddon(), resolveHostConfig(options));
  return {
    get knobs() {
      return machine.knobs;
    },
    setKnob: (path, value) => machine.setKnob(path, value),
    vmstat: () => machine.stats(),
    meminfo: () => machine.meminfo(),
    mthpStats: () => machine.host.mthpStats(),
    createVm: (config, image) => {
      if (machine.isClosed) throw new ConfigError('host: used after close()');
      return createInternalVm(config, image, { machine });
    },
    close: () => machine.close(),
    [Symbol.dispose]: () => machine.close(),
  };
}

/**
 * A guest image from an ELF file (checked before it is read: a regular file of at most
 * 256 MiB starting with the ELF magic) or from bytes you already have.
 */
export function loadGuest(source: string | Uint8Array | ArrayBuffer, name?: string): Public.GuestImage {
  if (typeof source === 'string') return { bytes: readGuestFile(source), name: name ?? source };
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return { bytes: source instanceof Uint8Array ? source : new Uint8Array(source), name: name ?? 'guest' };
  throw new ConfigError(`loadGuest: expected a file path, a Uint8Array or an ArrayBuffer, got ${describe(source)}`);
}

/** A built sample guest by name ('hello', 'gups', …; `hugevisor list` shows them). */
export function sample(name: string): Public.GuestImage {
  return { bytes: readGuestFile(sampleFile(name)), name };
}

/** The names of the built sample guests. */
export function sampleNames(): string[] {
  return listSampleNames();
}

/** The built sample guests, each with what it does and the arguments it takes (`hugevisor list`). */
export function samples(): Public.SampleInfo[] {
  return sampleInfos();
}

/** Where the built sample guests are (build/guests of the package; HUGEVISOR_GUESTS overrides it). */
export function samplesDirectory(): string {
  return samplesDir();
}

/** The ELF file of a built sample guest (a FileError naming the samples there are). */
export function samplePath(name: string): string {
  return sampleFile(name);
}

/** The version of RunResult's shape, as every result's `schema` field carries it. */
export const resultSchema: string = RESULT_SCHEMA;

/**
 * The fault-rate block of a result or ROI (what `result.rates` holds), recomputed — with
 * other costs if given, to re-apply the cost model to saved counters without re-running:
 * the per-second rates follow the new simulated time, totals and per-instruction rates stay.
 */
export function faultRates(r: Pick<Public.RunResult, 'counters' | 'simulated' | 'rates'>, costs?: Partial<Public.CostTable>): Public.FaultRates {
  const e = r.simulated.events;
  const host = { host_fault_4k: e.host_fault_4k, host_fault_2m: e.host_fault_2m, kib_zeroed: e.kib_zeroed, kib_copied: e.kib_copied, swap_io_page: e.swap_io_page };
  const sim = costs ? simulate(r.counters, host, makeCostTable(costs)) : r.simulated;
  const vmstat = Object.fromEntries(Object.entries(r.rates.events).map(([k, v]) => [k, v.total]));
  return rates(r.counters, sim, vmstat);
}

/** The cost model's defaults (cycles per event; docs/mmu-model.md "Cost model"). */
export const defaultCosts: Readonly<Public.CostTable> = DEFAULT_COSTS;

/** The native addon binary this process loaded (or would load). */
export function nativeAddonPath(): string {
  return addonPath();
}

// --- the contract, checked: each internal shape is assignable to its public type ---------
type Check<T extends true> = T;
type Assignable<T, U> = [T] extends [U] ? true : false;
type Same<T, U> = [T, U] extends [U, T] ? true : false;
type ContractChecks = [
  Check<Assignable<Public.VmConfig, VmConfigInput>>,
  Check<Assignable<InternalVm, Public.Vm>>,
  Check<Assignable<RunResult, Public.RunResult>>,
  Check<Assignable<ReturnType<InternalVm['effectiveConfig']>, Public.EffectiveConfig>>,
  Check<Assignable<ReturnType<typeof effectiveConfigOf>, Public.EffectiveConfig>>,
  Check<Assignable<MemoryReport, Public.MemoryReport>>,
  Check<Assignable<EptView, Public.EptView>>,
  Check<Assignable<SimulatedTime, Public.SimulatedTime>>,
  Check<Assignable<FaultRates, Public.FaultRates>>,
  Check<Assignable<Sample, Public.Sample>>,
  Check<Same<StopReason, Public.StopReason>>,
  Check<Same<ErrorCode, Public.ErrorCode>>,
  Check<Same<CostTable, Public.CostTable>>,
  Check<Same<ThpKnobs, Public.ThpKnobs>>,
];
