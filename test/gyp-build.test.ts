// The node-gyp build (binding.gyp, fed by native/sources.txt) produces a working addon:
// build it from a copy of the sources in a temp dir, offline (npm's nodedir setting points
// node-gyp at the installed Node headers), then boot hello with it in a child process.
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { root } from './fixtures/cli.ts';

const run = promisify(execFile);

/** npm's nodedir (from ~/.npmrc); npm exports it to scripts, otherwise ask npm. */
function nodedir(): string {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const v = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
  if (!v || v === 'undefined' || v === 'null') throw new Error('npm has no nodedir setting: node-gyp would try to download headers');
  return v;
}

test('node-gyp builds the addon from binding.gyp and it runs the hello guest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-gyp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, 'binding.gyp'), join(dir, 'binding.gyp'));
  cpSync(join(root, 'native'), join(dir, 'native'), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, private: true, binary: pkg.binary }));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir'); // node-addon-api for include_dirs

  await run(process.execPath, [join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), 'rebuild', '-j', '2'], {
    cwd: dir,
    env: { ...process.env, npm_config_nodedir: nodedir() },
    maxBuffer: 64 << 20,
  });
  const addon = join(dir, 'build', 'Release', 'hugevisor.node');
  t.true(existsSync(addon));

  const hello = async (env: NodeJS.ProcessEnv) => JSON.parse((await run(process.execPath, ['bin/hugevisor.mjs', 'run', 'hello', '--json'], { cwd: root, env: { ...process.env, ...env } })).stdout);
  const j = await hello({ HUGEVISOR_ADDON: addon });
  t.is(j.addon, addon);
  t.is(j.exitStatus, 0);
  t.is(j.console, 'Hello from a hugevisor guest!\n');
  // The same counts as the cmake-js build of the same sources.
  const ref = await hello({ HUGEVISOR_ADDON: join(root, 'build', 'Release', 'hugevisor.node') });
  t.not(ref.addon, addon);
  t.deepEqual(j.counters, ref.counters);
});
