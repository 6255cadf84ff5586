// The MMU surface the addons export to TS: the TLB structure list and default geometry
// (native/mmu.h HV_TLB_STRUCTURES) of the production addon, and the native walk benchmark of the bench
// addon, whose counts must be the oracle's.
import test from 'ava';
import { loadAddon, loadBenchAddon } from '../src/native/addon.ts';
import { disabledTlbGeometry, tlbStructureNames, type TlbStructureName } from '../src/native/tlb.ts';
import { WalkBenchKind } from '../src/native/types.ts';

test('the TLB structure names come from the addon, in configuration order, and are TlbGeometry\'s keys', (t) => {
  const addon = loadAddon();
  // Every key of the TS type, once (the compiler rejects a missing or unknown key here).
  const typeKeys: Record<TlbStructureName, true> = {
    itlb4k: true, itlb2m: true, itlb1g: true, dtlb4k: true, dtlb2m: true, dtlb1g: true,
    stlb: true, stlb1g: true, pwcPml4e: true, pwcPdpte: true, pwcPde: true, nested: true,
  };
  const names = tlbStructureNames(addon);
  t.deepEqual([...names].sort(), Object.keys(typeKeys).sort());
  t.deepEqual(Object.keys(addon.defaultTlbGeometry), [...names]);
  t.deepEqual(names, ['itlb4k', 'itlb2m', 'itlb1g', 'dtlb4k', 'dtlb2m', 'dtlb1g', 'stlb', 'stlb1g', 'pwcPml4e', 'pwcPdpte', 'pwcPde', 'nested']);
  t.deepEqual(Object.values(disabledTlbGeometry(addon)), names.map(() => ({ entries: 0, ways: 0 })));
});

test('the production addon exports nothing test-only; the bench addon holds walkBench', (t) => {
  t.false('walkBench' in loadAddon());
  t.is(typeof loadBenchAddon().walkBench, 'function');
});

test('the default TLB geometry is the modeled core\'s (64-entry L1 DTLB, 1536-entry STLB, ...)', (t) => {
  const g = loadAddon().defaultTlbGeometry;
  t.deepEqual(g, {
    itlb4k: { entries: 64, ways: 8 },
    itlb2m: { entries: 8, ways: 0 },
    itlb1g: { entries: 0, ways: 0 },
    dtlb4k: { entries: 64, ways: 4 },
    dtlb2m: { entries: 32, ways: 4 },
    dtlb1g: { entries: 4, ways: 0 },
    stlb: { entries: 1536, ways: 12 },
    stlb1g: { entries: 16, ways: 4 },
    pwcPml4e: { entries: 4, ways: 0 },
    pwcPdpte: { entries: 4, ways: 0 },
    pwcPde: { entries: 32, ways: 0 },
    nested: { entries: 16, ways: 0 },
  });
});

test('the walk bench measures 24-reference 2D walks and 4-reference native walks', (t) => {
  const addon = loadBenchAddon();
  const cold = addon.walkBench(WalkBenchKind.cold2d, 1000);
  t.is(cold.walks, 1000);
  t.is(cold.refs, 24000);
  t.is(cold.hits, 0);
  const native = addon.walkBench(WalkBenchKind.coldNative, 1000);
  t.is(native.walks, 1000);
  t.is(native.refs, 4000);
  const hits = addon.walkBench(WalkBenchKind.l1HitSame, 1000);
  t.is(hits.hits, 1000);
  t.is(hits.walks, 0);
});

test('a bad walk bench kind is a clear error', (t) => {
  t.throws(() => loadBenchAddon().walkBench(99, 10), { message: /unknown kind/ });
});
