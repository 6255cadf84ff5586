/**
 * Address spaces as branded types.
 * Values are plain numbers at run time (all addresses here are < 2^53); the brand only stops
 * a Gva from being passed where a Gpa is expected. Conversions are named functions.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Guest virtual address. */
export type Gva = Brand<number, 'Gva'>;
/** Guest physical address. */
export type Gpa = Brand<number, 'Gpa'>;
/** Host virtual address in the simulated VMM process. */
export type Hva = Brand<number, 'Hva'>;
/** Host physical byte address: an offset into the arena. */
export type Hpa = Brand<number, 'Hpa'>;
/** Host page frame number: Hpa = Pfn * 4096. */
export type Pfn = Brand<number, 'Pfn'>;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const HPAGE_PMD_SHIFT = 21;
export const HPAGE_PMD_SIZE = 2 * 1024 * 1024;
/** Frames in one PMD-sized huge page (HPAGE_PMD_NR in the kernel). */
export const HPAGE_PMD_NR = 512;
export const GIGA_SIZE = 1024 * 1024 * 1024;

export const gva = (n: number): Gva => n as Gva;
export const gpa = (n: number): Gpa => n as Gpa;
export const hva = (n: number): Hva => n as Hva;
export const hpa = (n: number): Hpa => n as Hpa;
export const pfn = (n: number): Pfn => n as Pfn;

export const pfnToHpa = (p: Pfn): Hpa => (p * PAGE_SIZE) as Hpa;
export const hpaToPfn = (a: Hpa): Pfn => Math.floor(a / PAGE_SIZE) as Pfn;

/** Round down / up to a power-of-two alignment, for any address kind. */
export function alignDown<T extends number>(a: T, align: number): T {
  return (a - (a % align)) as T;
}
export function alignUp<T extends number>(a: T, align: number): T {
  const r = a % align;
  return (r === 0 ? a : a + (align - r)) as T;
}
export function isAligned(a: number, align: number): boolean {
  return a % align === 0;
}

// --- Checked arithmetic (rust-vmm vm-memory's checked_add / checked_offset_from) ----------
// An address plus a byte count is the same kind of address; these keep the brand without a
// cast at every call site and throw a RangeError instead of producing a non-address (a
// fraction, a negative, or beyond 2^53 where doubles stop being exact). Kept to one
// comparison each: they sit on the fault and split paths.

function checkedAddress(r: number, what: string): number {
  if (!Number.isSafeInteger(r) || r < 0) throw new RangeError(`${what}: ${r} is not an address`);
  return r;
}

/** The frame `n` frames after `p` (n may be negative). */
export function pfnAdd(p: Pfn, n: number): Pfn {
  return checkedAddress(p + n, 'pfnAdd') as Pfn;
}

/** Frames p, p+1, ..., p+n−1. */
export function* pfnRange(p: Pfn, n: number): Generator<Pfn> {
  for (let i = 0; i < n; i++) yield pfnAdd(p, i);
}

/** The host virtual address `bytes` after `a` (bytes may be negative). */
export function hvaAdd(a: Hva, bytes: number): Hva {
  return checkedAddress(a + bytes, 'hvaAdd') as Hva;
}

/** The guest physical address `bytes` after `a` (bytes may be negative). */
export function gpaAdd(a: Gpa, bytes: number): Gpa {
  return checkedAddress(a + bytes, 'gpaAdd') as Gpa;
}

/** Bytes from `base` up to `a` (checked_offset_from): throws when `a` is below `base`. */
export function hvaOffset(a: Hva, base: Hva): number {
  if (a < base) throw new RangeError(`hvaOffset: 0x${a.toString(16)} is below 0x${base.toString(16)}`);
  return a - base;
}

/** The virtual page number of `a` (linear_page_index: what page->index holds for anon pages). */
export function pageIndex(a: Hva): number {
  return Math.floor(a / PAGE_SIZE);
}

/** The first address of virtual page `index` (the inverse of pageIndex). */
export function pageIndexToHva(index: number): Hva {
  return checkedAddress(index * PAGE_SIZE, 'pageIndexToHva') as Hva;
}

/** The lower of two addresses of one kind (Math.min would lose the kind). */
export function minAddress<T extends number>(a: T, b: T): T {
  return a < b ? a : b;
}
