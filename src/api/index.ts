/**
 * The hypervisor's public API: a facade over src/kvm and src/guest for scripts and
 * experiments. Everything here is typed against src/api/types.ts.
 *
 *   import { createVm } from './src/api/index.ts';
 *   const vm = createVm({ memory: 256 << 20, guestPageSize: '2m', args: [42] }, { bytes, name: 'gups' });
 *   const r = vm.run();        // RunResult: exitStatus, stopReason, console, counters, roi, simulated...
 */
export type { BootSummary, RoiResult, RunResult, VmConfig } from './types.ts';
export type { CostTable, FaultRates, HostEvents, SimulatedTime } from '../kvm/cost.ts';
export type { CounterSnapshot, ExitInfo } from '../kvm/vcpu.ts';
export type { StopReason, StopInfo } from '../kvm/exits.ts';
export type { GuestMemory } from '../guest/memory.ts';
export type { GuestMemoryBackend } from '../kvm/memory.ts';
export { createVm, Vm, type GuestImage, type VmDeps } from '../kvm/vm.ts';
export { DEFAULT_COSTS, faultRates, makeCostTable, simulate } from '../kvm/cost.ts';
export { counterDelta } from '../kvm/vcpu.ts';
export { parseElf, loadElf } from '../guest/elf.ts';
export { planBoot, writeBoot } from '../guest/boot.ts';
