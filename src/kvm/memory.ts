/**
 * Guest memory backends: what the Vm needs from "where guest RAM lives". The no-EPT
 * backend here is one contiguous arena range (GPA g at arena byte base + g) and the
 * native MMU translates GPAs by adding the base. EPT mode (src/kvm/ept*.ts) provides the
 * same interface with memslots over the host THP model: its GuestMemory goes
 * Gpa → memslot → Hva → host mm, its mmu config names the EPT root, and it resolves
 * EPT violations and reports host events for the cost model.
 */
import { LinearGuestMemory, type GuestMemory } from '../guest/memory.ts';
import { ARENA_MAX_BYTES, type NativeAddon, type NativeArena, type NativeMmuConfig, type NativeVcpu } from '../native/types.ts';
import { ConfigError } from '../util/errors.ts';
import type { HostEvents } from './cost.ts';
import type { EptViolationHandler } from './exits.ts';

export interface GuestMemoryBackend extends Partial<EptViolationHandler> {
  /** 'linear' (no EPT) or 'ept'. */
  readonly kind: string;
  readonly memory: GuestMemory;
  /** The arena the vCPU executes in. */
  readonly arena: NativeArena;
  /** Passed to NativeVcpu.configureMmu. */
  readonly mmu: NativeMmuConfig;
  /** Called once the vCPU exists (EPT mode: to INVEPT after EPT changes). */
  attachVcpu?(vcpu: NativeVcpu): void;
  /** Host-side events so far, for the cost model. */
  hostEvents?(): HostEvents;
  /** Return every byte of guest memory (and the host behind it) now; the backend is unusable after. */
  close(): void;
}

export interface LinearMemoryOptions {
  /** An existing arena to place guest RAM in (default: a new arena of exactly `size` bytes). */
  arena?: NativeArena;
  /** Arena offset of GPA 0 (4 KiB aligned). Default 0. */
  base?: number;
}

/** No-EPT guest RAM: GPA [0, size) = arena [base, base + size). */
export function createLinearMemory(addon: NativeAddon, size: number, opts: LinearMemoryOptions = {}): GuestMemoryBackend {
  const base = opts.base ?? 0;
  let arena = opts.arena;
  if (!arena) {
    // Checked here so the user gets a ConfigError naming guest memory (the addon would
    // refuse too, with a RangeError). The arena is reserved lazily: only touched pages cost.
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size) || size <= 0 || base < 0) {
      throw new ConfigError(`guest memory must be a positive integer of bytes at a non-negative base, got ${size} at ${base}`);
    }
    if (base + size > ARENA_MAX_BYTES) {
      throw new ConfigError(`guest memory of ${size} bytes needs an arena of ${base + size} bytes, above the ${ARENA_MAX_BYTES}-byte (1 TiB) maximum`);
    }
    try {
      arena = new addon.Arena(base + size);
    } catch (e) {
      throw new ConfigError(`cannot reserve ${size} bytes of guest memory: ${(e as Error).message}`);
    }
  }
  const memory = new LinearGuestMemory(arena, base, size);
  const own = !opts.arena;
  return {
    kind: 'linear',
    memory,
    arena,
    mmu: { ept: false, guestBase: base, guestSize: size },
    close(): void {
      // An arena the caller passed in is the caller's: only guest RAM we reserved is returned.
      if (own) arena.discard(0, arena.byteLength);
    },
  };
}
