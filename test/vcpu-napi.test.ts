/**
 * The Vcpu's N-API surface (src/native/types.ts): register names in REG order, exit reasons
 * and access kinds as native/exit.h defines them, live BigUint64Array views (no copies),
 * argument errors, resetCounters.
 */
import test from 'ava';
import { loadAddon } from '../src/native/addon.ts';
import { Access, ExitReason, REG, REG_COUNT } from '../src/native/types.ts';
import { machineWith } from './vcpu-harness.ts';

test('regNames lists every register in REG order', (t) => {
  const addon = loadAddon();
  t.is(addon.regNames.length, REG_COUNT);
  for (const [name, i] of Object.entries(REG)) t.is(addon.regNames[i], name);
});

test('ExitReason and Access are the values of the addon\'s exit X-macros', (t) => {
  const addon = loadAddon();
  t.deepEqual(addon.exitReasonNames, Object.keys(ExitReason));
  for (const [name, v] of Object.entries(ExitReason)) t.is(addon.exitReasonNames[v], name);
  t.deepEqual(addon.accessNames, ['READ', 'WRITE', 'FETCH']);
  for (const [name, v] of Object.entries(Access)) t.is(addon.accessNames[v], name);
});

test('regs, counters and exit are live views over native memory, the same objects on every read', (t) => {
  const m = machineWith('mov $42, %eax\nhlt');
  const regs = m.vcpu.regs;
  const counters = m.vcpu.counters;
  t.is(m.vcpu.regs, regs);
  t.is(regs.length, REG_COUNT);
  t.is(counters.length, loadAddon().counterNames.length);
  t.is(m.vcpu.exit.length, loadAddon().exitFieldNames.length);
  m.run();
  t.is(regs[REG.rax], 42n);
  t.is(counters[0], 2n, 'instructions, seen through the view taken before run()');
  m.vcpu.resetCounters();
  t.true([...counters].every((v) => v === 0n));
});

test('bad arguments are clear errors, not crashes', (t) => {
  const addon = loadAddon();
  t.throws(() => new addon.Vcpu({} as never), { instanceOf: TypeError, message: /arena must be an Arena/ });
  const m = machineWith('hlt');
  t.throws(() => m.vcpu.run(-1), { instanceOf: TypeError, message: /maxInstructions/ });
  t.throws(() => m.vcpu.configureMmu({ ept: false, guestBase: 0, guestSize: 2 ** 40 }), { message: /outside the host-physical arena/ });
});

test('views stay valid after the Vcpu object is dropped', (t) => {
  let regs: BigUint64Array;
  {
    const m = machineWith('mov $7, %ecx\nhlt');
    m.run();
    regs = m.vcpu.regs;
  }
  (globalThis as { gc?: () => void }).gc?.();
  t.is(regs[REG.rcx], 7n);
});
