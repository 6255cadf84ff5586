// Every way a user can get the CLI wrong ends in exactly one line `error: ...` on stderr,
// nothing on stdout, exit code 2, and no stack trace unless --debug. The table runs through
// main() in-process (the same code as the binary, without 30 Node start-ups); the cases
// marked `spawn` also go through the real process to check the exit code and streams.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, mkdirSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, cliInProcess, root } from './fixtures/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hv-cli-'));
// Malformed images come from the committed two-segment fixture (stable across guest changes).
const good = readFileSync(new URL('./fixtures/two-segments.elf', import.meta.url));
const truncated = join(tmp, 'truncated.elf');
writeFileSync(truncated, good.subarray(0, 0x2002));
// Files that must be refused before they are read whole: a sparse file above the image cap
// (no disk blocks), a sparse file below it without the ELF magic, a FIFO with no writer.
const huge = join(tmp, 'huge.elf');
writeFileSync(huge, '');
truncateSync(huge, 300 * 1024 * 1024);
const sparse = join(tmp, 'sparse.elf');
writeFileSync(sparse, '');
truncateSync(sparse, 100 * 1024 * 1024);
const fifo = join(tmp, 'fifo.elf');
execFileSync('mkfifo', [fifo]);
const aarch64 = join(tmp, 'arm.elf');
const arm = Buffer.from(good);
arm.writeUInt16LE(183, 18);
writeFileSync(aarch64, arm);

