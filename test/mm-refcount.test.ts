import test from 'ava';
import type { Pfn } from '../src/util/address.ts';
import { HPAGE_PMD_NR } from '../src/util/address.ts';
import { PageArray, PG_anon, PG_compound_lock, PG_head, PG_tail } from '../src/mm/page.ts';
import { BuddyAllocator } from '../src/mm/buddy.ts';
import {
  __split_huge_page_refcount,
  compound_lock,
  compound_unlock,
  get_page,
  prep_compound_page,
  put_page,
  registerFreePages,
} from '../src/mm/refcount.ts';

function setup(frames = 2048) {
  const pages = new PageArray(frames);
  const buddy = new BuddyAllocator(pages);
  registerFreePages(pages, (pfn, order) => buddy.free_pages(pfn, order));
  return { pages, buddy };
}

function thp(pages: PageArray, buddy: BuddyAllocator): Pfn {
  const head = buddy.alloc_pages(9)!;
  prep_compound_page(pages, head, 9);
  pages.setFlag(head, PG_anon);
  pages._mapcount[head] = 0; // one huge PMD maps it
  pages.mapping[head] = 42;
  pages.index[head] = 0x1000;
  return head;
}

test('get_page on a tail takes the reference on both tail and head', (t) => {
  const { pages, buddy } = setup();
  const head = thp(pages, buddy);
  get_page(pages, (head + 5) as Pfn);
  t.is(pages._count[head + 5], 1);
  t.is(pages._count[head], 2);
  put_page(pages, (head + 5) as Pfn);
  t.is(pages._count[head + 5], 0);
  t.is(pages._count[head], 1);
});

test('__split_huge_page_refcount: head loses tail pins, tails get mapcount plus their pins', (t) => {
  const { pages, buddy } = setup();
  const head = thp(pages, buddy);
  // a second PMD mapping (fork) and two gup pins on tail 3, one on tail 100
  pages._count[head]++;
  pages._mapcount[head]++;
  for (const tail of [3, 3, 100]) get_page(pages, (head + tail) as Pfn);
  t.is(pages._count[head], 2 + 3);
  get_page(pages, head); // the splitter's own reference
  __split_huge_page_refcount(pages, head);
  t.is(pages._count[head], 3); // 2 mappings + the splitter
  t.is(pages._count[head + 3], 2 + 2);
  t.is(pages._count[head + 100], 2 + 1);
  t.is(pages._count[head + 200], 2);
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    t.false(pages.PageCompound((head + i) as Pfn));
    t.is(pages._mapcount[head + i], 1);
    t.is(pages.mapping[head + i], 42);
    t.is(pages.index[head + i], 0x1000 + i);
    t.true(pages.PageAnon((head + i) as Pfn));
  }
  put_page(pages, head);
});

test('a split with no mapping frees every unpinned tail and keeps the pinned one', (t) => {
  const { pages, buddy } = setup(1024);
  const head = thp(pages, buddy);
  pages._mapcount[head] = -1; // unmapped, held by one reference only
  get_page(pages, (head + 9) as Pfn);
  const freeBefore = buddy.nr_free_pages();
  __split_huge_page_refcount(pages, head);
  t.is(buddy.nr_free_pages(), freeBefore + 510);
  t.is(pages._count[head], 1);
  t.is(pages._count[head + 9], 1);
  put_page(pages, (head + 9) as Pfn); // the gup holder lets go after the split
  put_page(pages, head);
  t.is(buddy.nr_free_pages(), 1024);
});

test('put_page on a tail after a split releases it as a regular page', (t) => {
  const { pages, buddy } = setup(1024);
  const head = thp(pages, buddy);
  get_page(pages, (head + 1) as Pfn);
  __split_huge_page_refcount(pages, head);
  t.false(pages.PageTail((head + 1) as Pfn));
  t.is(pages._count[head + 1], 2);
  put_page(pages, (head + 1) as Pfn);
  t.is(pages._count[head + 1], 1);
  t.is(pages._count[head], 1);
});

test('the last put_page of a compound page frees the whole order-9 block', (t) => {
  const { pages, buddy } = setup(1024);
  const head = thp(pages, buddy);
  pages._mapcount[head] = -1;
  put_page(pages, head);
  t.is(buddy.nr_free_pages(), 1024);
  t.is(pages.flags[head] & (PG_head | PG_tail), 0);
  t.is(pages.flags[head + 1] & PG_tail, 0);
});

test('compound_lock is a bit spinlock in the head flags', (t) => {
  const { pages, buddy } = setup(1024);
  const head = thp(pages, buddy);
  compound_lock(pages, head);
  t.true(pages.testFlag(head, PG_compound_lock));
  compound_unlock(pages, head);
  t.false(pages.testFlag(head, PG_compound_lock));
});
