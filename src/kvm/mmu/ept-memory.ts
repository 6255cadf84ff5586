/**
 * EPT mode as a Vm memory backend (src/kvm/memory.ts GuestMemoryBackend): the arena is
 * the simulated host's RAM, guest RAM is anonymous memory of the VMM process in the host
 * THP model (one memslot at GPA 0, mmapped 2 MiB aligned with MADV_HUGEPAGE as QEMU
 * does), the vCPU translates through the EPT that KvmMmu fills on EPT violations.
 *
 * This is the attach_ept step: createVm(config, image, { memory: eptMemory(opts) }).
 */
import { alignDown, alignUp, gpa as asGpa, HPAGE_PMD_SIZE } from '../../util/address.ts';
import { ConfigError } from '../../util/errors.ts';
import { ARENA_MAX_BYTES, type NativeAddon, type NativeArena, type NativeMmuConfig, type NativeVcpu, type TlbGeometry } from '../../native/types.ts';
import { createHost, type Host } from '../../mm/index.ts';
import type { HostConfig, MmStructApi } from '../../mm/types.ts';
import type { HostEvents } from '../cost.ts';
import type { ExitInfo } from '../vcpu.ts';
import type { GuestMemoryBackend } from '../memory.ts';
import type { GuestMemory } from '../../guest/memory.ts';
import { KvmMmu, type KvmMmuStats } from './kvm-mmu.ts';
import type { EptAccess, EptFaultResult } from './tdp-fault.ts';

export interface EptBackendOptions {
  /** Simulated host RAM in bytes (a multiple of 2 MiB). Default: guest memory + 1/8 + 32 MiB, at most MAX_HOST_MEMORY. */
  hostMemory?: number;
  /** Host THP knobs (transparent_hugepage/*), as HostConfig.thp. */
  thp?: HostConfig['thp'];
  /** Host swap device. */
  swap?: HostConfig['swap'];
  /** Check the host invariants after every host operation and the EPT invariant after every EPT change. */
  debugChecks?: boolean;
  /** madvise(MADV_HUGEPAGE) on guest RAM (QEMU does). Default true. */
  madviseHugepage?: boolean;
  /** Modeled TLB geometry passed to configureMmu. */
  tlb?: TlbGeometry;
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

/** Smallest host: the zero page, EPT and host page tables and a little guest RAM. */
export const MIN_HOST_MEMORY = 8 * 1024 * 1024;
/**
 * Largest host: the arena's 1 TiB lazy reservation (ARENA_MAX_BYTES). Arena bytes cost only
 * when touched, but the host model's struct page array is STRUCT_PAGE_BYTES per frame of
 * the whole host, allocated up front (zeroed lazily by the kernel).
 */
export const MAX_HOST_MEMORY = ARENA_MAX_BYTES;

/**
 * Default host size for a guest of `memory` bytes: room for guest RAM, tables and slack,
 * capped at MAX_HOST_MEMORY. Guest RAM is anonymous memory faulted in
 * lazily, so a host smaller than the guest is legal (overcommit): a guest that touches more
 * than the host has gets ENOMEM from the host (or swaps, with a swap device).
 */
export function defaultHostMemory(memory: number): number {
  const want = alignUp(memory + Math.floor(memory / 8) + 32 * 1024 * 1024, HPAGE_PMD_SIZE);
  return Math.max(MIN_HOST_MEMORY, Math.min(want, alignDown(MAX_HOST_MEMORY, HPAGE_PMD_SIZE)));
}

/** createVm's `memory` dependency for EPT mode. */
export function eptMemory(opts: EptBackendOptions = {}): (addon: NativeAddon, size: number) => EptMemoryBackend {
  return (addon, size) => createEptMemory(addon, size, opts);
}

export function createEptMemory(addon: NativeAddon, size: number, opts: EptBackendOptions = {}): EptMemoryBackend {
  const hostMemory = opts.hostMemory ?? defaultHostMemory(size);
  if (!Number.isSafeInteger(hostMemory) || hostMemory <= 0 || hostMemory % HPAGE_PMD_SIZE !== 0) {
    throw new ConfigError(`host memory must be a positive multiple of 2 MiB, got ${hostMemory}`);
  }
  // Checked before the native call so the error names host memory.
  if (hostMemory > MAX_HOST_MEMORY) {
    throw new ConfigError(`host memory of ${hostMemory} bytes exceeds the ${MAX_HOST_MEMORY}-byte (1 TiB) maximum`);
  }
  if (hostMemory < MIN_HOST_MEMORY) throw new ConfigError(`host memory must be at least 8 MiB, got ${hostMemory}`);
  let arena: NativeArena;
  try {
    arena = new addon.Arena(hostMemory);
  } catch (e) {
    throw new ConfigError(`cannot reserve ${hostMemory} bytes of host memory: ${(e as Error).message}`);
  }
  let host: Host;
  try {
    host = createHost({ memoryBytes: hostMemory, physmem: arena, thp: opts.thp, swap: opts.swap, debugChecks: opts.debugChecks });
  } catch (e) {
    // The struct page array (STRUCT_PAGE_BYTES per frame) is allocated up front; V8 throws a
    // RangeError when it cannot. Other errors (bad knobs: ConfigErrors) pass unchanged.
    if (e instanceof RangeError) throw new ConfigError(`cannot allocate the host model for ${hostMemory} bytes of host memory: ${e.message}`);
    throw e;
  }
  const mm = host.newProcess();
  const kvmMmu = new KvmMmu({ host, mm, physmem: arena, debugChecks: opts.debugChecks });
  kvmMmu.addRamSlot(0, asGpa(0), size, { madvise: opts.madviseHugepage ?? true });
  const memory: GuestMemory = kvmMmu.guestMemory();
  const mmu: NativeMmuConfig = { ept: true, eptp: kvmMmu.eptp, ...(opts.tlb ? { tlb: opts.tlb } : {}) };

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
      return kvmMmu.handleEptViolation(asGpa(exit.gpa), exit.access as EptAccess);
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
  };
}
