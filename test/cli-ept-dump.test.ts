// `hugevisor ept-dump`: runs the guest like `run` (console and summary on stderr), then prints
// the EPT leaves of each --gpa range beside the host mapping of their HVA on stdout.
import test from 'ava';
import { cli, cliInProcess } from './fixtures/cli.ts';

const HEAD = 'GPA              size perm  PFN        | HVA              host PFN   host';

test('ept-dump of hello with host THP: one 2 MiB leaf over a huge host PMD with the same head frame', async (t) => {
  const r = await cli(['ept-dump', 'hello', '--gpa', '0-4M']);
  t.is(r.code, 0);
  t.regex(r.stderr, /^Hello from a hugevisor guest!\n--- hugevisor: hello ---\n/);
  t.regex(r.stderr, /^ept: +ept_violations 1, pages_4k 0, pages_2m 1;/m);
  const lines = r.stdout.split('\n');
  t.is(lines.length, 4);
  t.is(lines[0], 'EPT 0x0-0x400000: 0 4K + 1 2M leaves in range; VM: 0 4K + 1 2M leaves mapped, 3 tables');
  t.is(lines[1], HEAD);
  const m = /^0x0 +2M +rwx +(\d+) +\| 0x[0-9a-f]+ +(\d+) +huge\(head (\d+)\) rw$/.exec(lines[2]!);
  t.truthy(m, lines[2]);
  t.is(m![1], m![2]);
  t.is(m![1], m![3]);
  t.is(lines[3], '');
});

test('ept-dump with --thp never: 4 KiB leaves, each over the host PTE of its HVA; several ranges', async (t) => {
  const r = await cliInProcess(['ept-dump', 'hello', '--thp', 'never', '--gpa', '1M-0x102000', '--gpa', '0x200000-0x400000']);
  t.is(r.code, 0);
  const v = Number(/^exits: +io 31, ept_violation (\d+)$/m.exec(r.stderr)![1]);
  const [first, second] = r.stdout.trimEnd().split('\n\n');
  const a = first!.split('\n');
  t.is(a[0], `EPT 0x100000-0x102000: 2 4K + 0 2M leaves in range; VM: ${v} 4K + 0 2M leaves mapped, 4 tables`);
  t.is(a[1], HEAD);
  t.is(a.length, 4);
  for (const [i, line] of a.slice(2).entries()) {
    const m = new RegExp(`^0x${(0x100000 + i * 4096).toString(16)} +4K +rwx +(\\d+) +\\| 0x[0-9a-f]+ +(\\d+) +4K rw$`).exec(line);
    t.truthy(m, line);
    t.is(m![1], m![2]);
  }
  t.deepEqual(second!.split('\n'), [`EPT 0x200000-0x400000: 0 4K + 0 2M leaves in range; VM: ${v} 4K + 0 2M leaves mapped, 4 tables`, HEAD]);
});

test('ept-dump without --gpa covers all guest memory; its errors are one line and exit code 2', async (t) => {
  const r = await cliInProcess(['ept-dump', 'hello', '--memory', '8M']);
  t.is(r.code, 0);
  t.regex(r.stdout, /^EPT 0x0-0x800000: 0 4K \+ 1 2M leaves in range;/);
  const errors: [string[], string][] = [
    [['--gpa', '4M-2M'], "error: --gpa: '4M-2M' is not a range START-END with START < END (e.g. 0x800000-0xa00000, 8M-10M)"],
    [['--gpa', '2M'], "error: --gpa: '2M' is not a range START-END with START < END (e.g. 0x800000-0xa00000, 8M-10M)"],
    [['--json'], 'error: ept-dump prints text: --json belongs to run'],
    [['--ept', 'off'], 'error: ept-dump needs EPT: drop --ept off'],
  ];
  for (const [args, message] of errors) {
    const e = await cliInProcess(['ept-dump', 'hello', ...args]);
    t.deepEqual([e.code, e.stdout, e.stderr], [2, '', message + '\n'], args.join(' '));
  }
});
