/**
 * Loads the native addons built by `npm install`: the production addon
 * (build/Release/hugevisor.node) and the bench addon (build/Release/hugevisor_bench.node,
 * test and benchmark entry points only).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeError } from '../util/errors.ts';
import { Access, ExitReason, type BenchAddon, type NativeAddon } from './types.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let cached: NativeAddon | undefined;
let cachedBench: BenchAddon | undefined;

/** Path of the addon binary; HUGEVISOR_ADDON overrides it (used by the node-gyp build test). */
export function addonPath(): string {
  return process.env.HUGEVISOR_ADDON ?? join(root, 'build', 'Release', 'hugevisor.node');
}

/** Path of the bench addon binary (built by the cmake-js build only). */
export function benchAddonPath(): string {
  return join(root, 'build', 'Release', 'hugevisor_bench.node');
}

function requireBinary<T>(path: string, what: string): T {
  if (!existsSync(path)) {
    throw new NativeError(`${what} not built: ${path} is missing (run \`npm install\` or \`npm run build\`)`);
  }
  // require() would run anything else as JavaScript: only a native module is loaded.
  if (!path.endsWith('.node')) throw new NativeError(`${what} ${path} is not a native module (.node file)`);
  const require = createRequire(import.meta.url);
  try {
    return require(path) as T;
  } catch (e) {
    throw new NativeError(`${what} ${path} cannot be loaded: ${(e as Error).message.split('\n')[0]}`);
  }
}

/**
 * TS tables that mirror native enums must agree with the names the addon exports (a stale
 * build or a native change without the TS side would otherwise misread exits silently).
 */
function checkEnum(what: string, table: Readonly<Record<string, number>>, names: readonly string[] | undefined, path: string): void {
  const want = Object.entries(table).sort((a, b) => a[1] - b[1]).map(([k]) => k);
  if (!names || names.length !== want.length || names.some((n, i) => n !== want[i])) {
    throw new NativeError(`native addon ${path}: ${what} are [${names?.join(', ') ?? 'missing'}], TS expects [${want.join(', ')}] (rebuild with \`npm run build\`)`);
  }
}

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  const addon = requireBinary<NativeAddon>(path, 'native addon');
  checkEnum('exit reasons', ExitReason, addon.exitReasonNames, path);
  checkEnum('access kinds', Access, addon.accessNames, path);
  cached = addon;
  return cached;
}

/** The bench addon: walkBench and other entry points that only benchmarks and tests use. */
export function loadBenchAddon(): BenchAddon {
  if (cachedBench) return cachedBench;
  cachedBench = requireBinary<BenchAddon>(benchAddonPath(), 'bench addon');
  return cachedBench;
}
