import test from 'ava';
import { runCompoundLockStress } from '../src/mm/stress/compound-lock.ts';

// 2 gup workers; worker 0 holds 4×8 pins per tail, worker 1 holds 4: per round and THP,
// 511 tails × (32 + 4) pins, each a get_page and a put_page.
const compound = 8;
const rounds = 2;
const expectedOps = rounds * compound * 511 * (32 + 4) * 2;

test('compound_lock serializes put_page on tail pages against __split_huge_page_refcount: no reference lost', async (t) => {
  const r = await runCompoundLockStress({ compoundLock: true, compound, rounds });
  t.log(`compound_lock on: ${r.operations} get_page/put_page, ${r.splits} splits, lost ${r.lost}, extra ${r.extra}`);
  t.is(r.operations, expectedOps);
  t.is(r.splits, rounds * compound);
  t.is(r.lost, 0);
  t.is(r.extra, 0);
  t.is(r.freed, 0);
  t.is(r.bugs, 0);
});

test('without compound_lock (debug switch) put_page races the split and references are lost or gained', async (t) => {
  const r = await runCompoundLockStress({ compoundLock: false, compound, rounds });
  t.log(`compound_lock off: ${r.operations} get_page/put_page, ${r.splits} splits, lost ${r.lost}, extra ${r.extra}`);
  t.is(r.operations, expectedOps);
  t.true(r.lost + r.extra > 0);
});
