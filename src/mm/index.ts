/**
 * Entry point of the host memory model: createHost() and the public types.
 */
import { Host } from './host.ts';
import type { HostApi, HostConfig } from './types.ts';

/** A simulated host (validated config; ConfigError on a bad field). */
export function createHost(config: HostConfig): Host & HostApi {
  return new Host(config);
}

export { Host } from './host.ts';
export { MmStruct } from './mm.ts';
export { SegvError } from './errors.ts';
export * from './types.ts';
