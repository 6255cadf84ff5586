// The `hugevisor` CLI end to end: spawned as a user runs it, checking stdout, stderr and the
// exit code exactly for hello, the --json object, limits, strict mode and crashes. Counts
// that depend on another branch's code (the hello sample's instructions, the MMU's walks)
// are taken from the same run's --json; the committed fixtures' counts are asserted as such.
import test from 'ava';
import { execFile } from 'node:child_process';
import { cli, root } from './fixtures/cli.ts';

const fixture = (n: string): string => `test/fixtures/${n}.elf`;

/** The summary with the two timing-dependent numbers replaced. */
const untimed = (s: string): string => s.replace(/^wall time: .*$/m, 'wall time:    T');

/** Cycles the cost model charged to host events (EPT mode; 0 without EPT). */
function hostCycles(sim: { breakdown: Record<string, number> }): number {
  const b = sim.breakdown;
  return b.host_fault_4k + b.host_fault_2m + b.kib_zeroed + b.kib_copied + b.swap_io_page;
}

/** Simulated cycles by the default cost table (src/kvm/cost.ts) from a --json result. */
function defaultCycles(j: { counters: Record<string, number>; simulated: { breakdown: Record<string, number> } }): number {
  const c = j.counters;
  const stlb = (c.stlb_4k_hits ?? 0) + (c.stlb_2m_hits ?? 0) + (c.stlb_1g_hits ?? 0);
  return c.instructions + 25 * c.walk_refs + 7 * stlb + 1500 * (c.exits_io + c.exits_hlt + c.exits_ept_violation + c.exits_mmio + c.exits_shutdown) + hostCycles(j.simulated);
}

/** The TLB, walk and walk-cache lines, from the counters of a --json result (both modes). */
function tlbLines(c: Record<string, number>): string[] {
  const n = (x: number) => x.toLocaleString('en-US');
  const lvl = (p: string) => {
    const [a, b, d] = [c[`${p}_4k_misses`], c[`${p}_2m_misses`], c[`${p}_1g_misses`]];
    return `${n(a + b + d)} (4K ${n(a)}, 2M ${n(b)}, 1G ${n(d)})`;
  };
  const per = (x: number) => (x / c.walks).toFixed(2);
  return [
    `tlb misses:   L1 itlb ${lvl('itlb')}, L1 dtlb ${lvl('dtlb')}, stlb ${lvl('stlb')}`,
    `page walks:   ${n(c.walks)} walks, ${per(c.walk_refs)} refs/walk = ${per(c.walk_refs_guest)} guest + ${per(c.walk_refs_ept)} ept (${n(c.walk_refs_guest)} + ${n(c.walk_refs_ept)} refs)`,
    `walk caches:  pwc hits pml4e ${n(c.pwc_pml4e_hits)}, pdpte ${n(c.pwc_pdpte_hits)}, pde ${n(c.pwc_pde_hits)}; nested tlb hits ${n(c.nested_tlb_hits)}`,
  ];
}

