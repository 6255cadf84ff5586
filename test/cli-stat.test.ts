// `hugevisor stat`: the counter report on stderr with the console on stdout, -I interval
// rows (text, --csv, --json), ROI blocks, exit codes as run's, usage errors, and the live
// status line driven by an injected terminal and clock. The demand-paging interval series
// is exact: the model is deterministic, so the rows are the same on every machine.
import test from 'ava';
import { main } from '../src/cli/main.ts';
import { ERASE_LINE, STATUS_REDRAW_MS, StatusLine } from '../src/cli/status.ts';
import { cli } from './fixtures/cli.ts';

/** Several ms of simulated time: 16,384 guest #PF while the 64 MiB region fills, none while it is verified. */
const FILL = ['demand-paging', '--memory', '128M', '--arg', '64M', '--thp', 'never'];
const n = (x: number): string => x.toLocaleString('en-US');
const perM = (x: number): string => n(Number(x.toFixed(1))).replace(/^(\d[\d,]*)$/, '$1.0');

function parseCsv(text: string): Record<string, number>[] {
  const [head, ...rows] = text.trimEnd().split('\n');
  const cols = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i]!, Number(v)])));
}

test('stat -I 1ms demand-paging: the guest #PF rate falls as the region fills (exact --csv rows)', async (t) => {
  const r = await cli(['stat', '-I', '1ms', ...FILL, '--csv']);
  t.is(r.code, 0);
  // --csv: stdout is the CSV; the guest's console moves to stderr.
  t.is(r.stderr, 'demand-paging: region 0x0000008000000000 size 67108864 page 4096\npage faults handled: 16384\npattern verified: 1048576 words\n');
  t.true(r.stdout.startsWith('index,sim_ns,instructions_total,instructions,guest_pf,guest_pf_per_m_instr,guest_pf_per_sim_s,ept_violations,'));
  const rows = parseCsv(r.stdout);
  t.is(rows.length, 76);
  t.is(rows.reduce((s, x) => s + x.guest_pf!, 0), 16384);
  t.is(rows.reduce((s, x) => s + x.instructions!, 0), 16682151);
  t.like(rows[0], { index: 0, instructions: 105478, guest_pf: 207, host_fault_4k: 214 });
  t.is(rows[0]!.guest_pf_per_m_instr, 207 / (105478 / 1e6));
  // Every millisecond of the fill takes ~1,975 faults per million instructions; the
  // interval where the fill ends drops to 49; the verify pass takes none.
  const rate = rows.map((x) => x.guest_pf_per_m_instr!);
  t.true(rate.slice(0, 73).every((x) => x > 1960 && x < 1977));
  t.like(rows[73], { index: 73, instructions: 4301576, guest_pf: 212 });
  t.deepEqual(rows.slice(74).map((x) => [x.index, x.instructions, x.guest_pf, x.guest_pf_per_sim_s]), [
    [75, 4194304, 0, 0],
    [77, 953, 0, 0],
  ]);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  t.true(mean(rate.slice(0, 10)) > 1900 && mean(rate.slice(-3)) < 20, 'the first intervals fault far more often than the last');
  t.true(rows.every((x, i) => i === 0 || x.sim_ns! > rows[i - 1]!.sim_ns!));
});

