/**
 * The scenarios of the THP differential check, each a kdiff script plus the documented,
 * explicit differences the modern kernel shows by design against the 2.6.38 model.
 * A difference is stated per step as "kernel = model + delta" (kB per VMA, by the VMA's
 * start offset; counters by kernel name) with the reason. Anything not stated here must
 * be equal (compare.ts). Regions stay a few MiB so a run takes milliseconds.
 */
import type { KernelEnv } from './kernel.ts';
import type { Setup, Step, StepReport } from './script.ts';

export const K = 1024;
export const M = 1024 * 1024;
const H = 2 * M;

/** The THP design the model host follows (HostConfig.kernel). */
export type ModelKernel = '2.6.38' | '6.x';

/**
 * Counters compared, by kernel name (see docs/testing.md "kdiff"). Against the 2.6.38
 * model only the first three, mapped (its thp_split → thp_split_pmd); against the 6.x
 * model every one, by the same name on both sides, and the per-size stats
 * `hugepages-<N>kB/<item>` of the sizes in PER_SIZE_COMPARED.
 */
export type KernelCounter =
  | 'thp_fault_alloc'
  | 'thp_fault_fallback'
  | 'thp_split_pmd'
  | 'thp_split_page'
  | 'thp_deferred_split_page'
  | 'thp_swpout'
  | 'thp_swpout_fallback'
  | 'pswpout'
  | 'thp_collapse_alloc'
  | 'thp_underused_split_page'
  | `hugepages-${string}kB/${string}`;
export const COUNTERS_6X: KernelCounter[] = [
  'thp_fault_alloc',
  'thp_fault_fallback',
  'thp_split_pmd',
  'thp_split_page',
  'thp_deferred_split_page',
  'thp_swpout',
  'thp_swpout_fallback',
  'pswpout',
  'thp_collapse_alloc',
  'thp_underused_split_page',
];
/** The per-size stats compared against the 6.x model (kdiff.c reads these sizes). */
export const PER_SIZE_COMPARED = {
  sizes: ['16kB', '64kB', '2048kB'],
  items: ['anon_fault_alloc', 'anon_fault_fallback', 'split', 'split_deferred', 'swpout', 'swpout_fallback'],
} as const;

export interface KernelDiff {
  /** Why the modern kernel differs from 2.6.38 here (printed with the comparison). */
  why: string;
  /** The report it applies to; default every report of the step. */
  who?: StepReport['who'];
  /** Only on kernels where this holds (e.g. use_zero_page=1). */
  when?: (env: KernelEnv) => boolean;
  /** kernel = model + delta, kB, for the VMA starting at this offset. */
  vma?: Record<number, { rss?: number; anon?: number; ahp?: number; swap?: number }>;
  /** kernel faults = model faults + delta (per process, getrusage). */
  faults?: number;
  /** kernel counter = mapped model counter + delta. */
  vm?: Partial<Record<KernelCounter, number>>;
  /** kernel memcg figure = model + delta (kB). */
  memcg?: { anon?: number; anon_thp?: number; swap?: number };
}

export interface Scenario {
  name: string;
  /**
   * The documented differences assume at least this kernel (major, minor); older
   * kernels behave differently again and the scenario is not judged there.
   */
  minKernel?: [number, number];
  /** What it shows. */
  about: string;
  steps: Step[];
  /** What the run changes on the machine (undone afterwards); the model host gets the same. */
  setup?: Setup;
  /** The model designs it is judged against (default both): the 6.x-only scenarios need the modern policy. */
  kernels?: ModelKernel[];
  /** Step index → the documented differences of that step, against the 2.6.38 model. */
  diffs?: Record<number, KernelDiff[]>;
  /**
   * Against the 6.x model: only what this machine cannot show (e.g. a swap file, so no
   * whole-THP swap-out); anything else must be equal.
   */
  diffs6?: Record<number, KernelDiff[]>;
}

const region = (len: number, off = 0): Step => ({ op: 'region', len, off });
const hugepage = (off: number, len: number): Step => ({ op: 'madvise', off, len, advice: 'hugepage' });
const write = (off: number, len: number, stride = 4 * K): Step => ({ op: 'touch', off, len, stride, write: true });
const read = (off: number, len: number, stride = 4 * K): Step => ({ op: 'touch', off, len, stride, write: false });

