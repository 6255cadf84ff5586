// Unhandled MMIO from a real guest on the real vCPU (docs/guest-abi.md "Devices and exits"): a
// guest maps GPAs beyond its memory with its own page tables and touches them. Default mode
// logs once per page and continues (reads all-ones, writes dropped, a page-crossing access
// does its RAM half); strict mode stops naming the GPA and RIP; a fetch from MMIO space stops.
// Both translation modes (no-EPT: EXIT_MMIO; EPT: an EPT violation outside every memslot).
// The guests are assembled at test time with GNU as + ld, like the fixtures (build.sh).
import test from 'ava';
import { createVm } from '../src/kvm/vm.ts';
import type { VmConfig } from '../src/api/types.ts';
import { assemble, guestFile } from './fixtures/assemble.ts';
import { cliInProcess } from './fixtures/cli.ts';
import { UNHANDLED_LOGGED } from '../src/kvm/exits.ts';

const MiB = 1024 * 1024;

// Maps GVA 0x40000000 (1 GiB leaf) to GPA 0x40000000, and GVA 0x3fe00000 (2 MiB leaf) to
// GPA 0: with 4 MiB of memory the first is all MMIO, the second RAM, and the qword at GVA
// 0x3ffffffc has its low half in RAM (GPA 0x1ffffc) and its high half in MMIO (GPA 0x40000000).
const MAP = `
        .text
        .globl _start
_start:
        mov     %cr3, %rax
        and     $-4096, %rax
        mov     (%rax), %rbx            # PML4[0] -> PDPT
        and     $-4096, %rbx
        mov     (%rbx), %rcx            # PDPT[0] -> PD
        and     $-4096, %rcx
        movq    $0x83, 8*511(%rcx)      # PD[511]: 2 MiB leaf, GPA 0
        movl    $0x40000083, %edx
        mov     %rdx, 8(%rbx)           # PDPT[1]: 1 GiB leaf, GPA 0x40000000
        mov     $0x40001000, %esi
`;

// 33 instructions retire (the OUT to the debug-exit port included); 7 loads, 5 stores, of
// which 7 accesses (5 loads/stores + the RMW's two) complete as MMIO.
const DATA_GUEST = `${MAP}
        .globl  mmio_store
mmio_store:
        movq    $0x1234, 0x10(%rsi)     # MMIO write: dropped
        mov     0x10(%rsi), %rdi        # MMIO read: all ones
        addq    $1, 0x10(%rsi)          # read-modify-write: reads ones, the write is dropped
        mov     0x10(%rsi), %r8         # still all ones
        movabs  $0x1122334455667788, %r9
        .globl  split_store
split_store:
        mov     %r9, 0x3ffffffc         # page-crossing: RAM half written, MMIO half dropped
        mov     0x3ffffffc, %r10        # RAM half back, MMIO half all ones
        mov     0x1ffffc, %r11d         # the RAM half through the boot identity map
        mov     $1, %eax
        cmp     $-1, %rdi
        jne     fail
        mov     $2, %eax
        cmp     $-1, %r8
        jne     fail
        mov     $3, %eax
        movabs  $0xffffffff55667788, %rcx
        cmp     %rcx, %r10
        jne     fail
        mov     $4, %eax
        cmp     $0x55667788, %r11d
        jne     fail
        xor     %eax, %eax
fail:   outb    %al, $0xf4
        hlt
`;

const FETCH_GUEST = `${MAP}
        .globl  jump
jump:
        jmp     *%rsi                   # execute from MMIO space
        movb    $9, %al
        outb    %al, $0xf4
        hlt
`;

const build = (src: string) => assemble(src, 'mmio');

const data = build(DATA_GUEST);
const fetch = build(FETCH_GUEST);
const hex = (v: number) => '0x' + v.toString(16);

for (const ept of [false, true]) {
  const mode = ept ? 'EPT' : 'no-EPT';
  const cfg = (extra: VmConfig = {}): VmConfig => ({ memory: 4 * MiB, ept, ...extra });

  test(`${mode}: unhandled MMIO reads all ones, drops writes, logs once per page and the guest finishes`, (t) => {
    const logs: string[] = [];
    const r = createVm(cfg({ onLog: (m) => logs.push(m) }), data).run()!;
    t.is(r.error, null);
    t.is(r.stopReason, 'exit');
    t.is(r.exitStatus, 0);
    t.is(r.counters.instructions, 33);
    t.is(r.counters.loads, 7);
    t.is(r.counters.stores, 5);
    t.is(r.counters.mmio_accesses, 7);
    t.deepEqual(r.unhandledMmio, [0x40000000, 0x40001000]);
    t.is(r.vmm.mmio_pages, 2);
    t.deepEqual(logs, [
      `unhandled MMIO access at GPA 0x40001010 (RIP ${hex(data.sym.mmio_store)}): write; reads return all ones, writes are dropped (reported once per page)`,
      `unhandled MMIO access at GPA 0x40000000 (RIP ${hex(data.sym.split_store)}): write; reads return all ones, writes are dropped (reported once per page)`,
    ]);
    // One exit per MMIO page: later accesses to a reported page complete in the vCPU.
    if (ept) t.is(r.memory.ept?.mmio_exits, 2);
    else t.like(r.exits, { mmio: 2, io: 1 });
  });

  test(`${mode}: strict mode stops at the first MMIO access naming the GPA and RIP`, (t) => {
    const r = createVm(cfg({ strict: true }), data).run()!;
    t.is(r.stopReason, 'mmio');
    t.is(r.exitStatus, null);
    t.is(r.error?.message, `MMIO write at GPA 0x40001010 (GVA 0x40001010) outside guest memory, at RIP ${hex(data.sym.mmio_store)} (strict mode)`);
    t.is(r.counters.instructions, 10);
    t.is(r.counters.mmio_accesses, 0);
    t.deepEqual(r.unhandledMmio, []);
  });

  test(`${mode}: an instruction fetch from MMIO space stops even in default mode`, (t) => {
    const r = createVm(cfg(), fetch).run()!;
    t.is(r.stopReason, 'mmio');
    t.is(r.error?.message, `MMIO fetch at GPA 0x40001000 (GVA 0x40001000) outside guest memory, at RIP 0x40001000: cannot be completed (no MMIO device model)`);
    t.is(r.counters.instructions, 11);
    t.is(r.counters.mmio_accesses, 0);
  });
}

