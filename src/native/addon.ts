/** Loads the native addon built by `npm install` (build/Release/hugevisor.node). */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeError } from '../util/errors.ts';
import type { NativeAddon } from './types.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let cached: NativeAddon | undefined;

/** Path of the addon binary; HUGEVISOR_ADDON overrides it (used by the node-gyp build test). */
export function addonPath(): string {
  return process.env.HUGEVISOR_ADDON ?? join(root, 'build', 'Release', 'hugevisor.node');
}

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new NativeError(`native addon not built: ${path} is missing (run \`npm install\` or \`npm run build\`)`);
  }
  const require = createRequire(import.meta.url);
  cached = require(path) as NativeAddon;
  return cached;
}
