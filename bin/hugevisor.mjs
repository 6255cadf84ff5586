#!/usr/bin/env node
// CLI entry: runs the compiled CLI, bundled by scripts/build.mjs. dist/ ships in the package
// and, in a checkout, is built by `npm install` ("prepare") and `npm run build`; `npm test`
// rebuilds it first. No TypeScript loader is involved, and nothing is built here.
//
// Two bundles of the same sources: the experiments commands (sweep, worker, results, report)
// and --debug run dist/cli/hugevisor.js (ES modules, a chunk for the experiments, source
// maps); every other command runs dist/cli/hugevisor.cjs, one script compiled through
// node:vm from V8's code cache (dist/cli/hugevisor.cjs.cache, made by the build), which
// skips compiling the bundle: Node 20 keeps no code cache for ES modules.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const argv = process.argv.slice(2);
const debug = argv.includes('--debug');
// Only --debug prints stack traces; with it they name the TypeScript sources (dist/ has
// source maps). Off otherwise: loading the maps costs every start-up ~80 ms.
if (debug) process.setSourceMapsEnabled(true);
const modules = debug || ['sweep', 'worker', 'results', 'report'].includes(argv[0]);
const entry = new URL(modules ? '../dist/cli/hugevisor.js' : '../dist/cli/hugevisor.cjs', import.meta.url);
const entryPath = fileURLToPath(entry);
if (!existsSync(entryPath)) {
  process.stderr.write(`error: hugevisor is not built: dist/cli/${modules ? 'hugevisor.js' : 'hugevisor.cjs'} is missing (run \`npm run build\`)\n`);
  process.exit(1);
}

/** The script's main(); `script` to make its code cache from. */
function loadScript() {
  const source = readFileSync(entryPath, 'latin1');
  // The cache's first line is the script's (a hash of its content): a cache made from
  // another build is never handed to V8.
  const id = source.slice(0, source.indexOf('\n') + 1);
  let cachedData;
  let cacheState = 'none';
  try {
    const cache = readFileSync(`${entryPath}.cache`);
    if (id.length > 1 && cache.subarray(0, id.length).toString('latin1') === id) cachedData = cache.subarray(id.length);
    else cacheState = 'from another build';
  } catch {
    // No cache: compiled from source.
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname, __hvImportMeta) {\n${source}\n})`, {
    filename: entryPath,
    cachedData,
  });
  if (cachedData) cacheState = script.cachedDataRejected ? 'rejected by V8' : 'used';
  // What test/cli-startup.test.ts checks (and a slow start-up's first question).
  if (process.env.HUGEVISOR_CODE_CACHE_REPORT === '1') process.stderr.write(`code cache: ${cacheState}\n`);
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(entry), module, entryPath, fileURLToPath(new URL('.', entry)), { url: entry.href });
  return { main: module.exports.main, script, id };
}

if (modules) {
  const { main } = await import(entry.href);
  process.exitCode = await main(argv);
} else {
  const { main, script, id } = loadScript();
  process.exitCode = await main(argv);
  // scripts/build.mjs: the cache after a run holds the functions the run compiled too.
  if (process.env.HUGEVISOR_WRITE_CODE_CACHE === '1') {
    const tmp = `${entryPath}.cache.${process.pid}`;
    writeFileSync(tmp, Buffer.concat([Buffer.from(id, 'latin1'), script.createCachedData()]));
    renameSync(tmp, `${entryPath}.cache`);
  }
}
