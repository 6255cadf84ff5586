// `--trace FILE`: Chrome trace-event JSON on the simulated-time axis, from the run's time
// series and the API's result between intervals. The file parses, holds the event kinds
// (VM exits, guest #PF and EPT-violation counters, EPT violations with their mapping sizes,
// host tracks, ROI markers, the stop), its EPT-violation instants add up to the run's, and
// --trace-max-events bounds it (a ring buffer keeps the latest events).
import test from 'ava';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliInProcess } from './fixtures/cli.ts';

interface Ev {
  name: string;
  ph: string;
  ts?: number;
  s?: string;
  cat?: string;
  args: Record<string, number | string | null>;
}
interface Trace {
  traceEvents: Ev[];
  displayTimeUnit: string;
  otherData: { events: number; kept: number; dropped: number; maxEvents: number; samples: number };
}

const tmp = () => join(mkdtempSync(join(tmpdir(), 'hv-trace-')), 'trace.json');
const read = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Trace;
const kinds = (t: Trace) => new Set(t.traceEvents.map((e) => `${e.ph} ${e.name.replace(/ #\d+$/, '')}`));

test('run --trace: the event kinds, and EPT violations by mapping size that add up to the run', async (t) => {
  const f = tmp();
  const r = await cliInProcess(['run', 'demand-paging', '--memory', '64M', '--arg', '8M', '--thp', 'never', '--trace', f, '--json']);
  t.is(r.code, 0);
  const result = JSON.parse(r.stdout);
  const tr = read(f);
  t.is(tr.displayTimeUnit, 'ns');
  const k = kinds(tr);
  for (const kind of ['M process_name', 'M thread_name', 'C VM exits', 'C guest #PF', 'C EPT violations', 'C EPT leaves', 'i EPT violations', 'C host THP', 'C khugepaged', 'C swap', 'i stop: exit']) t.true(k.has(kind), kind);
  const ept = tr.traceEvents.filter((e) => e.ph === 'i' && e.name === 'EPT violations');
  t.is(ept.reduce((s, e) => s + Number(e.args.count), 0), result.memory.ept.ept_violations);
  t.is(ept.reduce((s, e) => s + Number(e.args.new_4k_leaves), 0), result.memory.ept.pages_4k, 'THP never: every violation maps 4 KiB');
  t.is(ept.reduce((s, e) => s + Number(e.args.new_2m_leaves), 0), 0);
  const pf = tr.traceEvents.filter((e) => e.ph === 'C' && e.name === 'guest #PF');
  t.true(pf.some((e) => Number(e.args.exc_pf) > 0));
  // Simulated-time axis: timestamps never go backwards and end at the run's simulated time.
  const ts = tr.traceEvents.filter((e) => e.ph !== 'M').map((e) => e.ts!);
  t.deepEqual(ts, [...ts].sort((a, b) => a - b));
  t.is(ts.at(-1), result.simulated.seconds * 1e6);
  t.is(tr.otherData.dropped, 0);
  t.is(tr.otherData.kept, tr.traceEvents.length - 3);
});

test('host THP always: the violations map 2 MiB; a guest with a ROI gets begin and end markers', async (t) => {
  const f = tmp();
  const r = await cliInProcess(['run', 'gups', '--arg', '16M', '--arg', '50000', '--thp', 'always', '--trace', f, '--json']);
  t.is(r.code, 0);
  const result = JSON.parse(r.stdout);
  const tr = read(f);
  const ept = tr.traceEvents.filter((e) => e.ph === 'i' && e.name === 'EPT violations');
  t.is(ept.reduce((s, e) => s + Number(e.args.new_2m_leaves), 0), result.memory.ept.pages_2m);
  t.true(result.memory.ept.pages_2m > 0);
  const roi = tr.traceEvents.filter((e) => e.cat === 'roi').map((e) => e.name);
  t.deepEqual(roi, ['ROI begin #0', 'ROI end #0']);
});

test('--trace-max-events bounds the file: the latest N events, the rest counted as dropped', async (t) => {
  const f = tmp();
  const r = await cliInProcess(['stat', 'demand-paging', '--memory', '64M', '--arg', '8M', '--thp', 'never', '-I', '50us', '--trace', f, '--trace-max-events', '5', '--csv']);
  t.is(r.code, 0);
  const tr = read(f);
  t.is(tr.traceEvents.length, 3 + 5);
  t.is(tr.otherData.maxEvents, 5);
  t.is(tr.otherData.kept, 5);
  t.true(tr.otherData.events > 5);
  t.is(tr.otherData.dropped, tr.otherData.events - 5);
  t.is(tr.traceEvents.at(-1)!.name, 'stop: exit', 'the ring keeps the latest events');
  t.regex(r.stderr, /trace: 5 events \(\d+ older ones dropped: --trace-max-events 5\) → /);
});

test('trace flag errors', async (t) => {
  for (const [args, msg] of [
    [['run', 'hello', '--trace-max-events', '10'], 'error: --trace-max-events needs --trace FILE'],
    [['run', 'hello', '--trace', 'x.json', '--trace-max-events', '0'], "error: --trace-max-events: '0' is not a number of events from 1 to 2000000"],
    [['ept-dump', 'hello', '--trace', 'x.json'], 'error: --trace belongs to run and stat (hugevisor run <guest> --trace FILE)'],
    [['stat', 'hello', '-I', '1ms', '--trace', 'x.json', '--trace-interval', '1ms'], 'error: --trace-interval and -I: give one (with -I the trace samples at -I)'],
  ] as const) {
    const r = await cliInProcess([...args]);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr.trim(), msg);
  }
});

test('host events: khugepaged passes as instants on the host thread and a counter track', async (t) => {
  const f = tmp();
  const r = await cliInProcess(['run', 'demand-paging', '--memory', '64M', '--arg', '16M', '--thp', 'always', '--khugepaged-scan-sleep-millisecs', '1', '--trace', f, '--json']);
  t.is(r.code, 0);
  const result = JSON.parse(r.stdout);
  const tr = read(f);
  const passes = tr.traceEvents.filter((e) => e.ph === 'i' && e.name === 'full_scans');
  t.true(passes.length > 0);
  t.true(passes.every((e) => e.cat === 'khugepaged'));
  // The run's passes, less any before the guest's first instruction (at boot, outside every interval).
  const n = passes.reduce((s, e) => s + Number(e.args.count), 0);
  t.true(n > 0 && n <= result.memory.host.full_scans);
  t.true(tr.traceEvents.some((e) => e.ph === 'C' && e.name === 'khugepaged' && Number(e.args.full_scans) > 0));
});