test('stat --json is the run result plus its interval rows, which add up to the run', async (t) => {
  const r = await cli(['stat', '-I', '10ms', ...FILL, '--json']);
  t.is(r.code, 0);
  t.is(r.stderr, '');
  t.is(r.stdout.trim().split('\n').length, 1);
  const j = JSON.parse(r.stdout);
  t.is(j.schema, 'hugevisor.run/4');
  t.is(j.exitCode, 0);
  t.is(j.console, 'demand-paging: region 0x0000008000000000 size 67108864 page 4096\npage faults handled: 16384\npattern verified: 1048576 words\n');
  t.deepEqual(j.interval, { simulatedNs: 10_000_000 });
  t.is(j.intervals.length, 8);
  t.deepEqual(j.intervals.map((s: { rates: { events: { guest_pf: { total: number } } } }) => s.rates.events.guest_pf.total), [2203, 2218, 2217, 2217, 2217, 2218, 2217, 877]);
  for (const key of ['instructions', 'exc_pf', 'walks', 'exits_ept_violation']) {
    t.is(j.intervals.reduce((s: number, x: { counters: Record<string, number> }) => s + x.counters[key]!, 0), j.counters[key], key);
  }
  t.is(j.intervals.at(-1).simulatedNs, j.simulated.seconds * 1e9);
  const plain = JSON.parse((await cli(['stat', ...FILL, '--json'])).stdout);
  t.deepEqual(plain.intervals, []);
  t.is(plain.interval, null);
  t.deepEqual(plain.counters, j.counters, 'sampling does not change the run');
});

test('stat prints the console on stdout and the counter report on stderr, with one block per ROI', async (t) => {
  const r = await cli(['stat', 'demand-paging']);
  const j = JSON.parse((await cli(['run', 'demand-paging', '--json'])).stdout);
  t.is(r.code, 0);
  t.is(r.stdout, j.console);
  const lines = r.stderr.split('\n');
  t.is(lines[0], " Performance counter stats for 'demand-paging' (simulated; stop: exit, status 0):");
  const ev = (name: string) => {
    const e = j.rates.events[name];
    return `${n(e.total).padStart(18)}  ${name.padEnd(20)}  # ${perM(e.per_million_instructions).padStart(11)} /M instr     # `;
  };
  const at = (prefix: string) => lines.filter((l) => l.startsWith(prefix));
  t.is(at(ev('guest_pf')).length, 1, ev('guest_pf'));
  t.is(at(ev('ept_violations')).length, 1);
  t.is(at(`${n(j.instructions).padStart(18)}  instructions          #`).length, 1);
  t.is(at(`${n(j.memory.ept.pages_4k).padStart(18)}  ept.pages_4k          #`).length, 1);
  t.is(at(`${n(j.counters.exits_ept_violation).padStart(18)}  exits.ept_violation   #`).length, 1);
  const dtlb = j.rates.tlb.dtlb;
  t.is(at(`${n(dtlb.misses.total).padStart(18)}  dtlb.misses           # ${dtlb.mpki.total.toFixed(2).padStart(11)} MPKI         # ${(dtlb.miss_ratio * 100).toFixed(2).padStart(10)}% of lookups`).length, 1);
  const w = j.rates.walks;
  t.is(at(`${n(w.walks).padStart(18)}  page_walks            # ${w.refs_per_walk.toFixed(2).padStart(11)} refs/walk    # ${w.guest_refs_per_walk.toFixed(2).padStart(11)} guest + ${w.ept_refs_per_walk.toFixed(2)} ept`).length, 1);
  // The run block, then ROI 0's, each with the eleven events.
  t.is(at(ev('guest_pf').slice(0, 40)).length, 2);
  t.regex(r.stderr, new RegExp(`^ ROI 0 \\(${n(j.roi[0].counters.instructions)} instructions, [\\d.]+ ms simulated\\):$`, 'm'));
  t.true(lines.includes(`${j.simulated.seconds.toFixed(9).padStart(18)}  seconds simulated (${n(j.simulated.cycles)} cycles at 3.00 GHz)`));
  t.regex(r.stderr, /^ +\d+\.\d{9} {2}seconds wall \(\d+\.\d\d guest MIPS\)\n\n$/m);
});

