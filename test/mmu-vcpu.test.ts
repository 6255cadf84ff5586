// The MMU seen through the real vCPU (native/cpu*): a guest running over an EPT built in
// the arena from TS, with the default TLB hierarchy. Checks the 2D reference counts the
// vCPU's own accesses produce, the EPT-violation exit record, and MMU config errors.
import test from 'ava';
import { loadAddon } from '../src/native/addon.ts';
import { ExitReason, REG, type NativeVcpu } from '../src/native/types.ts';
import { assemble, CODE, DATA, GDT, PML4, STACK_TOP } from './vcpu-harness.ts';

const GUEST_BASE = 8 * 1024 * 1024; // HPA of GPA 0
const GUEST_SIZE = 8 * 1024 * 1024;
const EPT_PML4 = 0x1000; // EPT tables bump-allocated from here (HPA)

interface EptMachine {
  vcpu: NativeVcpu;
  mem: DataView;
  counter(name: string): bigint;
  exitField(name: string): bigint;
  /** The EPT PTE (HPA offset) of a guest-physical 4 KiB page. */
  eptPte(gpa: number): number;
}

/** Guest RAM GPA [0, 8 MiB) at HPA 8 MiB, identity-mapped by 4 KiB guest pages, EPT 4 KiB. */
function eptMachine(src: string): EptMachine {
  const addon = loadAddon();
  const arena = new addon.Arena(GUEST_BASE + GUEST_SIZE);
  const vcpu = new addon.Vcpu(arena);
  const mem = new DataView(arena.chunks[0]!); // a 16 MiB arena is one chunk
  const put = (hpa: number, v: number) => mem.setBigUint64(hpa, BigInt(v), true);
  // EPT: PML4 → PDPT → PD → 4 PTs covering GPA [0, 8 MiB), RWX, memory type WB (6 << 3).
  const pdpt = EPT_PML4 + 0x1000, pd = EPT_PML4 + 0x2000, pt0 = EPT_PML4 + 0x3000;
  put(EPT_PML4, pdpt | 7);
  put(pdpt, pd | 7);
  for (let c = 0; c < GUEST_SIZE / 0x200000; c++) {
    put(pd + c * 8, (pt0 + c * 0x1000) | 7);
    for (let e = 0; e < 512; e++) put(pt0 + c * 0x1000 + e * 8, (GUEST_BASE + c * 0x200000 + e * 0x1000) | 7 | (6 << 3));
  }
  // Guest tables at GPA PML4.. (written through the linear layout), identity map by 4 KiB.
  const g = (gpa: number, v: number) => put(GUEST_BASE + gpa, v);
  const gpdpt = PML4 + 0x1000, gpd = PML4 + 0x2000, gpt0 = PML4 + 0x3000;
  g(PML4, gpdpt | 3);
  g(gpdpt, gpd | 3);
  for (let c = 0; c < GUEST_SIZE / 0x200000; c++) {
    g(gpd + c * 8, (gpt0 + c * 0x1000) | 3);
    for (let e = 0; e < 512; e++) g(gpt0 + c * 0x1000 + e * 8, (c * 0x200000 + e * 0x1000) | 3);
  }
  mem.setBigUint64(GUEST_BASE + GDT + 8, 0x00209a0000000000n, true);
  mem.setBigUint64(GUEST_BASE + GDT + 16, 0x0000920000000000n, true);
  new Uint8Array(arena.chunks[0]!).set(assemble(src), GUEST_BASE + CODE);
  vcpu.configureMmu({ ept: true, eptp: EPT_PML4 });
  const regs = vcpu.regs;
  const init: Record<string, number> = {
    cr0: 0x80010031, cr4: 0x20, efer: 0xd00, cr3: PML4, gdtr_base: GDT, gdtr_limit: 23,
    cs: 8, ds: 0x10, es: 0x10, ss: 0x10, fs: 0x10, gs: 0x10, rflags: 2, rip: CODE, rsp: STACK_TOP,
  };
  for (const [k, v] of Object.entries(init)) regs[REG[k as keyof typeof REG]] = BigInt(v);
  return {
    vcpu,
    mem,
    counter: (name) => vcpu.counters[addon.counterNames.indexOf(name)],
    exitField: (name) => vcpu.exit[addon.exitFieldNames.indexOf(name)],
    eptPte: (gpa) => pt0 + Math.floor(gpa / 0x1000) * 8,
  };
}

test('a guest load under EPT costs the 2D walk references the model predicts', (t) => {
  const m = eptMachine(`mov ${DATA}, %rax\nhlt`);
  t.is(m.vcpu.run(100), ExitReason.HLT);
  // Fetch of the code page: cold 4K x 4K walk = 24. The load from DATA (other 2 MiB, same
  // 1 GiB): PDPTE-cache hit starts at the PD, whose page the nested TLB holds (1 read); the
  // new PT page costs 4 EPT reads + 1; the data GPA 4 EPT reads: 10.
  t.is(m.counter('walks'), 2n);
  t.is(m.counter('walk_refs'), 34n);
  t.is(m.counter('walk_refs_guest'), 6n);
  t.is(m.counter('walk_refs_ept'), 28n);
  t.is(m.counter('pwc_pdpte_hits'), 1n);
  t.is(m.counter('nested_tlb_hits'), 1n);
  t.is(m.counter('ad_updates'), 6n);
});

test('a missing EPT entry for guest data exits with gpa, access, gva_valid and level, then resumes', (t) => {
  const m = eptMachine(`movq $7, ${DATA + 0x10}\nhlt`);
  const pte = m.eptPte(DATA);
  const saved = m.mem.getBigUint64(pte, true);
  m.mem.setBigUint64(pte, 0n, true);
  t.is(m.vcpu.run(100), ExitReason.EPT_VIOLATION);
  t.is(m.exitField('gpa'), BigInt(DATA + 0x10));
  t.is(m.exitField('gva'), BigInt(DATA + 0x10));
  t.is(m.exitField('access'), 1n); // write
  t.is(m.exitField('gva_valid'), 1n);
  t.is(m.exitField('level'), 1n);
  t.is(m.vcpu.regs[REG.rip], BigInt(CODE)); // not retired
  m.mem.setBigUint64(pte, saved, true);
  m.vcpu.invept();
  t.is(m.vcpu.run(100), ExitReason.HLT);
  t.is(m.mem.getBigUint64(GUEST_BASE + DATA + 0x10, true), 7n);
  t.is(m.counter('invept'), 1n);
});

test('configureMmu accepts a partial TLB geometry and names the field of a bad one', (t) => {
  const addon = loadAddon();
  const arena = new addon.Arena(4 * 1024 * 1024);
  const vcpu = new addon.Vcpu(arena);
  t.notThrows(() => vcpu.configureMmu({ ept: false, guestBase: 0, guestSize: 4 * 1024 * 1024, tlb: { nested: { entries: 0, ways: 0 } } }));
  t.throws(() => vcpu.configureMmu({ ept: false, guestBase: 0, guestSize: 4 * 1024 * 1024, tlb: { stlb: { entries: 1000, ways: 12 } } }), {
    message: /tlb\.stlb entries is not a multiple of ways/,
  });
  t.throws(() => vcpu.configureMmu({ ept: false, guestBase: 0, guestSize: 4 * 1024 * 1024, tlb: { dtlb4k: { entries: 48, ways: 4 } } }), {
    message: /tlb\.dtlb4k entries\/ways/,
  });
  t.throws(() => vcpu.configureMmu({ ept: true, eptp: 1 << 30 }), { message: /eptp/ });
});
