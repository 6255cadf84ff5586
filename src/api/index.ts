/**
 * The hypervisor's public API: a facade over src/kvm, typed by the hand-written contract in
 * src/api/types.ts. Scripts, experiments and the CLI import this module and nothing below it.
 *
 *   import { createVm } from './src/api/index.ts';
 *   const vm = createVm({ memory: 256 << 20, guestPageSize: '2m', args: [42] }, { bytes, name: 'gups' });
 *   const r = vm.run();        // RunResult: exitStatus, stopReason, console, counters, roi, simulated...
 *
 * The checks at the end of this file make the compiler prove that every internal shape maps
 * onto its public type, so the contract cannot drift from the implementation.
 */
import type * as Public from './types.ts';
import { createVm as createInternalVm, type RunResult, type Vm as InternalVm } from '../kvm/vm.ts';
import type { VmConfigInput } from '../kvm/config.ts';
import type { StopReason } from '../kvm/exits.ts';
import type { CostTable, SimulatedTime } from '../kvm/cost.ts';
import type { FaultRates } from '../kvm/rates.ts';
import type { MemoryReport } from '../kvm/report.ts';
import type { Sample } from '../kvm/sampler.ts';
import type { EptView } from '../kvm/mmu/debug.ts';
import type { ErrorCode } from '../util/errors.ts';
import type { ThpKnobs } from '../mm/types.ts';
import { DEFAULT_COSTS } from '../kvm/cost.ts';
import { addonPath } from '../native/addon.ts';

export type * from './types.ts';
export { ConfigError, ElfError, GuestError, HugevisorError, NativeError, OutOfMemoryError } from '../util/errors.ts';

/**
 * Create a VM with `image` loaded and booted to its entry point, ready to run(). The config
 * is validated once, here: a bad value is a ConfigError naming its path and what it accepts.
 */
export function createVm(config: Public.VmConfig, image: Public.GuestImage): Public.Vm {
  return createInternalVm(config, image);
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
export type ContractChecks = [
  Check<Assignable<Public.VmConfig, VmConfigInput>>,
  Check<Assignable<InternalVm, Public.Vm>>,
  Check<Assignable<RunResult, Public.RunResult>>,
  Check<Assignable<ReturnType<InternalVm['effectiveConfig']>, Public.EffectiveConfig>>,
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
