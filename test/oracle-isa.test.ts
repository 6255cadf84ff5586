// The native oracle: the isa-selftest vectors (guests/isa/*.inc) assembled into a Linux
// user program and run on this machine's CPU, so every expected value and flag the guest
// checks is proven against real hardware. The system group needs CPL 0 and is guest-only.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const isaDir = join(root, 'guests', 'isa');
const outDir = join(root, 'build', 'oracle');

function buildOracle(includeDir: string, exe: string): void {
  const obj = `${exe}.o`;
  execFileSync('as', ['--64', '-I', includeDir, '-o', obj, join(root, 'tools', 'oracle', 'isa-oracle.s')]);
  execFileSync('ld', ['-static', '-o', exe, obj]);
}

test('the generated ALU vectors are up to date with the model', (t) => {
  const r = spawnSync(process.execPath, [join(root, 'tools', 'oracle', 'gen-alu-vectors.mjs'), '--check'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
});

test('every isa-selftest expectation holds on the real CPU', (t) => {
  mkdirSync(outDir, { recursive: true });
  const exe = join(outDir, 'isa-oracle');
  buildOracle(isaDir, exe);
  const r = spawnSync(exe, [], { encoding: 'utf8' });
  const lines = r.stdout.trimEnd().split('\n');
  t.deepEqual(lines.filter((l) => l.includes('FAIL')), []);
  t.deepEqual(lines, ['data: 232 passed', 'alu: 1379 passed', 'control: 136 passed', 'strings: 22 passed', '1769 passed, 0 failed']);
  t.is(r.status, 0);
});

test('the oracle catches a wrong expected value or flag', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-oracle-'));
  try {
    for (const f of readdirSync(isaDir)) copyFileSync(join(isaDir, f), join(dir, f));
    const vectors = readFileSync(join(dir, 'alu-vectors.inc'), 'utf8').split('\n');
    // line 3: add b 0 + 0 = 0 with ZF|PF (0x44): claim CF too; line 4: claim a wrong sum
    t.true(vectors[2].endsWith('0x44, 0x8d5'));
    vectors[2] = vectors[2].replace(/0x44, 0x8d5$/, '0x45, 0x8d5');
    vectors[3] = vectors[3].replace(/, 1, 0x5a5a5a5a5a5a5a00,/, ', 1, 0x5a5a5a5a5a5a5a01,');
    writeFileSync(join(dir, 'alu-vectors.inc'), vectors.join('\n'));
    const exe = join(dir, 'oracle');
    buildOracle(dir, exe);
    const r = spawnSync(exe, [], { encoding: 'utf8' });
    t.is(r.status, 1);
    t.regex(r.stdout, /FAIL alu addb reg,reg: flags 0x0000000000000044 expected 0x0000000000000045\n/);
    t.regex(r.stdout, /FAIL alu addb reg,reg: %rax 0x5a5a5a5a5a5a5a00 expected 0x5a5a5a5a5a5a5a01\n/);
    t.regex(r.stdout, /alu: 1377 passed, 2 failed\n/);
    t.regex(r.stdout, /1767 passed, 2 failed\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