/** The summary's first lines, from the same run's --json. */
function headLines(j: { instructions: number; exits: Record<string, number>; counters: Record<string, number>; simulated: { breakdown: Record<string, number> } }): string[] {
  const cycles = defaultCycles(j);
  return [
    '--- hugevisor: hello ---',
    'exit status:  0',
    'stop reason:  exit (the guest wrote its status to the debug-exit port)',
    `instructions: ${j.instructions.toLocaleString('en-US')}`,
    'guest faults: 0 #PF',
    `exits:        ${Object.entries(j.exits).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n.toLocaleString('en-US')}`).join(', ')}`,
    'wall time:    T',
    `simulated:    ${cycles.toLocaleString('en-US')} cycles = ${((cycles / 3e9) * 1e6).toPrecision(3)} µs at 3.00 GHz`,
  ];
}

test('run hello --ept off prints the guest line on stdout and the exact native summary on stderr', async (t) => {
  const r = await cli(['run', 'hello', '--ept', 'off']);
  // The walk counts behind simulated time belong to the MMU model: take them from --json.
  const j = JSON.parse((await cli(['run', 'hello', '--ept', 'off', '--json'])).stdout);
  t.is(j.memory.mode, 'native');
  t.is(hostCycles(j.simulated), 0);
  t.is(r.code, 0);
  t.is(r.stdout, 'Hello from a hugevisor guest!\n');
  t.regex(r.stderr, /^wall time:    \d+(\.\d+)? (ns|µs|ms|s) \(\d+\.\d\d guest MIPS\)$/m);
  t.is(untimed(r.stderr), [...headLines(j), 'ept:          off (native translation: one-dimensional walks)', ...tlbLines(j.counters), ''].join('\n'));
});

test('run hello (EPT by default) prints the exact summary with the EPT, host THP, khugepaged and walk lines', async (t) => {
  const r = await cli(['run', 'hello']);
  const j = JSON.parse((await cli(['run', 'hello', '--json'])).stdout);
  t.is(j.memory.mode, 'ept');
  t.is(j.config.ept, true);
  t.is(r.code, 0);
  t.is(r.stdout, 'Hello from a hugevisor guest!\n');
  // hello fits in the first 2 MiB of guest RAM: one THP on the host, one 2 MiB EPT leaf.
  t.is(j.exits.ept_violation, 1);
  const ms = j.memory.clock.host_ms;
  t.is(ms, j.simulated.seconds * 1000);
  t.is(
    untimed(r.stderr),
    [
      ...headLines(j),
      'ept:          ept_violations 1, pages_4k 0, pages_2m 1; mmu_notifier_invalidate 0, mmu_zapped_leaves 0, mmu_notifier_retry 0',
      'host thp:     thp_fault_alloc 1, thp_fault_fallback 0, thp_collapse_alloc 0, thp_split 0, nr_anon_transparent_hugepages 1 (AnonHugePages 2,048 kB)',
      'host mm:      pgfault 1, pgmajfault 0, pswpin 0, pswpout 0',
      `khugepaged:   full_scans 0, pages_collapsed 0; host clock ${ms.toFixed(3)} ms, following the guest`,
      ...tlbLines(j.counters),
      '',
    ].join('\n'),
  );
});

test('--json prints exactly one JSON object with the documented fields', async (t) => {
  const r = await cli(['run', fixture('bootcheck'), '--json', '--memory', '8M', '--guest-pages', '2m', '--arg', '0x10', '--arg', '64M', '--cmdline', 'a b']);
  t.is(r.code, 18);
  t.is(r.stderr, '');
  t.is(r.stdout.trim().split('\n').length, 1);
  const j = JSON.parse(r.stdout);
  t.is(j.schema, 'hugevisor.run/4');
  t.is(j.guest, 'test/fixtures/bootcheck.elf');
  t.is(j.exitCode, 18);
  t.is(j.exitStatus, 18); // args[0] + number of args
  t.is(j.stopReason, 'exit');
  t.is(j.error, null);
  t.is(j.console, 'a b');
  t.is(j.consoleBase64, Buffer.from('a b').toString('base64'));
  t.is(j.consoleTruncatedBytes, 0);
  t.false('consoleBytes' in j);
  t.is(j.instructions, 36);
  t.is(j.counters.instructions, 36);
  t.is(j.counters.exits_io, 4);
  t.like(j.exits, { io: 4, hlt: 0, mmio: 0, shutdown: 0 });
  t.deepEqual(j.roi, []);
  t.deepEqual(j.config.args, ['16', '67108864']);
  t.is(j.config.memory, 8 * 1024 * 1024);
  t.is(j.config.guestPageSize, '2m');
  t.is(j.config.cmdline, 'a b');
  t.deepEqual(j.boot, { memory: 8388608, guestPageSize: '2m', entry: 0x100000, imageEnd: 0x100059, pml4: 0x101000, pageTables: 3, bootInfo: 0x104000, freeStart: 0x116000 });
  t.is(j.simulated.cycles, defaultCycles(j));
  t.is(j.simulated.cycles, 36 + (4 + j.exits.ept_violation) * 1500 + 25 * j.counters.walk_refs + 7 * j.simulated.events.stlb_hit + hostCycles(j.simulated));
  for (const k of ['wallSeconds', 'mips', 'rates', 'vmm', 'unhandledPorts', 'roiOpen', 'log', 'path']) t.true(k in j, k);
});

test('the process exit code is the guest status modulo 256, and ROIs are summarized', async (t) => {
  const r = await cli(['run', fixture('roi')]);
  t.is(r.code, 300 & 0xff);
  t.regex(r.stderr, /^exit status:  300$/m);
  t.regex(r.stderr, /^roi 0:        3,003 instructions, 0 #PF, /m);
  const j = JSON.parse((await cli(['run', fixture('roi'), '--json'])).stdout);
  t.is(j.roi[0].counters.instructions, 3003);
  t.is(j.exitCode, 44);
});

test('a guest line without a newline does not swallow the summary', async (t) => {
  const r = await cli(['run', fixture('two-segments')]);
  t.is(r.code, 7);
  t.is(r.stdout, 'A');
  t.true(r.stderr.startsWith('\n--- hugevisor: test/fixtures/two-segments.elf ---\n'));
});

test('--max-instructions stops exactly there with exit code 124', async (t) => {
  const r = await cli(['run', fixture('spin'), '--max-instructions', '12345', '--json']);
  t.is(r.code, 124);
  const j = JSON.parse(r.stdout);
  t.is(j.stopReason, 'max-instructions');
  t.is(j.exitStatus, null);
  t.is(j.instructions, 12345);
});

// One REP STOSB with RCX = 2^64-1 would write all guest memory: the limit counts each
// iteration (docs/guest-abi.md "How the vCPU runs it"), so 5 = two MOVs + three stores,
// and the REP never retires.
test('--max-instructions bounds a REP string instruction: each iteration counts', async (t) => {
  const r = await cli(['run', fixture('rep-forever'), '--max-instructions', '5', '--json']);
  t.is(r.code, 124);
  const j = JSON.parse(r.stdout);
  t.is(j.stopReason, 'max-instructions');
  t.is(j.instructions, 2);
  t.is(j.counters.stores, 3);
});

test('--timeout stops a spinning guest with exit code 124', async (t) => {
  const r = await cli(['run', fixture('spin'), '--timeout', '0.3']);
  t.is(r.code, 124);
  t.regex(r.stderr, /^stop reason:  timeout \(wall-clock timeout\)$/m);
});

test('unhandled ports are logged once each and the guest continues; --strict stops it', async (t) => {
  const r = await cli(['run', fixture('port80')]);
  t.is(r.code, 0);
  t.is(r.stdout, 'F\n');
  const logs = r.stderr.split('\n').filter((l) => l.startsWith('hugevisor: '));
  t.deepEqual(logs, [
    'hugevisor: unhandled I/O: out byte port 0x80 at RIP 0x100002 (reads return all ones; reported once per port)',
    'hugevisor: unhandled I/O: in byte port 0x61 at RIP 0x100008 (reads return all ones; reported once per port)',
  ]);
  t.regex(r.stderr, /^unhandled:    ports 0x61, 0x80$/m);
  const s = await cli(['run', fixture('port80'), '--strict']);
  t.is(s.code, 125);
  t.is(s.stdout, '');
  t.regex(s.stderr, /^error: unhandled I\/O: out byte port 0x80 value 0x1 at RIP 0x100002 \(strict mode\)\n--- hugevisor/);
});

test('a triple fault is reported with its vector chain and exit code 125', async (t) => {
  const r = await cli(['run', fixture('ud2')]);
  t.is(r.code, 125);
  // The whole chain with no IDT (SDM 6.15; the sequence QEMU logs for it).
  t.regex(r.stderr, /^error: triple fault: #UD\(6\) -> #GP\(13\) error 0x33 -> #GP\(13\) error 0x6b -> #DF\(8\) error 0x0 -> #GP\(13\) error 0x43 -> triple fault at RIP 0x100001, CR2 0x0, error code 0x0, instruction bytes 0f 0b/m);
  t.regex(r.stderr, /^stop reason:  triple-fault \(triple fault\)$/m);
  const j = JSON.parse((await cli(['run', fixture('ud2'), '--json'])).stdout);
  t.is(j.stopReason, 'triple-fault');
  t.is(j.error.code, 'EGUEST');
  t.is(j.exitCode, 125);
});

test('a host out of memory during a run is a host-oom stop with exit code 123, a summary and a complete JSON result', async (t) => {
  const argv = ['run', 'demand-paging', '--memory', '128M', '--arg', '64M', '--host-memory', '16M', '--thp', 'never'];
  const r = await cli(argv);
  t.is(r.code, 123);
  t.is(r.stdout, 'demand-paging: region 0x0000008000000000 size 67108864 page 4096\n');
  t.regex(r.stderr, /^error: EPT violation at GPA 0x10f6000: host out of memory: no free frame \(4096 frames, 0 free\) at RIP 0x1001a0$/m);
  t.regex(r.stderr, /^stop reason:  host-oom \(the simulated host ran out of memory\)$/m);
  const j = JSON.parse((await cli([...argv, '--json'])).stdout);
  t.is(j.exitCode, 123);
  t.is(j.stopReason, 'host-oom');
  t.is(j.error.code, 'ENOMEM');
  // Every 4 KiB frame of the 16 MiB host went to the zero page, tables and guest pages: the
  // counters stop at the faulting access, which did not retire.
  t.is(j.counters.exits_ept_violation, 4016);
  t.is(j.memory.ept.pages_4k, 4015);
  t.is(j.memory.meminfo.MemFree, 0);
});

test('--cost overrides reach the cost model and the --json config', async (t) => {
  const j = JSON.parse((await cli(['run', fixture('bootcheck'), '--json', '--cost', 'vm_exit=0', '--cost', 'instruction=2', '--cost', 'clock_hz=1e9'])).stdout);
  t.is(j.config.costs.vm_exit, 0);
  t.is(j.config.costs.clock_hz, 1e9);
  t.is(j.simulated.breakdown.vm_exit, 0);
  t.is(j.simulated.breakdown.instruction, 2 * j.instructions);
  t.is(j.simulated.seconds, j.simulated.cycles / 1e9);
});

test('a reader closing the pipe early (| head) does not crash the CLI', async (t) => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile('sh', ['-c', `"${process.execPath}" bin/hugevisor.mjs run ${fixture('chatty')} | head -n 1`], { cwd: root }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr }));
  });
  t.is(r.stdout, 'x\n');
  t.notRegex(r.stderr, /EPIPE|Unhandled|node:events/);
  t.regex(r.stderr, /^exit status:  0$/m);
});
