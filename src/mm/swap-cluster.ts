/**
 * The 6.x swap slot allocator (mm/swapfile.c cluster_alloc_swap_entry and
 * alloc_swap_scan_cluster, one device, the rotational-disk path: one global cursor per
 * order instead of per-CPU ones). The device is cut into clusters of SWAPFILE_CLUSTER =
 * HPAGE_PMD_NR slots (CONFIG_THP_SWAP). A cluster is free (no slot used) or holds slots of
 * one order (ci->order, set by the request that took it). A request of order k (a folio of
 * 2^k pages) takes a naturally aligned run of 2^k free slots:
 *   1. in the cluster the last request of that order used, from where it stopped
 *      (si->global_cluster->next[order]), when that cluster is still free or of order k
 *      (cluster_is_usable; any cluster for order 0);
 *   2. else in a nonfull cluster of order k (nonfull_clusters[order]; not for PMD order);
 *   3. else in a free cluster (free_clusters);
 *   4. order 0 only: in any cluster with a free slot (the frag lists, stolen from other
 *      orders), so a single slot is found while one is free.
 * A large request needs SWP_BLKDEV: on a swap file ("Swapfile is not block device so
 * unable to allocate large entries") it fails at once and reclaim splits the folio.
 *
 * The lists are kept as scans in cluster index order (deterministic; the kernel's are
 * FIFO lists that start in index order). Slot 0 (the swap header) and the slots past the
 * end of the file in the last cluster are used from the start, as setup_clusters marks
 * them, so cluster 0 is an order-0 cluster from swapon.
 */
import { HPAGE_PMD_NR } from '../util/address.ts';

/** SWAPFILE_CLUSTER with CONFIG_THP_SWAP: one PMD-sized folio's worth of slots. */
export const SWAPFILE_CLUSTER = HPAGE_PMD_NR;
const PMD_ORDER = Math.log2(HPAGE_PMD_NR);
/** ci->order of a cluster no slot of which is used. */
const CLUSTER_FREE = -1;

export class SwapClusters {
  readonly nr: number;
  /** Used slots per cluster (ci->count), the unusable ones included. */
  readonly count: Int32Array;
  /** ci->order, or CLUSTER_FREE. */
  readonly order: Int8Array;
  /** global_cluster->next[order]: the slot the next request of that order starts at, or −1. */
  private readonly next: Int32Array;

  /**
   * `max` slots on the device (header included); `used(slot)` says whether a slot is taken
   * (the swap map's view); `blkdev` is SWP_BLKDEV.
   */
  constructor(
    readonly max: number,
    private readonly used: (slot: number) => boolean,
    readonly blkdev: boolean,
  ) {
    this.nr = Math.ceil(max / SWAPFILE_CLUSTER);
    this.count = new Int32Array(this.nr);
    this.order = new Int8Array(this.nr).fill(CLUSTER_FREE);
    this.next = new Int32Array(PMD_ORDER + 1).fill(-1);
    // setup_clusters: the header slot and the tail past the file are never allocated.
    this.count[0] = 1;
    this.order[0] = 0;
    const tail = this.nr * SWAPFILE_CLUSTER - max;
    if (tail > 0) {
      this.count[this.nr - 1] += tail;
      this.order[this.nr - 1] = 0;
    }
  }

  private usable(slot: number): boolean {
    return slot > 0 && slot < this.max && !this.used(slot);
  }

  /** cluster_scan_range over [from, cluster end): the first aligned free run of 2^order slots. */
  private scan(ci: number, from: number, order: number): number {
    const n = 1 << order;
    const end = (ci + 1) * SWAPFILE_CLUSTER;
    for (let s = Math.max(from, ci * SWAPFILE_CLUSTER); s + n <= end; s += n) {
      let free = true;
      for (let k = 0; k < n && free; k++) free = this.usable(s + k);
      if (free) return s;
    }
    return 0;
  }

  /** alloc_swap_scan_cluster: take the run found in cluster `ci`, give the cluster the order. */
  private take(ci: number, slot: number, order: number): number {
    const n = 1 << order;
    this.count[ci] += n;
    if (this.order[ci] === CLUSTER_FREE) this.order[ci] = order;
    const next = slot + n;
    this.next[order] = next < (ci + 1) * SWAPFILE_CLUSTER ? next : -1;
    return slot;
  }

  private tryCluster(ci: number, from: number, order: number): number {
    const s = this.scan(ci, from, order);
    return s === 0 ? 0 : this.take(ci, s, order);
  }

  /**
   * cluster_alloc_swap_entry: the first slot of a naturally aligned run of 2^order free
   * slots, or 0 when none can be had (the caller then splits a large folio).
   */
  alloc(order: number): number {
    if (order > 0 && !this.blkdev) return 0;
    const n = 1 << order;
    const cur = this.next[order];
    if (cur > 0) {
      const ci = Math.floor(cur / SWAPFILE_CLUSTER);
      const o = this.order[ci];
      if (order === 0 || o === CLUSTER_FREE || o === order) {
        const s = this.tryCluster(ci, o === CLUSTER_FREE ? ci * SWAPFILE_CLUSTER : cur, order);
        if (s) return s;
      }
    }
    if (order < PMD_ORDER) {
      for (let ci = 0; ci < this.nr; ci++) {
        if (this.order[ci] !== order || this.count[ci] === 0 || this.count[ci] + n > SWAPFILE_CLUSTER) continue;
        const s = this.tryCluster(ci, 0, order);
        if (s) return s;
      }
    }
    for (let ci = 0; ci < this.nr; ci++) {
      if (this.count[ci] !== 0) continue;
      const s = this.tryCluster(ci, 0, order);
      if (s) return s;
    }
    if (order === 0) {
      for (let ci = 0; ci < this.nr; ci++) {
        if (this.count[ci] >= SWAPFILE_CLUSTER) continue;
        const s = this.tryCluster(ci, 0, 0);
        if (s) return s;
      }
    }
    return 0;
  }

  /** swap_range_free for one slot: a cluster whose last slot is freed becomes free. */
  free(slot: number): void {
    const ci = Math.floor(slot / SWAPFILE_CLUSTER);
    if (--this.count[ci] === 0) this.order[ci] = CLUSTER_FREE;
  }

  /** Clusters with no slot used (free_clusters), for tests and reports. */
  nrFree(): number {
    let f = 0;
    for (let ci = 0; ci < this.nr; ci++) if (this.count[ci] === 0) f++;
    return f;
  }
}