test('stat -I prints a header and one aligned row per interval on stderr as the guest runs', async (t) => {
  const r = await cli(['stat', '-I', '10ms', ...FILL]);
  t.is(r.code, 0);
  t.is(r.stdout, 'demand-paging: region 0x0000008000000000 size 67108864 page 4096\npage faults handled: 16384\npattern verified: 1048576 words\n');
  const lines = r.stderr.split('\n');
  t.is(lines[0], '#   time(ms)   instructions  guest_pf  pf/M instr  pf/sim-s  ept_viol  host_4k  host_2m  vm_exits dtlb MPKI stlb MPKI refs/walk');
  const rows = lines.slice(1, 9);
  t.true(rows.every((l) => l.length === lines[0]!.length));
  t.deepEqual(rows.map((l) => l.trim().split(/\s+/)[2]), ['2,203', '2,218', '2,217', '2,217', '2,217', '2,218', '2,217', '877']);
  t.is(rows[0]!.slice(0, 12).trim(), '10.003');
  t.is(lines[9], '');
  t.is(lines[10], " Performance counter stats for 'demand-paging' (simulated; stop: exit, status 0):");
});

test('stat -I in instructions samples on the budget grid of --max-instructions', async (t) => {
  const r = await cli(['stat', '-I', '1Minsn', 'demand-paging', '--csv']);
  const rows = parseCsv(r.stdout);
  t.is(r.code, 0);
  // A row per 1,000,000 budget units: the instructions retired, plus one per #PF delivered
  // and per REP iteration beyond the first, so a row retires at most 1,000,000 instructions.
  t.deepEqual(rows.map((x) => [x.instructions_total, x.guest_pf]), [
    [994460, 1963],
    [1990448, 1968],
    [2990283, 165],
    [3990283, 0],
    [4171738, 0],
  ]);
  t.is(rows[3]!.instructions, 1_000_000, 'no fault, no REP: a row is exactly 1,000,000 instructions');
});

test('stat --csv without -I prints the report lines as CSV', async (t) => {
  const r = await cli(['stat', 'hello', '--csv']);
  t.is(r.code, 0);
  t.is(r.stderr, 'Hello from a hugevisor guest!\n');
  const lines = r.stdout.trimEnd().split('\n');
  t.is(lines[0], 'scope,counter,value,metric1,metric1_unit,metric2,metric2_unit,metric3,metric3_unit');
  t.is(lines[3], 'run,guest_pf,0,0,per_million_instructions,0,per_sim_second,,');
  t.true(lines.includes('run,ept.pages_2m,1,2048,kib_mapped,1,ratio_of_EPT-mapped_memory,,'));
});

test('stat gives the exit codes of run and still reports: a limit, a crash, ROIs', async (t) => {
  const limit = await cli(['stat', 'demand-paging', '--max-instructions', '1000']);
  t.is(limit.code, 124);
  t.regex(limit.stderr, /^ Performance counter stats for 'demand-paging' \(simulated; stop: max-instructions\):$/m);
  // 1,000 budget units: instructions, and each REP iteration and exception delivery.
  t.regex(limit.stderr, /^ {15}948 {2}instructions /m);
  const crash = await cli(['stat', 'ud-no-idt']);
  t.is(crash.code, 125);
  t.regex(crash.stderr, /^error: triple fault: #UD\(6\)/m);
  t.regex(crash.stderr, /stop: triple-fault\):$/m);
  const roi = await cli(['stat', 'test/fixtures/roi.elf']);
  t.is(roi.code, 44);
  t.regex(roi.stderr, /^ ROI 0 \(3,003 instructions, [\d.]+ µs simulated\):$/m);
  t.regex(roi.stderr, /^ {13}3,003 {2}instructions /m);
});

test('stat usage errors are one line naming the flag', async (t) => {
  const cases: [string[], string][] = [
    [['stat', 'hello', '-I', '5x'], "error: -I: '5x' is not an interval (simulated time: 250us, 1ms, 10ms, 1s; instructions: 100000insn, 500kinsn, 1Minsn)"],
    [['stat', 'hello', '-I', '500ns'], "error: -I: '500ns' is not an interval of at least 1000 ns (simulated time: 250us, 1ms, 10ms, 1s; instructions: 100000insn, 500kinsn, 1Minsn)"],
    [['stat', 'hello', '--interval', '10insn'], "error: --interval: '10insn' is not an interval of at least 1000 instructions (simulated time: 250us, 1ms, 10ms, 1s; instructions: 100000insn, 500kinsn, 1Minsn)"],
    [['stat', 'hello', '--json', '--csv'], 'error: stat prints --json or --csv, not both'],
    [['run', 'hello', '-I', '1ms'], 'error: -I belongs to stat (hugevisor stat <guest> -I 1ms)'],
    [['run', 'hello', '--quiet'], 'error: --quiet belongs to stat (hugevisor stat <guest> --quiet)'],
    [['stat'], 'error: stat needs a guest: an ELF file or a sample name (see: hugevisor list)'],
    [['stat', 'hello', '--thp', 'sometimes'], 'error: --thp: expected always|madvise|never, got "sometimes"'],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stdout, '');
    t.is(r.stderr, message + '\n', args.join(' '));
  }
});

