// The MMU surface the addon exports to TS: the default TLB geometry (MMU-MODEL.md's table)
// and the native walk benchmark, whose counts must be the oracle's.
import test from 'ava';
import { loadAddon } from '../src/native/addon.ts';
import { WalkBenchKind } from '../src/native/types.ts';

test('the default TLB geometry is the table of MMU-MODEL.md', (t) => {
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
  const addon = loadAddon();
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
  t.throws(() => loadAddon().walkBench(99, 10), { message: /unknown kind/ });
});
