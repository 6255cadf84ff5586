import test from 'ava';
import { runCompoundLockStress } from '../src/mm/stress/compound-lock.ts';

// Serial: the two runs must not compete for the 2 CPUs. One gup worker holding 32 pins on every tail (4 per tail × 8 for the chasing worker),
// each a get_page and a put_page, per THP and round; this thread splits every THP.
const compound = 8;
const rounds = 2;
const perRound = compound * 511 * 32 * 2;

test.serial('compound_lock serializes put_page on tail pages against __split_huge_page_refcount: no reference lost', async (t) => {
  // at least `rounds` rounds, and on until puts met the split's held lock a few times
  const r = await runCompoundLockStress({ compoundLock: true, compound, rounds, workers: 1, minCrossings: 4, maxMs: 20000 });
  t.log(`compound_lock on: ${r.operations} get_page/put_page, ${r.splits} splits, ${r.crossings} crossings, lost ${r.lost}, extra ${r.extra}`);
  t.is(r.operations, r.rounds * perRound);
  t.is(r.splits, r.rounds * compound);
  t.is(r.lost, 0);
  t.is(r.extra, 0);
  t.is(r.freed, 0);
  t.is(r.bugs, 0);
});

test.serial('without compound_lock (NO_COMPOUND_LOCK) put_page races the split and references are lost or gained', async (t) => {
  // Rounds until the audit finds the damage: on a loaded machine the two threads may rarely
  // be on CPU together, so it can take many rounds; 120 s is only a hang guard.
  const r = await runCompoundLockStress({ compoundLock: false, compound, rounds: 1, workers: 1, untilDamaged: true, maxMs: 120000 });
  t.log(
    `compound_lock off: ${r.operations} get_page/put_page, ${r.splits} splits, ${r.crossings} crossings, ` +
      `lost ${r.lost}, extra ${r.extra}, BUG_ONs ${r.bugs}`,
  );
  t.is(r.operations, r.rounds * perRound);
  t.true(r.lost + r.extra > 0);
});

test.serial('6.x folio references: get_page/put_page on tails take the folio refcount, the split freezes it: no reference lost', async (t) => {
  const r = await runCompoundLockStress({ compoundLock: false, folio: true, compound, rounds, workers: 1 });
  t.log(`folio: ${r.operations} get_page/put_page, ${r.splits} splits, lost ${r.lost}, extra ${r.extra}`);
  t.true(r.folio);
  t.is(r.rounds, rounds);
  t.is(r.operations, rounds * perRound);
  t.is(r.splits, rounds * compound);
  t.is(r.lost, 0);
  t.is(r.extra, 0);
  t.is(r.freed, 0);
  t.is(r.bugs, 0);
});
