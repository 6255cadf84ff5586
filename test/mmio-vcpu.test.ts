// The native side of unhandled MMIO (NativeVcpu.completeMmio, native/cpu.h): without a
// registration an access outside guest memory exits and does not retire; once its page is
// registered the re-executed instruction reads all-ones / drops its write and retires, with
// exact counts; other MMIO pages still exit; configureMmu forgets every registration.
import test from 'ava';
import { assemble, DATA, makeMachine, CODE } from './vcpu-harness.ts';
import { ExitReason } from '../src/native/types.ts';

function mmioMachine() {
  const m = makeMachine({ memory: 8 << 20 });
  // Two data pages mapped beyond the 8 MiB of guest memory: DATA -> GPA 0x10000000,
  // DATA + 4 KiB -> GPA 0x10002000 (a different MMIO page).
  m.load(assemble('mov (%rbx), %rcx\nmovl $7, 4(%rbx)\nmov 0x1000(%rbx), %rdx\nhlt'));
  m.mem.setBigUint64(m.pteAddr(DATA), 0x10000003n, true);
  m.mem.setBigUint64(m.pteAddr(DATA + 0x1000), 0x10002003n, true);
  m.setReg('rbx', DATA + 0x18);
  return m;
}

test('a registered MMIO page completes the re-executed access: all-ones read, dropped write, exact counts', (t) => {
  const m = mmioMachine();
  t.is(m.run(), ExitReason.MMIO);
  t.is(m.exitField('gpa'), 0x10000018n);
  t.is(m.reg('rip'), BigInt(CODE));
  t.is(m.counter('instructions'), 0n);
  m.vcpu.completeMmio(0x10000018);
  // The load and the store to the registered page complete; the next page still exits.
  t.is(m.run(), ExitReason.MMIO);
  t.is(m.exitField('gpa'), 0x10002018n);
  t.is(m.reg('rcx'), 0xffffffffffffffffn);
  t.is(m.counter('instructions'), 2n);
  t.is(m.counter('loads'), 1n);
  t.is(m.counter('stores'), 1n);
  t.is(m.counter('mmio_accesses'), 2n);
  t.is(m.counter('exits_mmio'), 2n);
  m.vcpu.completeMmio(0x10002018n);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rdx'), 0xffffffffffffffffn);
  t.is(m.counter('instructions'), 4n);
  t.is(m.counter('loads'), 2n);
  t.is(m.counter('mmio_accesses'), 3n);
  t.is(m.counter('exits_mmio'), 2n);
});

test('configureMmu forgets the registered MMIO pages', (t) => {
  const m = mmioMachine();
  m.vcpu.completeMmio(0x10000000);
  m.vcpu.configureMmu({ ept: false, guestBase: 0, guestSize: 8 << 20 });
  t.is(m.run(), ExitReason.MMIO);
  t.is(m.exitField('gpa'), 0x10000018n);
  t.is(m.counter('mmio_accesses'), 0n);
});

test('an access to an unregistered page next to a registered one still exits', (t) => {
  const m = mmioMachine();
  m.vcpu.completeMmio(0x10001000);  // the neighbour of the page the first load touches
  t.is(m.run(), ExitReason.MMIO);
  t.is(m.exitField('gpa'), 0x10000018n);
  t.is(m.counter('instructions'), 0n);
});
