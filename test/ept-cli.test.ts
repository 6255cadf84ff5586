// The CLI's EPT flags: --ept, --thp, --host-memory, --tlb, their errors, and the EPT/host/TLB
// lines of the summary and the `memory` object of --json (in-process: no spawn per case).
import test from 'ava';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliInProcess } from './fixtures/cli.ts';

const errors: Array<[string, string[], string]> = [
  ['bad --ept', ['--ept', 'yes'], "error: --ept: 'yes' is not one of on, off"],
  ['bad --thp', ['--thp', 'sometimes'], "error: --thp: 'sometimes' is not one of always, madvise, never"],
  ['--thp with EPT off', ['--ept', 'off', '--thp', 'never'], 'error: --thp needs --ept on (the host THP model backs guest RAM only in EPT mode)'],
  ['bad --host-memory', ['--host-memory', '3M'], 'error: --host-memory: 3145728 bytes is not a positive multiple of 2M'],
  ['host beyond the largest arena', ['--host-memory', '2T'], 'error: host memory of 2199023255552 bytes exceeds the 1099511627776-byte (1 TiB) maximum'],
  ['host too small', ['--host-memory', '4M'], 'error: host memory must be at least 8 MiB, got 4194304'],
  ['unknown --tlb', ['--tlb', 'huge'], "error: --tlb: 'huge' is neither a preset (default, none) nor a readable JSON file"],
];
for (const [name, args, message] of errors) {
  test(`an EPT flag error is one line and exit code 2: ${name}`, async (t) => {
    const r = await cliInProcess(['run', 'hello', ...args]);
    t.is(r.code, 2);
    t.is(r.stderr, message + '\n');
    t.is(r.stdout, '');
  });
}

test('a TLB file with a geometry the native MMU refuses is a config error naming the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ept-cli-'));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ dtlb4k: { entries: 64, ways: 3 } }));
  const r = await cliInProcess(['run', 'hello', '--ept', 'on', '--tlb', bad]);
  t.is(r.code, 2);
  t.regex(r.stderr, /^error: tlb: .*dtlb4k.*\n$/);
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ l3: { entries: 1, ways: 1 } }));
  const u = await cliInProcess(['run', 'hello', '--tlb', unknown]);
  t.is(u.stderr, "error: tlb: unknown structure 'l3' (known: itlb4k, itlb2m, itlb1g, dtlb4k, dtlb2m, dtlb1g, stlb, stlb1g, pwcPml4e, pwcPdpte, pwcPde, nested)\n");
});

test('--ept on adds the EPT, host THP and TLB lines to the summary', async (t) => {
  const r = await cliInProcess(['run', 'hello', '--ept', 'on', '--thp', 'never']);
  t.is(r.code, 0);
  t.is(r.stdout, 'Hello from a hugevisor guest!\n');
  t.regex(r.stderr, /^exits: +io 31, ept_violation (\d+)$/m);
  const v = /ept_violation (\d+)/.exec(r.stderr)![1];
  t.regex(r.stderr, new RegExp(`^ept: +${v} violations, ${v} 4K \\+ 0 2M leaves mapped, 0 invalidations, 0 zapped, 0 retries$`, 'm'));
  t.regex(r.stderr, /^host thp: +thp_fault_alloc 0, thp_fault_fallback 0, thp_split 0, thp_collapse_alloc 0, pgfault \d+$/m);
  t.regex(r.stderr, /^tlb misses: +L1 itlb \d+, L1 dtlb \d+, stlb \d+; \d+ walks, \d+\.\d\d refs\/walk \(\d+ guest \+ \d+ ept\)$/m);
  const off = await cliInProcess(['run', 'hello']);
  t.notRegex(off.stderr, /^ept:/m, 'native mode keeps the summary as it was');
});

test('--json carries the memory report: EPT counters, host vmstat and the walk figures', async (t) => {
  const r = await cliInProcess(['run', 'hello', '--json', '--thp', 'always', '--host-memory', '128M', '--tlb', 'none']);
  t.is(r.code, 0);
  const j = JSON.parse(r.stdout);
  t.is(j.config.ept, true, '--thp alone implies EPT mode');
  t.deepEqual(j.config.host, { memory: 128 * 1024 * 1024, thp: 'always' });
  t.is(j.memory.mode, 'ept');
  t.like(j.memory.ept, { ept_violations: 1, pf_fixed: 1, pages_4k: 0, pages_2m: 1, mmio_exits: 0 });
  t.is(j.memory.host.thp_fault_alloc, 1);
  t.is(j.memory.host.nr_anon_transparent_hugepages, 1);
  // With every TLB and cache off each access walks: 4 KiB guest pages over 2 MiB EPT leaves
  // cost 19 references per complete walk (MMU-MODEL.md); the one walk cut short by the EPT
  // violation reads fewer.
  const t2 = j.memory.tlb;
  t.is(t2.walk_refs, t2.walk_refs_guest + t2.walk_refs_ept);
  t.true(t2.walks > 0);
  t.true(t2.walk_refs >= 19 * (t2.walks - 1) && t2.walk_refs < 19 * t2.walks);
  t.is(j.exits.ept_violation, 1);
  const n = await cliInProcess(['run', 'hello', '--json']);
  const jn = JSON.parse(n.stdout);
  t.deepEqual([jn.memory.mode, jn.memory.ept, jn.memory.host], ['native', null, null]);
  t.is(jn.memory.tlb.walks, jn.counters.walks);
});
