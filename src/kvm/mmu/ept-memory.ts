/**
 * EPT mode as a Vm memory backend (src/kvm/memory.ts GuestMemoryBackend): the arena is
 * the simulated host's RAM, guest RAM is anonymous memory of the VMM process in the host
 * THP model (one memslot at GPA 0, mmapped 2 MiB aligned with MADV_HUGEPAGE as QEMU
 * does), the vCPU translates through the EPT that KvmMmu fills on EPT violations.
 *
 * This is the attach_ept step: createVm(config, image, { memory: eptMemory(opts) }).
 */
import { gpa as asGpa } from '../../util/address.ts';
import type { ResolvedHostConfig, ResolvedKvmConfig } from '../config.ts';
import { ConfigError } from '../../util/errors.ts';
import type { NativeAddon, NativeArena, NativeMmuConfig, NativeVcpu } from '../../native/types.ts';
import type { Host } from '../../mm/index.ts';
import { HostMachine } from '../host-machine.ts';
import type { MmStructApi } from '../../mm/types.ts';
import type { HostEvents } from '../cost.ts';
import type { ExitInfo } from '../vcpu.ts';
import type { GuestMemoryBackend } from '../memory.ts';
import type { GuestMemory } from '../../guest/memory.ts';
import { KvmMmu, type KvmMmuStats } from './kvm-mmu.ts';
import type { EptFaultResult } from './tdp-fault.ts';

export interface EptBackendOptions {
  /** The host section, validated and with its defaults (src/kvm/config.ts): a host of the VM's own. */
  host?: ResolvedHostConfig;
  /** Or a host machine shared with other VMs (the VM is one more VMM process on it). */
  machine?: HostMachine;
  /** madvise(MADV_HUGEPAGE) on guest RAM (QEMU does). Default true. */
  madviseHugepage?: boolean;
  /** KVM module parameters (VmConfig.kvm); default: nx_huge_pages off, eager_page_split on. */
  kvm?: ResolvedKvmConfig;
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
  /** The host machine the VM runs on (its own, or shared). */
  readonly machine: HostMachine;
  eptStats(): EptRunStats;
  /** /proc/vmstat of the host plus khugepaged's counters. */
  hostStats(): Record<string, number>;
}

/** createVm's `memory` dependency for EPT mode. */
export function eptMemory(opts: EptBackendOptions): (addon: NativeAddon, size: number) => EptMemoryBackend {
  return (addon, size) => createEptMemory(addon, size, opts);
}

export function createEptMemory(addon: NativeAddon, size: number, opts: EptBackendOptions): EptMemoryBackend {
  if (!opts.machine && !opts.host) throw new ConfigError('EPT memory needs a host: a host section or a host machine');
  const own = !opts.machine;
  const machine = opts.machine ?? new HostMachine(addon, opts.host!);
  if (machine.isClosed) throw new ConfigError('host: used after close()');
  const { arena, host } = machine;
  const debugChecks = machine.config.debugChecks;
  const mm = host.newProcess();
  const kvmMmu = new KvmMmu({
    host,
    mm,
    physmem: arena,
    debugChecks,
    kernel: host.kernel,
    nx_huge_pages: opts.kvm?.nx_huge_pages === 'on',
    eager_page_split: (opts.kvm?.eager_page_split ?? 'on') === 'on',
  });
  kvmMmu.addRamSlot(0, asGpa(0), size, { madvise: opts.madviseHugepage ?? true });
  const memory: GuestMemory = kvmMmu.guestMemory();
  const mmu: NativeMmuConfig = { ept: true, eptp: kvmMmu.eptp };

  const hostStats = (): Record<string, number> => machine.stats();
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
    machine,
    close(): void {
      // The VMM process exits (its frames go back to the host's free lists, the EPT tables
      // with it); a host of the VM's own shuts down with it (src/kvm/host-machine.ts).
      kvmMmu.destroy();
      mm.exit_mmap();
      if (own) machine.close();
    },
  };
}
