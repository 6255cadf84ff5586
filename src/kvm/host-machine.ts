/**
 * The simulated host machine a VM runs on: its RAM (the native arena, where every vCPU on it
 * executes) and the host kernel's memory manager (src/mm, the 2.6.38 THP model). One VM
 * normally gets a host of its own; several VMs can share one (overcommit as an experiment:
 * one VM's pressure reclaims or swaps another's), each as its own VMM process on it.
 */
import type { NativeAddon, NativeArena } from '../native/types.ts';
import { createHost, type Host } from '../mm/index.ts';
import { ConfigError } from '../util/errors.ts';
import type { ResolvedHostConfig } from './config.ts';

export class HostMachine {
  readonly arena: NativeArena;
  readonly host: Host;
  /** VMs (VMM processes) running on this host now. */
  readonly vms = new Set<{ close(): void }>();
  private closed = false;

  constructor(
    addon: NativeAddon,
    readonly config: ResolvedHostConfig,
  ) {
    const { memory, kernel, thp, swap, debugChecks } = config;
    try {
      this.arena = new addon.Arena(memory);
    } catch (e) {
      throw new ConfigError(`host.memory: cannot reserve ${memory} bytes: ${(e as Error).message}`);
    }
    try {
      this.host = createHost({ memoryBytes: memory, physmem: this.arena, kernel, thp, swap, debugChecks });
    } catch (e) {
      // The struct page array is allocated up front; V8 throws a RangeError when it cannot.
      // Other errors (bad knobs: ConfigErrors) pass unchanged.
      if (e instanceof RangeError) throw new ConfigError(`host.memory: cannot allocate the host model for ${memory} bytes: ${e.message}`);
      throw e;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** /proc/vmstat of the host plus khugepaged's sysfs counters. */
  stats(): Record<string, number> {
    return { ...this.host.vmstat(), ...this.host.khugepagedStats() };
  }

  /** The THP knobs now (transparent_hugepage/*, sysfs names). */
  get knobs() {
    return this.host.knobs;
  }

  /**
   * Write a sysfs knob below transparent_hugepage/ ('enabled', 'khugepaged/pages_to_scan'…),
   * validated as the kernel's store function would; it takes effect at once (between two run()
   * pieces, say, to turn THP on at t = 50 ms).
   */
  setKnob(path: string, value: string | number | boolean): void {
    this.live();
    this.host.setKnob(path, value as string | number);
  }

  /** /proc/meminfo in kB. */
  meminfo(): Record<string, number> {
    return this.host.meminfo();
  }

  private live(): void {
    if (this.closed) throw new ConfigError('host: used after close()');
  }

  /**
   * Shut the machine down: every VM on it is closed first, then the host exits its
   * processes and removes its swap file (every frame free, checked in debug mode), and the
   * arena's pages go back to the kernel at once (MADV_DONTNEED).
   */
  close(): void {
    if (this.closed) return;
    for (const vm of [...this.vms]) vm.close();
    this.closed = true;
    this.host.close();
    this.arena.discard(0, this.arena.byteLength);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