test('the status line redraws at most every STATUS_REDRAW_MS of wall time and erases itself', (t) => {
  const written: string[] = [];
  let now = 1000;
  const s = new StatusLine((x) => written.push(x), () => now, true);
  const p = { instructions: 12_345_678, simulatedNs: 4_120_000, guestPf: 16384 };
  s.update(p);
  now += STATUS_REDRAW_MS - 1;
  s.update(p);
  s.clear();
  s.update(p); // erased, but the last draw is too recent: nothing
  now += 1;
  s.update(p);
  s.clear();
  s.clear();
  t.deepEqual(written, [
    `${ERASE_LINE}stat: 12,345,678 instr  4.12 ms simulated  0.00 MIPS  16,384 guest #PF`,
    ERASE_LINE,
    `${ERASE_LINE}stat: 12,345,678 instr  4.12 ms simulated  49.38 MIPS  16,384 guest #PF`,
    ERASE_LINE,
  ]);
  const off: string[] = [];
  const quiet = new StatusLine((x) => off.push(x), () => 0, false);
  quiet.update(p);
  quiet.clear();
  t.deepEqual(off, []);
});

/** main() with stderr as a terminal or not, and a wall clock that advances 300 ms per reading. */
async function statInTerminal(args: string[], errIsTTY: boolean): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  let clock = 0;
  const dec = (d: string | Uint8Array) => (typeof d === 'string' ? d : Buffer.from(d).toString('utf8'));
  const code = await main(args, { out: (d) => void (out += dec(d)), err: (d) => void (err += dec(d)), errIsTTY }, { now: () => (clock += 300) });
  return { code, out, err };
}

test('in a terminal, stat shows a live status line on stderr and clears it before the report; --quiet and pipes get none', async (t) => {
  const tty = await statInTerminal(['stat', 'demand-paging'], true);
  const pipe = await statInTerminal(['stat', 'demand-paging'], false);
  const quiet = await statInTerminal(['stat', 'demand-paging', '--quiet'], true);
  t.is(tty.code, 0);
  t.is(tty.out, pipe.out, 'the console is the same');
  const status = tty.err.split(ERASE_LINE).filter((x) => x.startsWith('stat: '));
  // demand-paging uses 4.18 M budget units: a status sample per 1 Mi and one at the end, each
  // drawn (the clock moves 300 ms per reading, more than the redraw interval).
  t.is(status.length, 4);
  t.regex(status[0]!, /^stat: [\d,]+ instr {2}[\d.]+ ms simulated {2}[\d.]+ MIPS {2}[\d,]+ guest #PF$/);
  t.regex(status.at(-1)!, /^stat: [\d,]+ instr {2}[\d.]+ ms simulated {2}[\d.]+ MIPS {2}4,096 guest #PF$/);
  // Erased before the report: what follows the last erase is the report, exactly as without a terminal.
  const report = (s: string) => s.slice(s.indexOf(' Performance counter stats')).replace(/^.*seconds wall.*$/m, '');
  t.true(tty.err.includes(ERASE_LINE + ' Performance counter stats'));
  t.is(report(tty.err), report(pipe.err));
  t.false(pipe.err.includes(ERASE_LINE));
  t.false(quiet.err.includes(ERASE_LINE));
  t.is(report(quiet.err), report(pipe.err));
});
