// The CLI's EPT and host flags: --ept, --thp, --thp-defrag, --host-memory, --host-clock,
// --khugepaged-*, --tlb, their errors, the EPT/host/khugepaged/TLB lines of the summary and
// the `memory` object of --json (in-process: no spawn per case).
import test from 'ava';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliInProcess } from './fixtures/cli.ts';
import { defaultKnobs } from '../src/mm/config.ts';

const errors: Array<[string, string[], string]> = [
  ['bad --ept', ['--ept', 'yes'], "error: --ept: 'yes' is not on or off"],
  ['bad --thp', ['--thp', 'sometimes'], 'error: --thp: expected always|madvise|never, got "sometimes"'],
  ['--thp with EPT off', ['--ept', 'off', '--thp', 'never'], 'error: --thp: only with EPT on (ept: true; --ept on): the host THP model backs guest RAM only in EPT mode'],
  ['bad --host-memory', ['--host-memory', '3M'], 'error: --host-memory: expected a multiple of 2 MiB from 8 MiB to 1 TiB (8388608 to 1099511627776 bytes), got 3145728'],
  ['host beyond the largest arena', ['--host-memory', '2T'], 'error: --host-memory: expected a multiple of 2 MiB from 8 MiB to 1 TiB (8388608 to 1099511627776 bytes), got 2199023255552'],
  ['host too small', ['--host-memory', '4M'], 'error: --host-memory: expected a multiple of 2 MiB from 8 MiB to 1 TiB (8388608 to 1099511627776 bytes), got 4194304'],
  ['bad --host-kernel', ['--host-kernel', '5'], 'error: --host-kernel: expected 2.6.38|6.x, got "5"'],
  ['bad --thp-defrag', ['--thp-defrag', 'yes'], 'error: --thp-defrag: expected always|madvise|never, got "yes"'],
  ['bad --thp-size form', ['--thp-size', '64k'], "error: --thp-size: '64k' is not SIZE=MODE (e.g. 64kB=always)"],
  ['--thp-size on 2.6.38', ['--thp-size', '64kB=always'], "error: --thp-size: no such knob in Linux 2.6.38 (a 6.x knob: set host.kernel to '6.x')"],
  ['bad --host-clock', ['--host-clock', 'maybe'], "error: --host-clock: 'maybe' is not on or off"],
  ['bad --khugepaged-defrag', ['--khugepaged-defrag', 'on'], "error: --khugepaged-defrag: 'on' is not yes or no"],
  ['--khugepaged-pages-to-scan 0', ['--khugepaged-pages-to-scan', '0'], 'error: --khugepaged-pages-to-scan: expected an integer from 1 to 4294967295, got 0'],
  ['--khugepaged-max-ptes-none 512', ['--khugepaged-max-ptes-none', '512'], 'error: --khugepaged-max-ptes-none: expected an integer from 0 to 511, got 512'],
  ['bad --khugepaged-scan-sleep-millisecs', ['--khugepaged-scan-sleep-millisecs', '1.5'], "error: --khugepaged-scan-sleep-millisecs: '1.5' is not a non-negative integer"],
  ['bad --khugepaged-alloc-sleep-millisecs', ['--khugepaged-alloc-sleep-millisecs', '-1'], "error: --khugepaged-alloc-sleep-millisecs: '-1' is not a non-negative integer"],
  ['a khugepaged knob with EPT off', ['--ept', 'off', '--khugepaged-pages-to-scan', '8'], 'error: --khugepaged-pages-to-scan: only with EPT on (ept: true; --ept on): the host THP model backs guest RAM only in EPT mode'],
  ['--host-clock with EPT off', ['--host-clock', 'off', '--ept', 'off'], 'error: --host-clock: only with EPT on (ept: true; --ept on): the host THP model backs guest RAM only in EPT mode'],
  ['--gpa on run', ['--gpa', '0-2M'], 'error: --gpa belongs to ept-dump (hugevisor ept-dump <guest> --gpa START-END)'],
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
  t.is(r.stderr, 'error: --tlb: tlb.dtlb4k entries is not a multiple of ways\n');
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ l3: { entries: 1, ways: 1 } }));
  const u = await cliInProcess(['run', 'hello', '--tlb', unknown]);
  t.is(u.stderr, 'error: --tlb: unknown key "l3" (known: itlb4k, itlb2m, itlb1g, dtlb4k, dtlb2m, dtlb1g, stlb, stlb1g, pwcPml4e, pwcPdpte, pwcPde, nested)\n');
});

