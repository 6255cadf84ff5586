/**
 * Entry point of the host memory model: createHost() and the public types. mm2's
 * modules (khugepaged.ts, swap.ts, reclaim.ts) register their hooks when imported:
 * add their side-effect imports in the marked block below.
 */
import { Host } from './host.ts';
import type { HostApi, HostConfig } from './types.ts';

// --- mm2: side-effect imports of khugepaged / swap / reclaim go here ---
import './swap.ts';
import './reclaim.ts';
import './khugepaged.ts';
// --- end mm2 ---

/** A simulated host (validated config; ConfigError on a bad field). */
export function createHost(config: HostConfig): Host & HostApi {
  return new Host(config);
}

export { Host } from './host.ts';
export { MmStruct } from './mm.ts';
export { SegvError } from './errors.ts';
export { registerMmExtensions } from './extensions.ts';
export * from './types.ts';