// Reads one byte per 4 KiB page across PAGES pages of MMIO space (the 1 GiB leaf at GPA
// 0x40000000, all beyond 4 MiB of memory): one MMIO exit and one report per page.
const PAGES = 100_000;
const MANY_PAGES_GUEST = `${MAP}
        mov     $0x40000000, %esi
        mov     $${PAGES}, %ecx
        .globl  touch
touch:  movb    (%rsi), %al
        add     $4096, %rsi
        dec     %ecx
        jnz     touch
        xor     %eax, %eax
        outb    %al, $0xf4
        hlt
`;
const manyPages = assemble(MANY_PAGES_GUEST, 'mmio-pages');

test(`a guest touching ${PAGES} MMIO pages gets a complete --json result with ${UNHANDLED_LOGGED} pages listed and logged, exact counts and a bounded size`, async (t) => {
  const g = guestFile(manyPages);
  try {
    const r = await cliInProcess(['run', g.path, '--memory', '4M', '--json']);
    t.is(r.code, 0);
    t.is(r.stderr, '');
    const JSON_BOUND = 32 * 1024; // 64 listed pages, 65 log lines, the counters and the config
    t.true(r.stdout.length < JSON_BOUND, `${r.stdout.length} bytes`);
    const j = JSON.parse(r.stdout);
    t.is(j.stopReason, 'exit');
    t.deepEqual(j.unhandledMmio, Array.from({ length: UNHANDLED_LOGGED }, (_, i) => 0x40000000 + i * 4096));
    t.is(j.vmm.mmio_pages, PAGES);
    t.is(j.counters.mmio_accesses, PAGES);
    t.is(j.memory.ept.mmio_exits, PAGES);
    t.is(j.log.length, UNHANDLED_LOGGED + 1);
    t.is(j.log[1], `unhandled MMIO access at GPA 0x40001000 (RIP ${hex(manyPages.sym.touch)}): read; reads return all ones, writes are dropped (reported once per page)`);
    t.is(j.log[UNHANDLED_LOGGED], `unhandled MMIO: ${PAGES - UNHANDLED_LOGGED} more MMIO pages not listed (${PAGES} in all)`);
    t.is(j.vmm.log_suppressed, 0);
  } finally {
    g.remove();
  }
});

// Sweeps 70,000 MMIO pages twice: more pages than the vCPU keeps registered (65,536), so the
// oldest registrations are forgotten and those pages exit again: what the guest touches no
// longer decides how much host memory the registrations take.
const SWEEP = 70_000;
const MAX_REGISTERED = 65_536;
const TWO_SWEEPS_GUEST = `${MAP}
        mov     $2, %edx
again:  mov     $0x40000000, %esi
        mov     $${SWEEP}, %ecx
touch:  movb    (%rsi), %al
        add     $4096, %rsi
        dec     %ecx
        jnz     touch
        dec     %edx
        jnz     again
        xor     %eax, %eax
        outb    %al, $0xf4
        hlt
`;
const twoSweeps = assemble(TWO_SWEEPS_GUEST, 'mmio-two-sweeps');

/** The exits a FIFO of `capacity` registered pages gives for this access sequence. */
function fifoExits(pages: number[], capacity: number): number {
  const registered = new Set<number>();
  const order: number[] = [];
  let exits = 0;
  for (const p of pages) {
    if (registered.has(p)) continue;
    exits++;
    registered.add(p);
    order.push(p);
    if (order.length > capacity) registered.delete(order.shift()!);
  }
  return exits;
}

test(`the vCPU keeps at most ${MAX_REGISTERED} MMIO pages registered: forgotten pages exit again, the counts stay exact`, async (t) => {
  const g = guestFile(twoSweeps);
  try {
    const r = await cliInProcess(['run', g.path, '--memory', '4M', '--json']);
    t.is(r.code, 0);
    const j = JSON.parse(r.stdout);
    const sweep = Array.from({ length: SWEEP }, (_, i) => i);
    const exits = fifoExits([...sweep, ...sweep], MAX_REGISTERED);
    t.is(exits, 2 * SWEEP, 'a sequential sweep larger than the FIFO misses every time');
    t.is(j.memory.ept.mmio_exits, exits);
    t.is(j.vmm.mmio_pages, exits);
    t.is(j.counters.mmio_accesses, 2 * SWEEP);
    t.is(j.unhandledMmio.length, UNHANDLED_LOGGED);
  } finally {
    g.remove();
  }
});

test('completeMmio refuses a GPA that is not a non-negative number or bigint', async (t) => {
  const { loadAddon } = await import('../src/native/addon.ts');
  const addon = loadAddon();
  const vcpu = new addon.Vcpu(new addon.Arena(4 * MiB));
  t.throws(() => vcpu.completeMmio(-1), { instanceOf: TypeError, message: /completeMmio\(gpa\)/ });
  t.throws(() => vcpu.completeMmio('0x1000' as never), { instanceOf: TypeError });
  t.notThrows(() => vcpu.completeMmio(0x40000000n));
});