test('--thp never: the summary shows 4 KiB EPT leaves, no THP, and the walk figures; --ept off says native', async (t) => {
  const r = await cliInProcess(['run', 'hello', '--thp', 'never']);
  t.is(r.code, 0);
  t.is(r.stdout, 'Hello from a hugevisor guest!\n');
  t.regex(r.stderr, /^exits: +io 31, ept_violation (\d+)$/m);
  const v = /ept_violation (\d+)/.exec(r.stderr)![1];
  t.regex(r.stderr, new RegExp(`^ept: +ept_violations ${v}, pages_4k ${v}, pages_2m 0; mmu_notifier_invalidate 0, mmu_zapped_leaves 0, mmu_notifier_retry 0$`, 'm'));
  t.regex(r.stderr, /^host thp: +thp_fault_alloc 0, thp_fault_fallback 0, thp_collapse_alloc 0, thp_split 0, nr_anon_transparent_hugepages 0 \(AnonHugePages 0 kB\)$/m);
  // A 6.x host has no thp_split: its summary names the PMD split, the folio split and the deferred split queue.
  const m = await cliInProcess(['run', 'hello', '--thp', 'never', '--host-kernel', '6.x']);
  t.is(m.code, 0);
  t.regex(
    m.stderr,
    /^host thp: +thp_fault_alloc 0, thp_fault_fallback 0, thp_collapse_alloc 0, thp_split_pmd 0, thp_split_page 0, thp_deferred_split_page 0, nr_anon_transparent_hugepages 0 \(AnonHugePages 0 kB\)$/m,
  );
  t.regex(r.stderr, /^host mm: +pgfault \d+, pgmajfault 0, pswpin 0, pswpout 0$/m);
  t.regex(r.stderr, /^khugepaged: +full_scans 0, pages_collapsed 0; host clock \d+\.\d{3} ms, following the guest$/m);
  t.regex(r.stderr, /^tlb misses: +L1 itlb \d+ \(4K \d+, 2M 0, 1G 0\), L1 dtlb \d+ \(4K \d+, 2M 0, 1G 0\), stlb \d+ \(4K \d+, 2M 0, 1G 0\)$/m);
  t.regex(r.stderr, /^page walks: +\d+ walks, \d+\.\d\d refs\/walk = \d+\.\d\d guest \+ \d+\.\d\d ept \(\d+ \+ \d+ refs\)$/m);
  t.regex(r.stderr, /^walk caches: +pwc hits pml4e \d+, pdpte \d+, pde \d+; nested tlb hits \d+$/m);
  const stopped = await cliInProcess(['run', 'hello', '--host-clock', 'off']);
  t.regex(stopped.stderr, /^khugepaged: +full_scans 0, pages_collapsed 0; host clock 0\.000 ms, stopped$/m);
  const off = await cliInProcess(['run', 'hello', '--ept', 'off']);
  t.regex(off.stderr, /^ept: +off \(native translation: one-dimensional walks\)$/m);
  t.notRegex(off.stderr, /^(host thp|host mm|khugepaged):/m);
});

test('--help lists every run flag docs/cli.md documents', async (t) => {
  const help = (await cliInProcess(['--help'])).stdout;
  const doc = readFileSync('docs/cli.md', 'utf8');
  const flags = ['--memory', '--guest-pages', '--arg', '--cmdline', '--max-instructions', '--timeout', '--strict', '--cost', '--ept', '--host-kernel', '--thp', '--thp-defrag', '--thp-size',
    '--host-memory', '--host-clock', '--khugepaged-pages-to-scan', '--khugepaged-scan-sleep-millisecs', '--khugepaged-alloc-sleep-millisecs',
    '--khugepaged-max-ptes-none', '--khugepaged-defrag', '--tlb', '--gpa', '--json', '--debug'];
  for (const f of flags) {
    t.regex(help, new RegExp(`^\\s+${f}\\b`, 'm'), `--help lists ${f}`);
    t.true(doc.includes('`' + f), `docs/cli.md documents ${f}`);
  }
});

