/**
 * THP swap-out under the 6.x kernel: the swap cluster allocator (src/mm/swap-cluster.ts),
 * large folios written whole to a block device or split first for a swap file
 * (shrink_folio_list: thp_swpout / thp_swpout_fallback and the per-size swpout /
 * swpout_fallback), and swap-in one 4 KiB page at a time.
 */
import test from 'ava';
import { SwapClusters, SWAPFILE_CLUSTER } from '../src/mm/swap-cluster.ts';

/** A cluster allocator over `max` slots whose used set is a plain Set (what the swap map would say). */
function clusters(max: number, blkdev: boolean) {
  const used = new Set<number>();
  const c = new SwapClusters(max, (s) => used.has(s), blkdev);
  const alloc = (order: number) => {
    const s = c.alloc(order);
    for (let k = 0; s !== 0 && k < 1 << order; k++) used.add(s + k);
    return s;
  };
  const free = (slot: number, n = 1) => {
    for (let k = 0; k < n; k++) {
      used.delete(slot + k);
      c.free(slot + k);
    }
  };
  return { c, alloc, free };
}

test('swap clusters: a swap file refuses every large request, order 0 still works', (t) => {
  const { c, alloc } = clusters(4 * SWAPFILE_CLUSTER, false);
  for (let order = 1; order <= 9; order++) t.is(alloc(order), 0, `order ${order}`);
  t.is(alloc(0), 1); // slot 0 is the header
  t.is(c.nrFree(), 3);
});

test('swap clusters: a PMD-order request takes a whole free cluster, never cluster 0 (the header is in it)', (t) => {
  const { c, alloc } = clusters(4 * SWAPFILE_CLUSTER, true);
  t.is(alloc(9), SWAPFILE_CLUSTER);
  t.is(alloc(9), 2 * SWAPFILE_CLUSTER);
  t.is(alloc(9), 3 * SWAPFILE_CLUSTER);
  t.is(alloc(9), 0);
  t.is(c.nrFree(), 0);
  t.is(alloc(0), 1);
});

test('swap clusters: mTHP requests are naturally aligned and share a cluster of their order', (t) => {
  const { c, alloc } = clusters(4 * SWAPFILE_CLUSTER, true);
  const a = alloc(4); // 16 slots
  t.is(a, SWAPFILE_CLUSTER);
  t.is(alloc(4), SWAPFILE_CLUSTER + 16);
  t.is(alloc(2), 2 * SWAPFILE_CLUSTER); // another order takes its own cluster
  t.is(alloc(4), SWAPFILE_CLUSTER + 32);
  t.is(c.order[1], 4);
  t.is(c.order[2], 2);
});

test('swap clusters: order 0 fills cluster 0 first, then free clusters, then steals from others', (t) => {
  const { c, alloc } = clusters(2 * SWAPFILE_CLUSTER, true);
  const got: number[] = [];
  for (let i = 0; i < SWAPFILE_CLUSTER - 1; i++) got.push(alloc(0));
  t.deepEqual(got.slice(0, 3), [1, 2, 3]);
  t.is(got.at(-1), SWAPFILE_CLUSTER - 1);
  t.is(alloc(0), SWAPFILE_CLUSTER);
  t.is(c.order[1], 0);
});

test('swap clusters: a cluster whose slots are all freed becomes free again and takes a PMD-order folio', (t) => {
  const { c, alloc, free } = clusters(3 * SWAPFILE_CLUSTER, true);
  const a = alloc(9);
  const b = alloc(9);
  t.is(alloc(9), 0);
  free(a, SWAPFILE_CLUSTER);
  t.is(c.nrFree(), 1);
  t.is(alloc(9), a);
  free(b + 7); // one slot of the other cluster: not a whole free cluster
  t.is(alloc(9), 0);
});

test('swap clusters: the slots past the end of the file in the last cluster are never handed out', (t) => {
  const { alloc } = clusters(SWAPFILE_CLUSTER + 100, true);
  t.is(alloc(9), 0); // the last cluster is partial
  t.is(alloc(2), 0); // and order 0 (setup_clusters), so no order-2 run there
  const got = new Set<number>();
  for (;;) {
    const s = alloc(0);
    if (s === 0) break;
    got.add(s);
  }
  t.is(got.size, SWAPFILE_CLUSTER + 100 - 1);
  t.false(got.has(0));
  t.false(got.has(SWAPFILE_CLUSTER + 100));
});
