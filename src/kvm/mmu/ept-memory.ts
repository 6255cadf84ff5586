/**
 * EPT mode as a Vm memory backend (src/kvm/memory.ts GuestMemoryBackend): the arena is
 * the simulated host's RAM, guest RAM is anonymous memory of the VMM process in the host
 * THP model (one memslot at GPA 0, mmapped 2 MiB aligned with MADV_HUGEPAGE as QEMU
 * does), the vCPU translates through the EPT that KvmMmu fills on EPT violations.
 *
 * This is the attach_ept step: createVm(config, image, { memory: eptMemory(opts) }).
 */
import { gpa as asGpa } from '../../util/address.ts';
import type { ResolvedHostConfig } from '../config.ts';
import { ConfigError } from '../../util/errors.ts';
import type { NativeAddon, NativeArena, NativeMmuConfig, NativeVcpu } from '../../native/types.ts';
import { createHost, type Host } from '../../mm/index.ts';
import type { MmStructApi } from '../../mm/types.ts';
import type { HostEvents } from '../cost.ts';
import type { ExitInfo } from '../vcpu.ts';
import type { GuestMemoryBackend } from '../memory.ts';
import type { GuestMemory } from '../../guest/memory.ts';
import { KvmMmu, type KvmMmuStats } from './kvm-mmu.ts';
import type { EptFaultResult } from './tdp-fault.ts';

export interface EptBackendOptions {
  /** The host section, validated and with its defaults (src/kvm/config.ts). */
  host: ResolvedHostConfig;
  /** madvise(MADV_HUGEPAGE) on guest RAM (QEMU does). Default true. */
  madviseHugepage?: boolean;
}

/** What the EPT layer and the host add to a run's result: KVM's stats plus the leaves and tables mapped at the end. */
export interface EptRunStats extends KvmMmuStats {
  pages_4k: number;
  pages_2m: number;
  ept_tables: number;
}

export interface EptMemoryBackend extends GuestMemoryBackend {
  readonly kind: 'ept';
  readonly host: Host;
  /** The VMM process. */
  readonly mm: MmStructApi;
  readonly kvmMmu: KvmMmu;
  eptStats(): EptRunStats;
  /** /proc/vmstat of the host plus khugepaged's counters. */
  hostStats(): Record<string, number>;
}

/** createVm's `memory` dependency for EPT mode. */
export function eptMemory(opts: EptBackendOptions): (addon: NativeAddon, size: number) => EptMemoryBackend {
  return (addon, size) => createEptMemory(addon, size, opts);
}

export function createEptMemory(addon: NativeAddon, size: number, opts: EptBackendOptions): EptMemoryBackend {
  const { memory: hostMemory, thp, swap, debugChecks } = opts.host;
  let arena: NativeArena;
  try {
    arena = new addon.Arena(hostMemory);
  } catch (e) {
    throw new ConfigError(`host.memory: cannot reserve ${hostMemory} bytes: ${(e as Error).message}`);
  }
  let host: Host;
  try {
    host = createHost({ memoryBytes: hostMemory, physmem: arena, thp, swap, debugChecks });
  } catch (e) {
    // The struct page array is allocated up front; V8 throws a RangeError when it cannot.
    // Other errors (bad knobs: ConfigErrors) pass unchanged.
    if (e instanceof RangeError) throw new ConfigError(`host.memory: cannot allocate the host model for ${hostMemory} bytes: ${e.message}`);
    throw e;
  }
  const mm = host.newProcess();
  const kvmMmu = new KvmMmu({ host, mm, physmem: arena, debugChecks });
  kvmMmu.addRamSlot(0, asGpa(0), size, { madvise: opts.madviseHugepage ?? true });
  const memory: GuestMemory = kvmMmu.guestMemory();
  const mmu: NativeMmuConfig = { ept: true, eptp: kvmMmu.eptp };

  const hostStats = (): Record<string, number> => ({ ...host.vmstat(), ...host.khugepagedStats() });
  return {
    kind: 'ept',
    memory,
    arena,
    mmu,
    host,
    mm,
    kvmMmu,
    attachVcpu(vcpu: NativeVcpu): void {
      kvmMmu.attachVcpu(vcpu);
    },
    handleEptViolation(exit: ExitInfo): EptFaultResult {
      return kvmMmu.handleEptViolation(exit.gpa, exit.access);
    },
    hostEvents(): HostEvents {
      const v = host.vmstat();
      const huge = v.thp_fault_alloc ?? 0;
      const small = Math.max(0, (v.pgfault ?? 0) - huge);
      // Approximation: every 4 KiB fault counts as zeroing a page (zero-page maps do not
      // zero, COW copies instead); collapses copy 2 MiB each; swap I/O is in pages.
      return {
        host_fault_4k: small,
        host_fault_2m: huge,
        kib_zeroed: small * 4 + huge * 2048,
        kib_copied: host.khugepagedStats().pages_collapsed * 2048,
        swap_io_page: (v.pswpin ?? 0) + (v.pswpout ?? 0),
      };
    },
    eptStats(): EptRunStats {
      return { ...kvmMmu.stats, pages_4k: kvmMmu.pages_4k, pages_2m: kvmMmu.pages_2m, ept_tables: kvmMmu.ept.tableCount };
    },
    hostStats,
    close(): void {
      // The host tears down its processes and swap file (every frame free, checked in debug
      // mode), then the arena's pages go back to the kernel at once (MADV_DONTNEED), not when
      // the garbage collector finds the wrapper.
      host.close();
      arena.discard(0, arena.byteLength);
    },
  };
}