test('--json carries the memory report: EPT counters, host vmstat and the walk figures', async (t) => {
  const r = await cliInProcess(['run', 'hello', '--json', '--thp', 'always', '--host-memory', '128M', '--tlb', 'none']);
  t.is(r.code, 0);
  const j = JSON.parse(r.stdout);
  t.is(j.config.ept, true, '--thp alone implies EPT mode');
  // The effective configuration: every default written out, never null for a default.
  t.deepEqual(j.config.host, {
    memory: 128 * 1024 * 1024,
    kernel: '2.6.38',
    thp: { enabled: 'always', defrag: 'always', khugepaged: { defrag: true, pages_to_scan: 4096, scan_sleep_millisecs: 10000, alloc_sleep_millisecs: 60000, max_ptes_none: 511 } },
    swap: { bytes: 0, path: null, type: 'file' },
    clock: true,
    debugChecks: false,
  });
  t.is(j.memory.mode, 'ept');
  const six = JSON.parse((await cliInProcess(['run', 'hello', '--json', '--host-kernel', '6.x', '--host-memory', '128M'])).stdout);
  t.deepEqual(six.config.host.kernel, '6.x');
  // every 6.x knob written out with its default (test/mm-knobs.test.ts pins the values)
  t.deepEqual(six.config.host.thp, defaultKnobs('6.x'));
  t.is(j.memory.mthp, null, '2.6.38 has no per-size THP counters');
  t.deepEqual(Object.keys(six.memory.mthp), ['16kB', '32kB', '64kB', '128kB', '256kB', '512kB', '1024kB', '2048kB']);
  t.is(six.memory.mthp['2048kB'].anon_fault_alloc, six.memory.host.thp_fault_alloc, 'the PMD size counts what thp_fault_alloc counts');
  for (const size of ['16kB', '32kB', '64kB', '128kB', '256kB', '512kB', '1024kB']) t.is(six.memory.mthp[size].anon_fault_alloc, 0, `${size} is never by default`);
  const m64 = JSON.parse((await cliInProcess(['run', 'hello', '--json', '--host-kernel', '6.x', '--host-memory', '128M', '--thp-size', '64kB=always', '--thp-size', '2048kB=never'])).stdout);
  t.like(m64.config.host.thp.sizes, { '64kB': 'always', '2048kB': 'never' });
  t.true(m64.memory.mthp['64kB'].anon_fault_alloc >= 1);
  t.is(m64.memory.host.thp_fault_alloc, 0);
  t.is(m64.memory.ept.pages_2m, 0, 'a PTE-mapped mTHP gives 4 KiB EPT leaves');
  t.like(j.memory.ept, { ept_violations: 1, pf_fixed: 1, pages_4k: 0, pages_2m: 1, mmio_exits: 0 });
  t.is(j.memory.host.thp_fault_alloc, 1);
  t.is(j.memory.host.nr_anon_transparent_hugepages, 1);
  // With every TLB and cache off each access walks: 4 KiB guest pages over 2 MiB EPT leaves
  // cost 19 references per complete walk (docs/mmu-model.md); the one walk cut short by the EPT
  // violation reads fewer.
  const t2 = j.memory.tlb;
  t.is(t2.walk_refs, t2.walk_refs_guest + t2.walk_refs_ept);
  t.true(t2.walks > 0);
  t.true(t2.walk_refs >= 19 * (t2.walks - 1) && t2.walk_refs < 19 * t2.walks);
  t.is(j.exits.ept_violation, 1);
  // Every figure of the summary's walk lines has its inputs here.
  const c = j.counters;
  t.deepEqual(t2.misses.dtlb, { '4k': c.dtlb_4k_misses, '2m': c.dtlb_2m_misses, '1g': c.dtlb_1g_misses, total: t2.l1_misses.dtlb });
  t.deepEqual(t2.pwc_hits, { pml4e: 0, pdpte: 0, pde: 0 }, '--tlb none turns the paging-structure caches off');
  t.is(t2.nested_tlb_hits, 0);
  t.like(j.memory.meminfo, { AnonHugePages: 2048, MemTotal: 128 * 1024 });
  t.like(j.memory.clock, { follows_guest: true, host_ms: j.simulated.seconds * 1000 });
  const n = await cliInProcess(['run', 'hello', '--json', '--ept', 'off']);
  const jn = JSON.parse(n.stdout);
  t.deepEqual([jn.memory.mode, jn.memory.ept, jn.memory.host, jn.memory.meminfo, jn.memory.clock], ['native', null, null, null, null]);
  t.is(jn.memory.tlb.walks, jn.counters.walks);
});