const cases: [string, string[], string, 'spawn'?][] = [
  ['no command', [], "error: missing command (try: hugevisor --help)", 'spawn'],
  ['unknown command', ['frobnicate'], "error: unknown command 'frobnicate' (commands: run, stat, ept-dump, list, sweep, worker, results, report; try: hugevisor --help)"],
  ['unknown top-level option', ['--frob'], "error: unknown option '--frob' (try: hugevisor --help)"],
  ['run without a guest', ['run'], 'error: run needs a guest: an ELF file or a sample name (see: hugevisor list)'],
  ['two guests', ['run', 'hello', 'other'], "error: run takes one guest, got 'hello' and 'other'"],
  ['unknown run option', ['run', 'hello', '--frob'], "error: unknown option '--frob' (try: hugevisor --help)", 'spawn'],
  ['missing value', ['run', 'hello', '--memory'], 'error: --memory needs a value'],
  ['bad size', ['run', 'hello', '--memory', '12x'], "error: --memory: '12x' is not a size (examples: 4096, 0x1000, 64M, 1G)", 'spawn'],
  ['memory not page-multiple', ['run', 'hello', '--memory', '4097'], 'error: --memory: expected a multiple of 4 KiB from 4 KiB to 1 TiB (4096 to 1099511627776 bytes), got 4097'],
  ['bad page size', ['run', 'hello', '--guest-pages', '8k'], 'error: --guest-pages: expected 4k|2m|1g, got "8k"'],
  ['negative arg', ['run', 'hello', '--arg', '-1'], "error: --arg: '-1' is not a u64 (decimal, 0x hex, or a size like 64M)"],
  ['arg over 64 bits', ['run', 'hello', '--arg', '0x10000000000000000'], "error: --arg: '0x10000000000000000' does not fit in 64 bits"],
  ['17 args', ['run', 'hello', ...Array.from({ length: 17 }, () => ['--arg', '1']).flat()], 'error: --arg: expected at most 16 guest args (boot info holds 16), got an array'],
  ['long cmdline', ['run', 'hello', '--cmdline', 'x'.repeat(3001)], 'error: command line too long: 3001 bytes (at most 3000)'],
  ['bad max-instructions', ['run', 'hello', '--max-instructions', '1.5'], "error: --max-instructions: '1.5' is not a non-negative integer"],
  ['bad timeout', ['run', 'hello', '--timeout', '0'], "error: --timeout: '0' is not a positive number of seconds"],
  ['cost without a value', ['run', 'hello', '--cost', 'walk_ref'], "error: --cost: 'walk_ref' is not ITEM=CYCLES (e.g. walk_ref=40, clock_hz=2.5e9)"],
  ['unknown cost item', ['run', 'hello', '--cost', 'walk_refs=3'], /^error: --cost: unknown key "walk_refs" \(known: clock_hz, instruction, .*swap_io_page\)$/.source],
  ['nx huge pages on the 2.6.38 KVM', ['run', 'hello', '--nx-huge-pages', 'on'], 'error: --nx-huge-pages: on needs host.kernel 6.x (--host-kernel 6.x): the mitigation came with Linux 5.4, the 2.6.38 KVM maps executable 2 MiB leaves'],
  ['bad eager page split', ['run', 'hello', '--eager-page-split', 'yes'], 'error: --eager-page-split: expected off|on, got "yes"'],
  ['value on a switch', ['run', 'hello', '--json=1'], 'error: --json takes no value'],
  ['unknown sample', ['run', 'no-such-guest'], /^error: unknown sample 'no-such-guest' \(samples: .*hello.*; or give a path to an ELF file\)$/.source, 'spawn'],
  ['missing file', ['run', 'nowhere/guest.elf'], "error: cannot read 'nowhere/guest.elf': no such file"],
  ['directory', ['run', tmp + '/'], `error: cannot read '${tmp}/': is a directory`],
  ['not an ELF', ['run', 'package.json/'], "error: cannot read 'package.json/': no such file"],
  ['text file', ['run', './README.md'], 'error: ./README.md: bad magic: not an ELF file'],
  ['a character device', ['run', '/dev/zero'], "error: cannot read '/dev/zero': not a regular file (a character device)"],
  ['a FIFO', ['run', fifo], `error: cannot read '${fifo}': not a regular file (a FIFO)`],
  ['an image above the cap', ['run', huge], `error: cannot read '${huge}': 314572800 bytes; a guest image may be at most 268435456 bytes (256 MiB)`],
  ['a large file without the ELF magic', ['run', sparse], `error: ${sparse}: bad magic: not an ELF file`],
  ['truncated ELF', ['run', truncated], `error: ${truncated}: truncated segment data: segment 1 needs file bytes [0x2000, 0x2005) but the file has 8194`, 'spawn'],
  ['wrong machine', ['run', aarch64], `error: ${aarch64}: wrong ELF machine 183: only x86-64 (EM_X86_64 = 62) is supported`],
  ['memory below the image', ['run', 'test/fixtures/two-segments.elf', '--memory', '1M'], 'error: test/fixtures/two-segments.elf: segment 0 [0x100000, 0x100018) is outside guest memory [0, 0x100000)'],
  ['memory too small for tables and stack', ['run', 'test/fixtures/two-segments.elf', '--memory', '0x120000'], 'error: guest memory too small: 1179648 bytes (0x120000), but the image ends at 0x112008 and 4 boot page tables, the boot-info and GDT pages and the 64 KiB stack need memory up to 0x129000', 'spawn'],
  ['list with arguments', ['list', 'x'], "error: list takes no arguments, got 'x'"],
  ['sweep without a spec', ['sweep'], 'error: sweep needs a spec file (JSON or YAML)'],
  ['sweep of a missing spec', ['sweep', join(tmp, 'none.json')], `error: ${join(tmp, 'none.json')}: no such spec file`],
  ['sweep --jobs 0', ['sweep', 'x.json', '--jobs', '0'], "error: --jobs: '0' is not a number of threads from 1 to 1024"],
  ['sweep with a run flag', ['sweep', 'x.json', '--thp', 'never'], "error: unknown option '--thp' for sweep (try: hugevisor --help)"],
  ['sweep --queue not a URL', ['sweep', 'x.json', '--queue', 'localhost:6379'], "error: --queue: 'localhost:6379' is not a redis://HOST:PORT URL"],
  ['sweep --queue and --jobs', ['sweep', 'x.json', '--queue', 'redis://h:6379', '--jobs', '2'], 'error: sweep runs on --jobs threads or on --queue workers, not both'],
  ['worker without --queue', ['worker'], 'error: worker needs --queue redis://HOST:PORT'],
  ['worker --stall-seconds 0', ['worker', '--queue', 'redis://h:6379', '--stall-seconds', '0'], "error: --stall-seconds: '0' is not a number of seconds from 1 to 86400"],
  ['results of a missing database', ['results', join(tmp, 'nothing')], `error: ${join(tmp, 'nothing')}: no such results database`],
  ['results --csv --jsonl', ['results', 'x', '--csv', '--jsonl'], 'error: results prints --csv or --jsonl, not both'],
  ['report of a file that is not a database', ['report', 'test/fixtures/two-segments.elf'], '^error: test/fixtures/two-segments.elf: not a results database \\('],
];

