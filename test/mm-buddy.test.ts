import test from 'ava';
import type { Pfn } from '../src/util/address.ts';
import { PageArray } from '../src/mm/page.ts';
import { BuddyAllocator, MAX_ORDER } from '../src/mm/buddy.ts';

const p = (n: number) => n as Pfn;

test('a fresh buddy holds every frame in maximal order-10 blocks', (t) => {
  const b = new BuddyAllocator(new PageArray(4096));
  t.is(b.nr_free_pages(), 4096);
  t.is(b.nr_free[MAX_ORDER - 1], 4);
  t.is(b.listCount(MAX_ORDER - 1), 4);
});

test('allocation splits the lowest block and takes its lowest piece first', (t) => {
  const b = new BuddyAllocator(new PageArray(2048));
  t.is(b.alloc_pages(0), p(0));
  t.is(b.alloc_pages(0), p(1));
  t.is(b.alloc_pages(9), p(512));
  // orders 1..8 hold the remainder of block 0..511; order 9 and 10: one block each
  t.deepEqual([...b.nr_free], [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1]);
  t.is(b.nr_free_pages(), 2048 - 2 - 512);
});

test('freeing merges buddies back into one order-10 block', (t) => {
  const b = new BuddyAllocator(new PageArray(1024));
  const got: Pfn[] = [];
  for (let i = 0; i < 1024; i++) got.push(b.alloc_pages(0)!);
  t.is(b.alloc_pages(0), null);
  for (const pfn of got.reverse()) {
    b.pages._count[pfn] = 0;
    b.free_pages(pfn, 0);
  }
  t.deepEqual([...b.nr_free], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
});

test('fragmentation: one pinned frame per 2 MiB block makes every order-9 allocation fail', (t) => {
  const b = new BuddyAllocator(new PageArray(4096));
  const all: Pfn[] = [];
  for (let i = 0; i < 4096; i++) all.push(b.alloc_pages(0)!);
  for (const pfn of all) {
    if (pfn % 512 === 7) continue; // keep one frame of each 2 MiB block
    b.pages._count[pfn] = 0;
    b.free_pages(pfn, 0);
  }
  t.is(b.nr_free_pages(), 4096 - 8);
  t.is(b.alloc_pages(9), null);
  t.not(b.alloc_pages(8), null);
});

test('a double free is a kernel BUG, not silent corruption', (t) => {
  const b = new BuddyAllocator(new PageArray(1024));
  const pfn = b.alloc_pages(0)!;
  b.pages._count[pfn] = 0;
  b.free_pages(pfn, 0);
  t.throws(() => b.free_pages(pfn, 0), { message: /double free/ });
});
