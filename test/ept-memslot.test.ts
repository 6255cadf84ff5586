import test from 'ava';
import { MemslotTable, gpaToHva, hvaToGpa, slotAllowsLargePage, KVM_USER_MEM_SLOTS } from '../src/kvm/mmu/memslot.ts';
import { gpa, hva } from '../src/util/address.ts';
import { ConfigError } from '../src/util/errors.ts';
import { setupEpt } from './ept-helpers.ts';

const MiB = 1024 * 1024;
const H = 0x7f00_0000_0000;

function rejects(t: import('ava').ExecutionContext, fn: () => unknown, re: RegExp): void {
  const e = t.throws(fn, { instanceOf: ConfigError });
  t.regex(e!.message, re);
}

test('memslot validation rejects overlaps, misalignment, zero size and out-of-range values with named errors', (t) => {
  const s = new MemslotTable();
  s.add({ slot: 0, gpa: gpa(0), size: 16 * MiB, hva: hva(H) });
  rejects(t, () => s.add({ slot: 1, gpa: gpa(8 * MiB), size: 16 * MiB, hva: hva(H + 64 * MiB) }), /overlaps memslot 0/);
  rejects(t, () => s.add({ slot: 1, gpa: gpa(32 * MiB + 100), size: MiB, hva: hva(H) }), /guest physical address 0x2000064 is not 4 KiB aligned/);
  rejects(t, () => s.add({ slot: 1, gpa: gpa(32 * MiB), size: MiB + 1, hva: hva(H) }), /not a multiple of 4 KiB/);
  rejects(t, () => s.add({ slot: 1, gpa: gpa(32 * MiB), size: 0, hva: hva(H) }), /size is zero/);
  rejects(t, () => s.add({ slot: 1, gpa: gpa(32 * MiB), size: MiB, hva: hva(H + 12) }), /userspace address .* not 4 KiB aligned/);
  rejects(t, () => s.add({ slot: 1, gpa: gpa(2 ** 48 - MiB), size: 2 * MiB, hva: hva(H) }), /48-bit guest-physical limit/);
  rejects(t, () => s.add({ slot: KVM_USER_MEM_SLOTS, gpa: gpa(32 * MiB), size: MiB, hva: hva(H) }), /slot must be an integer in \[0, 31\]/);
  rejects(t, () => s.add({ slot: 0, gpa: gpa(32 * MiB), size: MiB, hva: hva(H) }), /memslot 0 already exists/);
  rejects(t, () => s.add({ slot: 2, gpa: gpa(32 * MiB), size: MiB, hva: hva(H), flags: 8 }), /unknown flags/);
  rejects(t, () => s.byId(7), /memslot 7 does not exist/);
  t.is(s.all.length, 1);
});

test('several memslots resolve GPAs to their own HVAs and holes are MMIO', (t) => {
  const s = new MemslotTable();
  const a = s.add({ slot: 0, gpa: gpa(0), size: 4 * MiB, hva: hva(H) });
  const b = s.add({ slot: 1, gpa: gpa(1024 * MiB), size: 8 * MiB, hva: hva(H + 4096) });
  t.is(s.lookup(gpa(4096)), a);
  t.is(s.lookup(gpa(1024 * MiB + 5)), b);
  t.is(s.lookup(gpa(4 * MiB)), null);
  t.is(Number(gpaToHva(b, gpa(1024 * MiB + 8192))), H + 4096 + 8192);
  t.is(Number(hvaToGpa(b, hva(H + 4096 + 8192))), 1024 * MiB + 8192);
  t.true(slotAllowsLargePage(a, gpa(2 * MiB)));
  t.false(slotAllowsLargePage(a, gpa(4 * MiB)), 'a 2 MiB range past the slot end');
  t.false(slotAllowsLargePage(b, gpa(1024 * MiB)), 'GPA and HVA not congruent mod 2 MiB');
  t.deepEqual(
    s.hvaRangeToGpaRanges(hva(H + 2 * MiB), hva(H + 3 * MiB)).map((r) => [r.slot.id, r.start, r.end]),
    [
      [0, 2 * MiB, 3 * MiB],
      [1, 1024 * MiB + 2 * MiB - 4096, 1024 * MiB + 3 * MiB - 4096],
    ],
  );
});

test('EPT guest memory writes reach the host mm at the slot HVA and holes are rejected', (t) => {
  const { k, mm } = setupEpt({ hostBytes: 64 * MiB });
  const s0 = k.addRamSlot(0, gpa(0), 4 * MiB);
  const s1 = k.addRamSlot(1, gpa(8 * MiB), 4 * MiB);
  const mem = k.guestMemory();
  t.is(mem.size, 12 * MiB);
  mem.write(gpa(8 * MiB + 10), new Uint8Array([1, 2, 3]));
  t.deepEqual([...mm.readBytes(hva(s1.hva + 10), 3)], [1, 2, 3]);
  t.deepEqual([...mem.read(gpa(8 * MiB + 9), 5)], [0, 1, 2, 3, 0]);
  t.throws(() => mem.write(gpa(5 * MiB), new Uint8Array(1)), { instanceOf: ConfigError, message: /outside every memslot/ });
  // zero() must not fault in pages nobody wrote.
  mem.zero(gpa(0), 4 * MiB);
  t.is(mm.follow_page(s0.hva), null);
  mem.zero(gpa(8 * MiB), 4096);
  t.deepEqual([...mem.read(gpa(8 * MiB + 9), 5)], [0, 0, 0, 0, 0]);
});
