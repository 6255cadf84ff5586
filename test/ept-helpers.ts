/**
 * Test driver for the EPT layer without a vCPU: it plays the hardware. A guest access to a
 * GPA walks the EPT with the TS walker; an absent or read-only leaf for a write is an EPT
 * violation handed to KvmMmu.handleEptViolation, exactly as the run loop does with
 * EXIT_EPT_VIOLATION; then the access reads or writes the arena bytes at the HPA the EPT
 * gave, so data checks go through the real EPT translation.
 */
import { HPAGE_PMD_SIZE, PAGE_SIZE, gpa as asGpa, type Gpa } from '../src/util/address.ts';
import { KvmMmu, type KvmKernel } from '../src/kvm/mmu/kvm-mmu.ts';
import { createHost, type Host } from '../src/mm/index.ts';
import type { ThpEnabled } from '../src/mm/types.ts';

/**
 * The real host THP model (src/mm) with a VMM process and the EPT layer over it, both in
 * debug mode (every host invariant and the EPT invariant checked as they go).
 */
export function setupEpt(opts: { hostBytes?: number; thp?: ThpEnabled; hostDebug?: boolean; kernel?: KvmKernel; nx_huge_pages?: boolean; eager_page_split?: boolean } = {}) {
  const bytes = opts.hostBytes ?? 128 * MiB;
  const physmem = new ArrayBuffer(bytes);
  const host = createHost({ memoryBytes: bytes, physmem, kernel: opts.kernel, thp: { enabled: opts.thp ?? 'always' }, debugChecks: opts.hostDebug ?? false });
  const mm = host.newProcess();
  let invepts = 0;
  const k = new KvmMmu({ host, mm, physmem, debugChecks: true, kernel: opts.kernel, nx_huge_pages: opts.nx_huge_pages, eager_page_split: opts.eager_page_split });
  k.attachVcpu({ invept: () => invepts++ });
  return { host: host as Host, mm, k, physmem, invepts: () => invepts };
}

/** Gup references held on a frame (struct page _count). */
export function pageCount(host: Host, pfn: number): number {
  return host.pages._count[pfn]!;
}

export const MiB = 1024 * 1024;

export interface DriverStats {
  exits: number;
  retries: number;
}

/** HPA of `g` through the current EPT, or null. */
export function eptTranslate(k: KvmMmu, g: Gpa): { hpa: number; writable: boolean } | null {
  const leaf = k.ept.lookup(g);
  if (!leaf) return null;
  return { hpa: leaf.pfn * PAGE_SIZE + (g - leaf.gpa), writable: leaf.writable };
}

/** One guest access of 4 bytes at `g`; returns the value read (or written). */
export function guestAccess(
  k: KvmMmu,
  physmem: ArrayBufferLike,
  g: Gpa,
  write: boolean,
  value = 0,
  stats?: DriverStats,
): number {
  for (let tries = 0; tries < 8; tries++) {
    const t = eptTranslate(k, g);
    if (t && (!write || t.writable)) {
      const dv = new DataView(physmem, t.hpa, 4);
      if (write) dv.setUint32(0, value, true);
      return dv.getUint32(0, true);
    }
    if (stats) stats.exits++;
    const r = k.handleEptViolation(g, write ? 1 : 0);
    if (r.kind === 'mmio') throw new Error(`unexpected MMIO at 0x${g.toString(16)}`);
    if (r.kind === 'retry' && stats) stats.retries++;
  }
  throw new Error(`EPT violation at 0x${g.toString(16)} not resolved after 8 exits`);
}

/** Value the test guest stores in each page: depends on the GPA and a round number. */
export const pattern = (g: number, round: number) => (Math.imul(g / PAGE_SIZE + 1, 2654435761) ^ round) >>> 0;

/** Touch each 4 KiB page of [start, start+size) in order, as the guest would. */
export function touchRegion(k: KvmMmu, physmem: ArrayBufferLike, start: number, size: number, write: boolean, round = 0): DriverStats {
  const stats: DriverStats = { exits: 0, retries: 0 };
  for (let g = start; g < start + size; g += PAGE_SIZE) guestAccess(k, physmem, asGpa(g), write, pattern(g, round), stats);
  return stats;
}

/** Read every page back through the EPT and count pages whose value is not `pattern(round)`. */
export function countBadPages(k: KvmMmu, physmem: ArrayBufferLike, start: number, size: number, round = 0): number {
  let bad = 0;
  for (let g = start; g < start + size; g += PAGE_SIZE) {
    if (guestAccess(k, physmem, asGpa(g), false) !== pattern(g, round)) bad++;
  }
  return bad;
}

export { HPAGE_PMD_SIZE };

/**
 * One instruction fetch at `g`: a leaf without X (or none) is an EPT violation with the
 * fetch access kind, as the vCPU reports it. Returns the number of exits it took.
 */
export function guestFetch(k: KvmMmu, g: Gpa): number {
  for (let exits = 0; exits < 8; exits++) {
    const leaf = k.ept.lookup(g);
    if (leaf && leaf.executable) return exits;
    const r = k.handleEptViolation(g, 2 /* Access.FETCH */);
    if (r.kind === 'mmio') throw new Error(`unexpected MMIO at 0x${g.toString(16)}`);
  }
  throw new Error(`fetch at 0x${g.toString(16)} not resolved after 8 exits`);
}
