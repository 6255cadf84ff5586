#!/usr/bin/env node
// CLI entry: runs the compiled CLI, bundled into one file (dist/cli/hugevisor.js). dist/ ships in the package and, in a
// checkout, is built by `npm install` ("prepare") and `npm run build`; `npm test` rebuilds
// it first. No TypeScript loader is involved.
import { existsSync } from 'node:fs';

// Only --debug prints stack traces; with it they name the TypeScript sources (dist/ has
// source maps). Off otherwise: loading the maps costs every start-up ~80 ms.
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
const entry = new URL('../dist/cli/hugevisor.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('error: hugevisor is not built: dist/cli/hugevisor.js is missing (run `npm run build`)\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