process.chdir(root);
for (const [name, args, expected, spawn] of cases) {
  test(`a usage error is one line on stderr and exit code 2: ${name}${spawn ? ' (spawned)' : ''}`, async (t) => {
    const r = spawn ? await cli(args) : await cliInProcess(args);
    t.is(r.code, 2);
    t.is(r.stdout, '');
    const lines = r.stderr.split('\n');
    t.is(lines.length, 2, r.stderr);
    t.is(lines[1], '');
    if (expected.startsWith('^')) t.regex(lines[0], new RegExp(expected));
    else t.is(lines[0], expected);
  });
}

test('--debug adds the stack trace to an error', async (t) => {
  const r = await cli(['run', 'hello', '--memory', '12x', '--debug']);
  t.is(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  t.is(lines[0], "error: --memory: '12x' is not a size (examples: 4096, 0x1000, 64M, 1G)");
  t.regex(lines[1], /^ConfigError: /);
  t.true(lines.some((l) => /at parseSize .*flags\.ts/.test(l)));
});

test('HUGEVISOR_ADDON naming something other than a native module is one error line, never run as JavaScript', async (t) => {
  const r = await cli(['run', 'hello'], { HUGEVISOR_ADDON: join(root, 'package.json') });
  t.is(r.code, 2);
  t.is(r.stderr, `error: native addon ${join(root, 'package.json')} is not a native module (.node file)\n`);
  const notElf = join(tmp, 'fake.node');
  writeFileSync(notElf, 'module.exports = 1');
  const f = await cli(['run', 'hello'], { HUGEVISOR_ADDON: notElf });
  t.is(f.code, 2);
  t.regex(f.stderr, /^error: native addon .*fake\.node cannot be loaded: .*\n$/);
});

test('--help prints the usage on stdout and exits 0', async (t) => {
  for (const args of [['--help'], ['-h'], ['help'], ['run', 'hello', '--help']]) {
    const r = await cli(args);
    t.is(r.code, 0);
    t.is(r.stderr, '');
    t.true(r.stdout.startsWith('usage: hugevisor run <guest.elf | sample-name> [options]\n'));
    t.regex(r.stdout, /--guest-pages 4k\|2m\|1g/);
  }
});

test('list prints each built sample with the description from its source', async (t) => {
  const dir = join(tmp, 'guests');
  mkdirSync(dir);
  copyFileSync(new URL('../build/guests/hello.elf', import.meta.url), join(dir, 'hello.elf'));
  writeFileSync(join(dir, 'zz-custom.elf'), '');
  writeFileSync(join(dir, 'notes.txt'), '');
  const desc = /^#\s*hello:\s*(.*)$/.exec(readFileSync(new URL('../guests/hello.s', import.meta.url), 'utf8').split('\n')[0])![1].trim();
  const r = await cli(['list'], { HUGEVISOR_GUESTS: dir });
  t.is(r.code, 0);
  t.is(r.stdout, `hello      ${desc}\nzz-custom\n`);
  const none = await cli(['list'], { HUGEVISOR_GUESTS: join(tmp, 'missing') });
  t.is(none.code, 2);
  t.is(none.stderr, `error: no sample guests in ${join(tmp, 'missing')} (run \`npm run build:guests\`)\n`);
});
