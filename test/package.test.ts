// hugevisor installs and imports as a package, as a user gets it: `npm pack` (its "prepare"
// builds dist/), then `npm install <tarball>` in a fresh ESM project (the package's install
// script builds the addon and the guests there, without devDependencies). A plain .mjs boots
// hello through `import { createVm } from 'hugevisor'` with no TypeScript loader, the
// installed bin runs it too, and a TypeScript file type-checks against the installed
// declarations.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliInProcess, root } from './fixtures/cli.ts';
import { copyFileSync, readFileSync } from 'node:fs';

const run = promisify(execFile);

/**
 * The environment without npm's per-run variables: under `npm test` they describe this
 * checkout (npm_config_local_prefix, npm_package_*), and a nested npm must see the temp
 * project as a user's shell would.
 */
function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

const HELLO_MJS = `import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createVm } from 'hugevisor';

const elf = fileURLToPath(import.meta.resolve('hugevisor/guests/hello.elf'));
const vm = createVm({}, { bytes: readFileSync(elf), name: 'hello' });
try {
  process.stdout.write(vm.run().console);
} finally {
  vm.close();
}
`;

// Type errors the declarations must catch prove they are real types, not \`any\`.
const CHECK_TS = `import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, createVm, defaultCosts, type RunResult, type VmConfig } from 'hugevisor';
import { main } from 'hugevisor/cli';

const config: VmConfig = { memory: 64 << 20, guestPageSize: '2m', host: { thp: { enabled: 'never' } } };
const vm = createVm(config, { bytes: readFileSync(fileURLToPath(import.meta.resolve('hugevisor/guests/hello.elf'))), name: 'hello' });
const r: RunResult | null = vm.run();
const violations: number | undefined = r?.counters.exits_ept_violation;
const perInstruction: number = defaultCosts.instruction;
const isConfigError = (e: unknown): boolean => e instanceof ConfigError;
const code: Promise<number> = main(['list']);
// @ts-expect-error memory is a number of bytes
createVm({ memory: '64M' }, { bytes: new Uint8Array(), name: 'x' });
// @ts-expect-error run() returns a result, whose console is a string
const text: number = vm.run().console;
vm.close();
export { violations, perInstruction, isConfigError, code, text };
`;

test('npm pack, then npm install in a fresh project: plain JS boots hello, the bin runs, TypeScript type-checks, every example runs', async (t) => {
  t.timeout(20 * 60_000, 'npm install builds the native addon in the temp project');
  const dir = mkdtempSync(join(tmpdir(), 'hv-pkg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = userEnv();

  await run('npm', ['pack', '--pack-destination', dir], { cwd: root, env, maxBuffer: 64 << 20 });
  const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
  t.is(tarballs.length, 1);
  const tarball = join(dir, tarballs[0]!);

  const project = join(dir, 'project');
  mkdirSync(project);
  // allowScripts approves the package's install script (the addon build) as
  // `npm install-scripts approve hugevisor` would for a tarball.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'hv-user', private: true, type: 'module', allowScripts: { [`file:${tarball}`]: true } }));
  // --omit=optional: the experiments backend (better-sqlite3 builds from source) is optional;
  // guests, the API and the examples need none of it.
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=optional', tarball], { cwd: project, env, maxBuffer: 64 << 20 });
  const installed = join(project, 'node_modules', 'hugevisor');
  t.true(existsSync(join(installed, 'build', 'Release', 'hugevisor.node')), 'the install script built the addon');
  t.false(existsSync(join(project, 'node_modules', 'tsx')), 'no TypeScript loader is installed for a user');

  writeFileSync(join(project, 'hello.mjs'), HELLO_MJS);
  const hello = await run(process.execPath, ['hello.mjs'], { cwd: project, env });
  t.is(hello.stdout, 'Hello from a hugevisor guest!\n');

  // The bin starts from the code cache the install script made for this node (bin/hugevisor.mjs).
  const bin = await run(process.execPath, [join(project, 'node_modules', '.bin', 'hugevisor'), 'run', 'hello'], { cwd: project, env: { ...env, HUGEVISOR_CODE_CACHE_REPORT: '1' } });
  t.is(bin.stdout, 'Hello from a hugevisor guest!\n');
  t.regex(bin.stderr, /^code cache: used\n/);
  const sweep = await run(process.execPath, [join(project, 'node_modules', '.bin', 'hugevisor'), 'results', 'nowhere'], { cwd: project, env }).catch((e: { code: number; stderr: string }) => e);
  t.is((sweep as { code: number }).code, 2);
  t.regex((sweep as { stderr: string }).stderr, /^error: results needs hugevisor's optional dependencies \(better-sqlite3, piscina, vega…\), which are not installed: /);

  writeFileSync(join(project, 'check.ts'), CHECK_TS);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        lib: ['ES2022'],
        types: ['node'],
        // @types/node from this checkout: the user's own, as any Node TypeScript project has.
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['check.ts'],
    }),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const checked = await run(process.execPath, [tsc, '-p', '.'], { cwd: project, env }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
  t.is(checked.stdout, '');

  // Every example in examples/ runs against the installed package, with the output it promises.
  const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.mjs')).sort();
  t.deepEqual(examples, ['fault-time-series.mjs', 'overcommit.mjs', 'resumable-run.mjs', 'thp-fault-rates.mjs']);
  const out: Record<string, string> = {};
  for (const f of examples) {
    copyFileSync(join(root, 'examples', f), join(project, f));
    out[f] = (await run(process.execPath, [f], { cwd: project, env })).stdout;
  }
  t.true(readFileSync(join(root, 'examples', 'thp-fault-rates.mjs'), 'utf8').trimEnd().split('\n').length <= 15, 'at most 15 lines');

  // thp-fault-rates: its tables equal the CLI's --json rates for the same configurations.
  for (const thp of ['always', 'never']) {
    const cli = await cliInProcess(['run', 'demand-paging', '--memory', '128M', '--arg', '64M', '--thp', thp, '--json']);
    const events = JSON.parse(cli.stdout).rates.events as Record<string, { total: number; per_million_instructions: number; per_sim_second: number }>;
    const table = out['thp-fault-rates.mjs']!.split(`host THP ${thp}\n`)[1]!.split('\n').slice(1, 1 + Object.keys(events).length);
    t.deepEqual(
      table.map((l) => l.trim().split(/\s+/)),
      Object.entries(events).map(([name, r]) => [name, String(r.total), r.per_million_instructions.toFixed(2), r.per_sim_second.toFixed(0)]),
      `THP ${thp}`,
    );
  }
  t.is(out['resumable-run.mjs'], 'after 994459 instructions: 1984 4K + 0 2M EPT leaves (max-instructions)\nfinished: 8341869 instructions, 0 4K + 17 2M EPT leaves, exit 0\n');
  t.is(
    out['overcommit.mjs'],
    'A: mem-scan: region 33554432 passes 1 checksum 0x000007ffffe00000\nB: mem-scan: region 33554432 passes 1 checksum 0x000007ffffe00000\nhost: pswpout 4883, pswpin 21, MemFree 2504 kB\n',
  );
  const rows = out['fault-time-series.mjs']!.trim().split('\n');
  t.is(rows[0], 'instructions,simulated_us,guest_pf,guest_pf_per_M_instr');
  t.is(rows[1], '496465,4479.6,979,1971.9');
  t.is(rows.slice(1).reduce((sum, r) => sum + Number(r.split(',')[2]), 0), 16384, 'every guest #PF is in one interval');
  t.is(rows.at(-1)!.split(',')[2], '0', 'the rate falls to 0 once the region is filled');
});
