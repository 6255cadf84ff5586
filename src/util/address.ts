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
