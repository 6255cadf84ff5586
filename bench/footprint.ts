/**
 * `npm run bench -- footprint`: what the host model costs in real memory.
 *
 *  - struct page bytes per host frame (STRUCT_PAGE_BYTES; docs/performance.md: ≤ 24, goal ≤ 12);
 *  - peak RSS of a process simulating a 4 GiB host (the native arena as physmem, reserved
 *    lazily) whose one process touches 64 MiB (THP and 4 KiB faults) or 1 GiB;
 *  - docs/performance.md's figure: peak RSS for a VM with 4 GiB of guest memory that touches
 *    1 GiB (the demand-paging guest over a 1 GiB region), in EPT mode (a 4.53 GiB host, the
 *    default for 4 GiB of guest memory, host THP on) and in native (no-EPT) mode.
 *
 * Each scenario runs in its own child process so its peak RSS (getrusage ru_maxrss) is
 * its own; the baseline is a child that only loads the modules.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHost } from '../src/mm/index.ts';
import { STRUCT_PAGE_BYTES } from '../src/mm/page.ts';
import { loadAddon } from '../src/native/addon.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE, type Hva } from '../src/util/address.ts';
import { readFileSync } from 'node:fs';
import { createVm } from '../src/kvm/vm.ts';
import type { EptMemoryBackend } from '../src/kvm/mmu/ept-memory.ts';
import { figure } from './_figures.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HOST_BYTES = 4 * GiB;

interface Scenario {
  name: string;
  touch: number;
  thp: 'always' | 'never';
}
const SCENARIOS: Scenario[] = [
  { name: 'baseline (modules loaded, no host)', touch: -1, thp: 'always' },
  { name: '4 GiB host, touches 64 MiB (THP)', touch: 64 * MiB, thp: 'always' },
  { name: '4 GiB host, touches 64 MiB (4 KiB pages)', touch: 64 * MiB, thp: 'never' },
  { name: '4 GiB host, touches 1 GiB (THP)', touch: GiB, thp: 'always' },
];

const VM_SCENARIOS: Array<{ name: string; ept: boolean }> = [
  { name: 'VM, 4 GiB guest memory, touches 1 GiB, EPT mode (host THP always)', ept: true },
  { name: 'VM, 4 GiB guest memory, touches 1 GiB, native mode (no EPT)', ept: false },
];

/** A VM of 4 GiB whose guest demand-pages (writes, then verifies) a 1 GiB region. */
function vmChild(ept: boolean): void {
  const image = { bytes: new Uint8Array(readFileSync(fileURLToPath(new URL('../build/guests/demand-paging.elf', import.meta.url)))), name: 'demand-paging' };
  const vm = createVm({ memory: 4 * GiB, ept, ...(ept ? { host: { thp: { enabled: 'always' as const } } } : {}), args: [GiB] }, image);
  const r = vm.run()!;
  if (r.exitStatus !== 0) throw new Error(`demand-paging exited ${r.exitStatus}: ${r.console}`);
  const host = ept ? (vm.backend as EptMemoryBackend).host.meminfo() : null;
  process.stdout.write(`${JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, arenaBytes: vm.backend.arena.byteLength, anonKiB: host?.AnonPages ?? 0, hugeKiB: host?.AnonHugePages ?? 0 })}\n`);
}

function child(touch: number, thp: 'always' | 'never'): void {
  if (touch >= 0) {
    const arena = new (loadAddon().Arena)(HOST_BYTES);
    const host = createHost({ memoryBytes: HOST_BYTES, physmem: arena, thp: { enabled: thp } });
    const mm = host.newProcess();
    const a = mm.mmap(Math.max(touch, PAGE_SIZE), { alignHuge: true });
    const step = thp === 'always' ? HPAGE_PMD_SIZE : PAGE_SIZE;
    for (let off = 0; off < touch; off += step) mm.handle_mm_fault((a + off) as Hva, true);
    const m = host.meminfo();
    process.stdout.write(`${JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, anonKiB: m.AnonPages, hugeKiB: m.AnonHugePages })}\n`);
    host.close();
    return;
  }
  process.stdout.write(`${JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, anonKiB: 0, hugeKiB: 0 })}\n`);
}

const [mode, touchArg, thpArg] = process.argv.slice(2);
if (mode === '--child') {
  child(Number(touchArg), thpArg as 'always' | 'never');
} else if (mode === '--vm') {
  vmChild(touchArg === 'ept');
} else {
  console.log(`struct page: ${STRUCT_PAGE_BYTES} bytes per 4 KiB frame = ${((HOST_BYTES / PAGE_SIZE) * STRUCT_PAGE_BYTES) / MiB} MiB for a 4 GiB host`);
  const self = fileURLToPath(import.meta.url);
  for (const s of SCENARIOS) {
    const r = spawnSync(process.execPath, ['--import=tsx', self, '--child', String(s.touch), s.thp], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`${s.name}: failed\n${r.stderr}`);
      process.exitCode = 1;
      continue;
    }
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const extra = s.touch >= 0 ? ` (AnonPages ${out.anonKiB / 1024} MiB, AnonHugePages ${out.hugeKiB / 1024} MiB)` : '';
    console.log(`${s.name}: peak RSS ${(out.maxRssKiB / 1024).toFixed(0)} MiB${extra}`);
    figure(`${s.name}: peak RSS`, out.maxRssKiB / 1024, 'MiB', 'lower');
  }
  for (const s of VM_SCENARIOS) {
    const r = spawnSync(process.execPath, ['--import=tsx', self, '--vm', s.ept ? 'ept' : 'native'], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`${s.name}: failed\n${r.stderr}`);
      process.exitCode = 1;
      continue;
    }
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const extra = s.ept ? `, host AnonPages ${out.anonKiB / 1024} MiB, AnonHugePages ${out.hugeKiB / 1024} MiB` : '';
    console.log(`${s.name}: peak RSS ${(out.maxRssKiB / 1024).toFixed(0)} MiB (arena ${(out.arenaBytes / GiB).toFixed(2)} GiB${extra})`);
    figure(`${s.name}: peak RSS`, out.maxRssKiB / 1024, 'MiB', 'lower');
  }
}