const zeroPage = (env: KernelEnv) => env.useZeroPage;
const SPLIT_ALL_WHY =
  '2.6.38 split_huge_page splits the page and hence every PMD mapping it, in every process sharing it; the modern kernel ' +
  '(split_huge_pmd, 4.5+) splits only the PMD of the process that needs it, the others keep their huge PMDs';
const ZERO_PAGE_WHY =
  'use_zero_page=1 (huge zero page, 3.8+): a read fault maps the shared huge zero page, not counted in Rss/AnonHugePages; ' +
  '2.6.38 has no huge zero page and allocates a THP on a read fault';

export const SCENARIOS: Scenario[] = [
  {
    name: 'aligned-madvise-all',
    about: 'aligned 2 MiB multiple + MADV_HUGEPAGE, touch all: all huge',
    steps: [region(16 * M), hugepage(0, 16 * M), write(0, 16 * M)],
  },
  {
    name: 'aligned-no-madvise',
    about: 'same without MADV_HUGEPAGE: no THP in madvise mode',
    steps: [region(16 * M), write(0, 16 * M)],
  },
  {
    name: 'unaligned-start',
    about: 'VMA starting 1 MiB into a 2 MiB range: only wholly covered ranges are huge',
    steps: [region(8 * M, 1 * M), hugepage(1 * M, 8 * M), write(1 * M, 8 * M)],
  },
  {
    name: 'size-not-2m-multiple',
    about: 'aligned start, length 7 MiB + 12 KiB: the tail is 4 KiB pages',
    steps: [region(7 * M + 12 * K), hugepage(0, 7 * M + 12 * K), write(0, 7 * M + 12 * K)],
  },
  {
    name: 'nohugepage-part-before-touch',
    about: 'MADV_HUGEPAGE on all, then MADV_NOHUGEPAGE on [5M, 9M) (VMA split), then touch all',
    steps: [region(16 * M), hugepage(0, 16 * M), { op: 'madvise', off: 5 * M, len: 4 * M, advice: 'nohugepage' }, write(0, 16 * M)],
  },
  {
    name: 'nohugepage-part-after-touch',
    about: 'touch all huge, then MADV_NOHUGEPAGE on [5M, 9M): the THPs across 5M and 9M split (VMA edges), [6M, 8M) stays huge',
    steps: [region(16 * M), hugepage(0, 16 * M), write(0, 16 * M), { op: 'madvise', off: 5 * M, len: 4 * M, advice: 'nohugepage' }, write(0, 16 * M)],
  },
  {
    name: 'one-byte-per-2m-huge',
    about: 'one written byte per 2 MiB range with MADV_HUGEPAGE: a whole THP each',
    steps: [region(16 * M), hugepage(0, 16 * M), write(1 * M, 15 * M, H)],
  },
  {
    name: 'one-byte-per-2m-4k',
    about: 'one written byte per 2 MiB range without MADV_HUGEPAGE: one 4 KiB page each; MADV_HUGEPAGE afterwards does not make the populated PMDs huge',
    steps: [region(16 * M), write(0, 16 * M, H), hugepage(0, 16 * M), write(1 * M, 15 * M, H)],
  },
  {
    name: 'madvise-remerge',
    about: 'MADV_NOHUGEPAGE on the aligned [2M, 4M) splits the VMA in three (no THP split); MADV_HUGEPAGE again merges it back',
    steps: [
      region(8 * M),
      hugepage(0, 8 * M),
      write(0, 8 * M),
      { op: 'madvise', off: 2 * M, len: 2 * M, advice: 'nohugepage' },
      hugepage(2 * M, 2 * M),
      { op: 'mprotect', off: 6 * M, len: 2 * M, prot: 'none' },
    ],
  },
  {
    name: 'partial-munmap',
    about: 'munmap [3M, 4M) of a huge range, then the whole aligned range [4M, 6M)',
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'munmap', off: 3 * M, len: 1 * M }, { op: 'munmap', off: 4 * M, len: 2 * M }],
    // Model: split_huge_page (thp_split, the 256 unmapped 4 KiB pages freed at once).
    // Kernel: split_huge_pmd (thp_split_pmd) and the THP queued for deferred split
    // (thp_deferred_split_page); it keeps all 2 MiB until the shrinker splits it, but
    // smaps counts only what is mapped, so Rss/AnonHugePages agree. thp_split ↔
    // thp_split_pmd is the standing counter mapping (compare.ts), no delta needed.
  },
  {
    name: 'mprotect-part',
    about: 'mprotect(PROT_READ) [1M, 3M) splits two THPs, aligned [4M, 6M) none; back to RW merges; writes reuse',
    steps: [
      region(8 * M),
      hugepage(0, 8 * M),
      write(0, 8 * M),
      { op: 'mprotect', off: 1 * M, len: 2 * M, prot: 'r' },
      { op: 'mprotect', off: 4 * M, len: 2 * M, prot: 'r' },
      { op: 'mprotect', off: 0, len: 8 * M, prot: 'rw' },
      write(0, 8 * M),
    ],
    minKernel: [6, 0],
    diffs: {
      6: [
        {
          why:
            'mprotect back to PROT_READ|PROT_WRITE: since 6.0 change_protection makes exclusive anonymous PTEs/PMDs writable at once ' +
            '(MM_CP_TRY_CHANGE_WRITABLE), so the writes take no fault; 2.6.38 leaves them read-only (PAGE_COPY) and every ' +
            'write-protected PTE (512 in [1M, 3M)) and PMD ([4M, 6M)) takes one do_wp_page / do_huge_pmd_wp_page reuse fault',
          faults: -513,
        },
      ],
    },
  },
  {
    name: 'dontneed-part',
    about: 'MADV_DONTNEED of 64 KiB inside a THP (split), of an aligned 2 MiB (zapped whole), then touch all again',
    steps: [
      region(8 * M),
      hugepage(0, 8 * M),
      write(0, 8 * M),
      { op: 'madvise', off: 1 * M, len: 64 * K, advice: 'dontneed' },
      { op: 'madvise', off: 4 * M, len: 2 * M, advice: 'dontneed' },
      write(0, 8 * M),
    ],
  },
  {
    name: 'fork-child-writes-huge',
    about: 'fork; the child writes one byte of a shared THP; the child exits; the parent (sole owner again) writes one byte per 2 MiB',
    // The parent writes one byte per 2 MiB: with a 4 KiB stride the kernel (under a
    // hypervisor) takes extra spurious faults, because x86 upgrades a PMD to writable
    // without a TLB flush and stale 4 KiB-splintered TLB entries fault once more each.
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'fork' }, { ...write(2 * M, 4 * K), in: 'child' }, { op: 'exit' }, write(0, 8 * M, H)],
    minKernel: [5, 8],
    diffs: {
      4: [
        {
          why:
            'COW of a huge PMD: 2.6.38 do_huge_pmd_wp_page copies the whole THP into a new one (thp_fault_alloc); ' +
            'since 5.8 the kernel splits the PMD (thp_split_pmd) and copies only the written 4 KiB page, so the ' +
            "child's range is PTE-mapped (AnonHugePages −2 MiB, Rss unchanged)",
          vma: { 0: { ahp: -2048 } },
          vm: { thp_fault_alloc: -1, thp_split_pmd: +1 },
        },
      ],
    },
  },
  {
    name: 'fork-parent-writes-shared',
    about: 'fork; the parent writes one byte of a THP the child still shares; the child looks; exit',
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'fork' }, write(4 * M, 4 * K), { op: 'report', in: 'child' }, { op: 'exit' }],
    minKernel: [5, 8],
    diffs: {
      4: [
        {
          why:
            "COW of a shared huge PMD in the parent: 2.6.38 copies the THP (thp_fault_alloc, the parent's range stays huge); " +
            "since 5.8 the parent's PMD is split (thp_split_pmd) and one 4 KiB page copied; the child's PMD is untouched in both",
          vma: { 0: { ahp: -2048 } },
          vm: { thp_fault_alloc: -1, thp_split_pmd: +1 },
        },
      ],
      6: [{ why: "(carried) the parent's [4M, 6M) stays PTE-mapped in the kernel after the child exits", who: 'self', vma: { 0: { ahp: -2048 } } }],
    },
  },
  {
    name: 'fork-munmap-shared',
    about: "fork; the parent munmaps [7M, 8M) of a THP the child shares; the child looks; exit",
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'fork' }, { op: 'munmap', off: 7 * M, len: 1 * M }, { op: 'report', in: 'child' }, { op: 'exit' }],
    diffs: {
      5: [
        {
          why: SPLIT_ALL_WHY + " (the child's [6M, 8M))",
          vma: { 0: { ahp: +2048 } },
        },
      ],
    },
  },
  {
    name: 'fork-child-mprotect-shared',
    about: 'fork; the child mprotects [1M, 3M) read-only across two THPs it shares with the parent; the parent looks',
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'fork' }, { op: 'mprotect', off: 1 * M, len: 2 * M, prot: 'r', in: 'child' }, { op: 'report' }, { op: 'exit' }],
    diffs: {
      5: [{ why: SPLIT_ALL_WHY + " (the parent's [0, 4M))", vma: { 0: { ahp: +4096 } } }],
      6: [{ why: '(carried) the parent keeps its huge PMDs in the kernel', vma: { 0: { ahp: +4096 } } }],
    },
  },
  {
    name: 'fork-child-writes-split-and-huge',
    about: 'a THP split by MADV_DONTNEED of one page, three still huge; fork; the child writes every page',
    steps: [
      region(8 * M),
      hugepage(0, 8 * M),
      write(0, 8 * M),
      { op: 'madvise', off: 1 * M, len: 4 * K, advice: 'dontneed' },
      { op: 'fork' },
      { ...write(0, 8 * M), in: 'child' },
      { op: 'exit' },
      write(0, 8 * M, H),
    ],
    minKernel: [5, 8],
    diffs: {
      5: [
        {
          why:
            'COW at scale: the split range COWs page by page in both (512 faults); each of the three huge PMDs is one fault and a ' +
            'whole-THP copy in 2.6.38 (thp_fault_alloc 3, AnonHugePages kept) but a PMD split and 512 4 KiB copies since 5.8 ' +
            '(thp_split_pmd 3, 3 × 511 more faults, AnonHugePages 0)',
          vma: { 0: { ahp: -6144 } },
          faults: 3 * 511,
          vm: { thp_fault_alloc: -3, thp_split_pmd: +3 },
        },
      ],
    },
  },
  {
    name: 'map-fixed-over-huge',
    about: 'mmap(MAP_FIXED) over [3M, 5M) of a huge region: the two THPs it cuts are split, the new VMA (no MADV_HUGEPAGE) is 4 KiB',
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'map', off: 3 * M, len: 2 * M }, write(0, 8 * M)],
  },
  {
    name: 'map-adjacent-merge',
    about: 'a second mapping right after the first merges with it (same flags); MADV_HUGEPAGE on the merged VMA then covers [2M, 4M)',
    steps: [region(8 * M), { op: 'munmap', off: 3 * M, len: 5 * M }, { op: 'map', off: 3 * M, len: 5 * M }, hugepage(0, 8 * M), write(0, 8 * M)],
  },
  {
    name: 'dontneed-whole-then-read',
    about: 'MADV_DONTNEED of whole THPs, then read faults, then writes',
    steps: [region(4 * M), hugepage(0, 4 * M), write(0, 4 * M), { op: 'madvise', off: 0, len: 4 * M, advice: 'dontneed' }, read(0, 4 * M), write(0, 4 * M)],
    minKernel: [6, 13],
    diffs: {
      4: [{ why: ZERO_PAGE_WHY, when: zeroPage, vma: { 0: { rss: -4096, anon: -4096, ahp: -4096 } }, vm: { thp_fault_alloc: -2 } }],
      5: [{ why: 'use_zero_page=1: the first write to each huge-zero-page PMD allocates the THP (do_huge_zero_wp_pmd)', when: zeroPage, faults: +2, vm: { thp_fault_alloc: +2 } }],
    },
  },
  {
    name: 'read-then-write-huge',
    about: 'read every page of a MADV_HUGEPAGE region, then write one byte per 2 MiB',
    steps: [region(8 * M), hugepage(0, 8 * M), read(0, 8 * M), write(0, 8 * M, H)],
    minKernel: [6, 13],
    diffs: {
      2: [{ why: ZERO_PAGE_WHY, when: zeroPage, vma: { 0: { rss: -8192, anon: -8192, ahp: -8192 } }, vm: { thp_fault_alloc: -4 } }],
      3: [
        {
          why:
            'use_zero_page=1: the first write to a huge-zero-page PMD allocates the THP now (do_huge_zero_wp_pmd, 6.13+; ' +
            '5.8–6.12 split it into 4 KiB zero-page PTEs instead): one fault and thp_fault_alloc per range; ' +
            'the model allocated the THPs at the read and its PMDs are already writable',
          when: zeroPage,
          faults: +4,
          vm: { thp_fault_alloc: +4 },
        },
      ],
    },
  },
  {
    name: 'read-then-write-4k',
    about: 'without MADV_HUGEPAGE: reads map the 4 KiB zero page (not in Rss), writes replace it',
    steps: [region(4 * M), read(0, 4 * M), write(0, 4 * M)],
  },
  // --- the modern (6.x) policy only: deferred split, huge zero page, swap-out, mTHP -----
  {
    name: 'deferred-split-reclaim',
    about:
      'munmap [3M, 4M) and MADV_DONTNEED 64 KiB at 5M (split_huge_pmd: both THPs queued whole on the deferred split list), then memcg reclaim: the shrinker splits them and frees the 320 unmapped pages',
    setup: { memcg: true },
    kernels: ['6.x'],
    steps: [
      region(8 * M),
      hugepage(0, 8 * M),
      write(0, 8 * M),
      { op: 'munmap', off: 3 * M, len: 1 * M },
      { op: 'madvise', off: 5 * M, len: 64 * K, advice: 'dontneed' },
      { op: 'reclaim' },
    ],
  },
  {
    name: 'underused-thp-reclaim',
    about:
      'khugepaged/max_ptes_none 64: one byte written in each of 8 pages of the first THP (504 zero-filled) and in every page of the second; ' +
      'memcg reclaim runs the deferred split shrinker: the first is underused (thp_underused_split_page), split, its 504 zero-filled pages ' +
      'mapped to the shared zero page and freed; the second stays whole',
    minKernel: [6, 12],
    setup: { memcg: true, sysfs: { 'khugepaged/max_ptes_none': '64', shrink_underused: '1' } },
    kernels: ['6.x'],
    steps: [region(4 * M), hugepage(0, 4 * M), write(0, 8 * 4 * K), write(2 * M, 2 * M), { op: 'reclaim' }],
  },
  {
    name: 'underused-thp-off',
    about:
      'the same with shrink_underused 0: the new THPs are not queued (deferred_split_folio returns at once), so memcg reclaim splits neither',
    minKernel: [6, 12],
    setup: { memcg: true, sysfs: { 'khugepaged/max_ptes_none': '64', shrink_underused: '0' } },
    kernels: ['6.x'],
    steps: [region(4 * M), hugepage(0, 4 * M), write(0, 8 * 4 * K), write(2 * M, 2 * M), { op: 'reclaim' }],
  },
  {
    name: 'huge-zero-page-fork',
    about:
      'read faults on a MADV_HUGEPAGE range map the huge zero page (Rss 0); a forked child reads it too without faults; writes allocate THPs; MADV_DONTNEED then read maps the zero page again',
    kernels: ['6.x'],
    steps: [
      region(8 * M),
      hugepage(0, 8 * M),
      read(0, 8 * M),
      { op: 'fork' },
      { ...read(0, 8 * M), in: 'child' },
      { op: 'exit' },
      write(0, 8 * M, H),
      { op: 'madvise', off: 0, len: 2 * M, advice: 'dontneed' },
      read(0, 8 * M),
    ],
    // thp_zero_page_alloc is not compared: it counts when the system-wide huge zero folio
    // is (re)allocated, which on a running machine happened long before (or by another
    // process); the model's fresh host allocates it at its first read fault.
  },
  {
    name: 'thp-swapout',
    about: 'four THPs reclaimed whole to swap on a block device (thp_swpout; memcg reclaim), then read back 4 KiB at a time',
    setup: { memcg: true, swapBytes: 64 * M, swapBlkdev: true },
    kernels: ['6.x'],
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'reclaim' }, read(0, 8 * M)],
  },
  {
    name: 'thp-swapout-file',
    about: 'the same to a swap file: no large swap entries there, so each THP is split first (thp_swpout_fallback)',
    setup: { memcg: true, swapBytes: 64 * M },
    kernels: ['6.x'],
    steps: [region(8 * M), hugepage(0, 8 * M), write(0, 8 * M), { op: 'reclaim' }, read(0, 8 * M)],
  },
  {
    name: 'mthp-64k-16k',
    about:
      'hugepages-64kB and -16kB madvise: a 2 MiB-aligned part of a MADV_HUGEPAGE VMA gets a PMD THP, the rest 64 KiB folios, a tail too small for 64 KiB 16 KiB folios; munmap of one page queues a 64 KiB folio for deferred split',
    setup: { sysfs: { 'hugepages-64kB/enabled': 'madvise', 'hugepages-16kB/enabled': 'madvise' } },
    kernels: ['6.x'],
    steps: [
      region(3 * M + 48 * K),
      hugepage(0, 3 * M + 48 * K),
      write(0, 3 * M + 48 * K),
      { op: 'munmap', off: 2 * M + 32 * K, len: 4 * K },
      { op: 'madvise', off: 2 * M + 128 * K, len: 64 * K, advice: 'dontneed' },
      write(2 * M + 64 * K, 1 * M - 16 * K),
    ],
  },
  {
    name: 'khugepaged-collapse-mthp',
    about:
      'a 2 MiB range filled by 64 KiB folios (hugepages-64kB always, no MADV_HUGEPAGE), then MADV_HUGEPAGE: khugepaged collapses the 32 folios into one PMD THP',
    setup: { sysfs: { 'hugepages-64kB/enabled': 'always', 'khugepaged/scan_sleep_millisecs': '10', 'khugepaged/pages_to_scan': '65536' } },
    kernels: ['6.x'],
    steps: [region(2 * M), write(0, 2 * M), hugepage(0, 2 * M), { op: 'khugepaged' }],
  },
  {
    name: 'mthp-swapout',
    about: '64 KiB folios reclaimed whole to swap on a block device (memcg reclaim), then read back',
    setup: { memcg: true, swapBytes: 32 * M, swapBlkdev: true, sysfs: { 'hugepages-64kB/enabled': 'madvise' } },
    kernels: ['6.x'],
    steps: [region(1 * M), hugepage(0, 1 * M), write(0, 1 * M), { op: 'reclaim' }, read(0, 1 * M)],
  },
  {
    name: 'mthp-swapout-file',
    about: 'the same to a swap file: each 64 KiB folio is split first (swpout_fallback)',
    setup: { memcg: true, swapBytes: 32 * M, sysfs: { 'hugepages-64kB/enabled': 'madvise' } },
    kernels: ['6.x'],
    steps: [region(1 * M), hugepage(0, 1 * M), write(0, 1 * M), { op: 'reclaim' }, read(0, 1 * M)],
  },
  // khugepaged scans on its own (every 10 ms here): it only looks at VM_HUGEPAGE VMAs in
  // madvise mode, so each scenario sets its state up first and madvises last.
  {
    name: 'khugepaged-max-ptes-shared',
    about:
      'a 4 KiB-mapped 2 MiB range shared with a forked child: khugepaged does not collapse it while more than max_ptes_shared (256) PTEs map shared pages; once the child has COWed 300 pages (212 shared) it does',
    setup: { sysfs: { 'khugepaged/scan_sleep_millisecs': '10', 'khugepaged/pages_to_scan': '65536' } },
    kernels: ['6.x'],
    steps: [
      region(2 * M),
      write(0, 2 * M),
      { op: 'fork' },
      hugepage(0, 2 * M),
      { op: 'khugepaged' },
      // not eligible while the child writes, so khugepaged (10 ms scans) cannot collapse it
      // half-way through and put its count in the write's step
      { op: 'madvise', off: 0, len: 2 * M, advice: 'nohugepage' },
      { ...write(0, 300 * 4 * K), in: 'child' },
      hugepage(0, 2 * M),
      { op: 'khugepaged' },
      { op: 'report', in: 'child' },
      { op: 'exit' },
    ],
  },
  {
    name: 'khugepaged-max-ptes-swap',
    about:
      'a 4 KiB-mapped 2 MiB range swapped out, then read back but for 65 pages: khugepaged leaves it (more than max_ptes_swap, 64, swap PTEs); with one more page read back it collapses (swapping the 64 in)',
    setup: { memcg: true, swapBytes: 16 * M, sysfs: { 'khugepaged/scan_sleep_millisecs': '10', 'khugepaged/pages_to_scan': '65536' } },
    kernels: ['6.x'],
    steps: [
      region(2 * M),
      write(0, 2 * M),
      { op: 'reclaim' },
      read(0, 2 * M - 65 * 4 * K),
      hugepage(0, 2 * M),
      { op: 'khugepaged' },
      { op: 'madvise', off: 0, len: 2 * M, advice: 'nohugepage' },
      read(2 * M - 65 * 4 * K, 4 * K),
      hugepage(0, 2 * M),
      { op: 'khugepaged' },
    ],
  },
];
