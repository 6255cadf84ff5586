/**
 * get_user_pages and follow_page (mm/memory.c; follow_trans_huge_pmd in huge_memory.c).
 * gup faults pages in as needed and takes one reference per page with get_page: on the
 * 4 KiB page, or — inside a THP — on the tail that maps the address (which also pins the
 * head: this is what __split_huge_page_refcount must respect).
 */
import type { Hva, Pfn } from '../util/address.ts';
import { PAGE_SIZE, alignDown, hvaAdd, pfnAdd } from '../util/address.ts';
import { ConfigError } from '../util/errors.ts';
import { SegvError } from './errors.ts';
import { handle_mm_fault } from './fault.ts';
import type { MmStruct } from './mm.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, pmd_index, pte_index } from './pgtable.ts';
import type { PageMapping } from './types.ts';
import { VM_READ, VM_WRITE } from './vma.ts';

const FOLL_WRITE = 1;
const FOLL_GET = 2;
const FOLL_TOUCH = 4;

/** follow_page with FOLL_* flags: the page mapping `addr`, or null when a fault is needed. */
function __follow_page(mm: MmStruct, addr: Hva, flags: number): Pfn | null {
  const pmd = mm.pgd.pmd_table(addr);
  if (!pmd) return null;
  const i = pmd_index(addr);
  const write = (flags & FOLL_WRITE) !== 0;
  if (pmd.pmd_trans_huge(i)) {
    // follow_trans_huge_pmd: pmd_trans_splitting would wait for the split; splits run to
    // completion synchronously in this model, so it is never seen here.
    if (write && !pmd.pmd_write(i)) return null;
    const page = pfnAdd(pmd.pmd_page(i), pte_index(addr));
    if (flags & FOLL_TOUCH) pmd.hbits[i] |= _PAGE_ACCESSED | _PAGE_DIRTY; // follow_trans_huge_pmd: pmd_mkyoung(pmd_mkdirty())
    if (flags & FOLL_GET) mm.host.policy.get_page(page); // 6.x: a folio reference (try_grab_folio)
    return page;
  }
  const t = pmd.pte[i];
  if (!t) return null;
  const j = pte_index(addr);
  if (!t.pte_present(j)) return null;
  if (write && !t.pte_write(j)) return null;
  const page = t.pte_pfn(j);
  if (flags & FOLL_TOUCH) t.bits[j] |= _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
  if (flags & FOLL_GET) mm.host.policy.get_page(page);
  return page;
}

/** follow_page (MmStructApi): what maps `addr` now, without faulting or touching. */
export function follow_page(mm: MmStruct, addr: Hva): PageMapping | null {
  const pmd = mm.pgd.pmd_table(addr);
  if (!pmd) return null;
  const i = pmd_index(addr);
  if (pmd.pmd_trans_huge(i)) {
    const head = pmd.pmd_page(i);
    return { pfn: pfnAdd(head, pte_index(addr)), huge: true, headPfn: head, writable: pmd.pmd_write(i) };
  }
  const t = pmd.pte[i];
  const j = pte_index(addr);
  if (!t || !t.pte_present(j)) return null;
  const pfn = t.pte_pfn(j);
  return { pfn, huge: false, headPfn: pfn, writable: t.pte_write(j) };
}

function checkVma(mm: MmStruct, addr: Hva, write: boolean): void {
  const vma = mm.vmaAt(addr);
  if (!vma) throw new SegvError(addr, 'get_user_pages: no VMA (EFAULT)');
  if (!(vma.flags & (write ? VM_WRITE : VM_READ))) throw new SegvError(addr, `get_user_pages: VMA not ${write ? 'writable' : 'readable'} (EFAULT)`);
}

/** get_user_pages: `n` pages from `addr`, faulted in and each pinned with get_page. */
export function get_user_pages(mm: MmStruct, addr: Hva, n: number, write: boolean): Pfn[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`get_user_pages: page count must be an integer ≥ 0, got ${n}`);
  const base = alignDown(addr, PAGE_SIZE);
  const out: Pfn[] = [];
  const flags = FOLL_GET | FOLL_TOUCH | (write ? FOLL_WRITE : 0);
  try {
    for (let k = 0; k < n; k++) {
      const a = hvaAdd(base, k * PAGE_SIZE);
      checkVma(mm, a, write);
      let page = __follow_page(mm, a, flags);
      while (page === null) {
        handle_mm_fault(mm, a, write);
        page = __follow_page(mm, a, flags);
      }
      out.push(page);
    }
  } catch (e) {
    for (const p of out) mm.host.policy.put_page(p);
    throw e;
  }
  return out;
}

/** The frame a CPU access to `addr` reaches, faulting as the MMU would (no reference taken). */
export function followForAccess(mm: MmStruct, addr: Hva, write: boolean): Pfn {
  const vma = mm.vmaAt(addr);
  if (!vma) throw new SegvError(addr, 'no VMA maps the address');
  if (write ? !(vma.flags & VM_WRITE) : !(vma.flags & VM_READ)) throw new SegvError(addr, `${write ? 'write' : 'read'} not permitted`);
  const flags = FOLL_TOUCH | (write ? FOLL_WRITE : 0);
  let page = __follow_page(mm, addr, flags);
  while (page === null) {
    handle_mm_fault(mm, addr, write);
    page = __follow_page(mm, addr, flags);
  }
  return page;
}
