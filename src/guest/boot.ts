/**
 * The boot protocol (docs/guest-abi.md "Image and boot"): the exact layout after the image —
 * identity-mapping page tables, the boot-info page with the command line, the GDT page,
 * the 64 KiB stack — and the initial vCPU state. The layout is specified to the byte so
 * every implementation (this VMM, the QEMU trampoline, the KVM loader) produces identical
 * structures; planBoot() is pure (addresses only) and checks that everything fits before
 * writeBoot() touches guest memory.
 */
import { alignUp, gpa, GIGA_SIZE, HPAGE_PMD_SIZE, PAGE_SIZE, type Gpa } from '../util/address.ts';
import { ConfigError } from '../util/errors.ts';
import type { GuestMemory } from './memory.ts';

export const BOOT_INFO_MAGIC = 0x3130544f4f425648n; // "HVBOOT01"
export const CMDLINE_OFFSET = 256;
export const CMDLINE_MAX = 3000;
export const MAX_ARGS = 16;
export const STACK_SIZE = 64 * 1024;
export const GDT_CODE64 = 0x00209a0000000000n;
export const GDT_DATA = 0x0000920000000000n;
export const GDT_LIMIT = 23;
export const SEL_CODE = 0x08;
export const SEL_DATA = 0x10;

/** Page-table entry bits the boot tables use: present, writable, and PS for a large leaf. */
const PTE_P_RW = 0x3;
const PTE_PS = 0x80;

export const CR0_PE = 1n << 0n;
export const CR0_ET = 1n << 4n;
export const CR0_NE = 1n << 5n;
export const CR0_WP = 1n << 16n;
export const CR0_PG = 1n << 31n;
export const CR4_PAE = 1n << 5n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;

export type GuestPageSize = '4k' | '2m' | '1g';
export const GUEST_PAGE_BYTES: Record<GuestPageSize, number> = { '4k': PAGE_SIZE, '2m': HPAGE_PMD_SIZE, '1g': GIGA_SIZE };

export interface BootParams {
  memorySize: number;
  /** E: the end of the image (max p_paddr + p_memsz). */
  imageEnd: Gpa;
  pageSize: GuestPageSize;
  /** Command line; absent or empty → boot-info field 40 is 0. */
  cmdline?: string;
  /** u64 parameters for the guest (≤ 16). */
  args?: readonly (bigint | number)[];
}

/** One boot page table: where it sits and what it maps (entries derived from the plan). */
export interface PlannedTable {
  gpa: Gpa;
  level: 4 | 3 | 2 | 1; // PML4, PDPT, PD, PT
  /** Entries that are not implied: [index, value]. A PT's entries are implied by `base`. */
  entries: [number, number][];
  /** PT only: the guest-physical address its entry 0 maps. */
  base: number;
}

export interface BootLayout {
  memorySize: number;
  pageSize: GuestPageSize;
  tablesStart: Gpa;
  tables: PlannedTable[];
  pml4: Gpa;
  bootInfo: Gpa;
  cmdline: Gpa | 0;
  gdt: Gpa;
  stackBottom: Gpa;
  stackTop: Gpa;
  freeStart: Gpa;
  args: bigint[];
  cmdlineBytes: Uint8Array | null;
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

function validateArgs(args: readonly (bigint | number)[]): bigint[] {
  if (args.length > MAX_ARGS) throw new ConfigError(`too many guest args: ${args.length} (at most ${MAX_ARGS})`);
  return args.map((a, i) => {
    const v = typeof a === 'bigint' ? a : Number.isSafeInteger(a) ? BigInt(a) : -1n;
    if (v < 0n || v >= 1n << 64n) throw new ConfigError(`guest arg ${i} must be an integer in [0, 2^64), got ${String(a)}`);
    return v;
  });
}

function validateCmdline(cmdline: string | undefined): Uint8Array | null {
  if (cmdline === undefined || cmdline === '') return null;
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.includes(0)) throw new ConfigError('the command line must not contain NUL bytes');
  if (bytes.length > CMDLINE_MAX) throw new ConfigError(`command line too long: ${bytes.length} bytes (at most ${CMDLINE_MAX})`);
  return bytes;
}

/**
 * Plans the boot tables in the order docs/guest-abi.md fixes: the PML4; then per GiB in
 * ascending order its PDPT (if not yet present), then — unless a 1 GiB leaf maps it — its
 * PD, and a PT right when a 2 MiB chunk needing 4 KiB entries is reached.
 */
function planTables(memorySize: number, pageBytes: number, start: number): PlannedTable[] {
  let next = start;
  const alloc = (level: PlannedTable['level'], base = 0): PlannedTable => {
    const t: PlannedTable = { gpa: gpa(next), level, entries: [], base };
    next += PAGE_SIZE;
    tables.push(t);
    return t;
  };
  const tables: PlannedTable[] = [];
  const pml4 = alloc(4);
  const pdpts = new Map<number, PlannedTable>();
  const gibs = Math.ceil(memorySize / GIGA_SIZE);
  for (let g = 0; g < gibs; g++) {
    const gBase = g * GIGA_SIZE;
    const i4 = Math.floor(g / 512);
    let pdpt = pdpts.get(i4);
    if (!pdpt) {
      pdpt = alloc(3);
      pdpts.set(i4, pdpt);
      pml4.entries.push([i4, pdpt.gpa + PTE_P_RW]);
    }
    if (pageBytes >= GIGA_SIZE && gBase + GIGA_SIZE <= memorySize) {
      pdpt.entries.push([g % 512, gBase + PTE_P_RW + PTE_PS]);
      continue;
    }
    const pd = alloc(2);
    pdpt.entries.push([g % 512, pd.gpa + PTE_P_RW]);
    for (let c = 0; c < 512; c++) {
      const cBase = gBase + c * HPAGE_PMD_SIZE;
      if (cBase >= memorySize) break;
      if (pageBytes >= HPAGE_PMD_SIZE && cBase + HPAGE_PMD_SIZE <= memorySize) {
        pd.entries.push([c, cBase + PTE_P_RW + PTE_PS]);
      } else {
        const pt = alloc(1, cBase);
        pd.entries.push([c, pt.gpa + PTE_P_RW]);
      }
    }
  }
  return tables;
}

/** Computes the whole boot layout; throws ConfigError when it does not fit or a parameter is bad. */
export function planBoot(p: BootParams): BootLayout {
  const { memorySize } = p;
  if (!Number.isSafeInteger(memorySize) || memorySize <= 0 || memorySize % PAGE_SIZE !== 0) {
    throw new ConfigError(`guest memory size must be a positive multiple of 4 KiB, got ${memorySize}`);
  }
  const pageBytes = GUEST_PAGE_BYTES[p.pageSize];
  if (pageBytes === undefined) throw new ConfigError(`guest page size must be one of 4k, 2m, 1g, got ${String(p.pageSize)}`);
  const args = validateArgs(p.args ?? []);
  const cmdlineBytes = validateCmdline(p.cmdline);

  const tablesStart = alignUp(p.imageEnd, PAGE_SIZE);
  const tables = planTables(memorySize, pageBytes, tablesStart);
  const bootInfo = tablesStart + tables.length * PAGE_SIZE;
  const gdt = bootInfo + PAGE_SIZE;
  const stackBottom = gdt + PAGE_SIZE;
  const freeStart = stackBottom + STACK_SIZE;
  if (freeStart > memorySize) {
    throw new ConfigError(
      `guest memory too small: ${memorySize} bytes (${hex(memorySize)}), but the image ends at ${hex(p.imageEnd)} and ` +
        `${tables.length} boot page tables, the boot-info and GDT pages and the 64 KiB stack need memory up to ${hex(freeStart)}`,
    );
  }
  return {
    memorySize,
    pageSize: p.pageSize,
    tablesStart,
    tables,
    pml4: tables[0].gpa,
    bootInfo: gpa(bootInfo),
    cmdline: cmdlineBytes ? gpa(bootInfo + CMDLINE_OFFSET) : 0,
    gdt: gpa(gdt),
    stackBottom: gpa(stackBottom),
    stackTop: gpa(freeStart),
    freeStart: gpa(freeStart),
    args,
    cmdlineBytes,
  };
}

function setU64(dv: DataView, off: number, v: number | bigint): void {
  dv.setBigUint64(off, BigInt(v), true);
}

/** Writes the tables, the boot-info page and the GDT page of a planned layout. */
export function writeBoot(layout: BootLayout, mem: GuestMemory): void {
  if (mem.size !== layout.memorySize) throw new ConfigError(`boot layout planned for ${layout.memorySize} bytes, memory has ${mem.size}`);
  const page = new Uint8Array(PAGE_SIZE);
  const dv = new DataView(page.buffer);
  for (const t of layout.tables) {
    page.fill(0);
    if (t.level === 1) {
      const n = Math.min(512, (layout.memorySize - t.base) / PAGE_SIZE);
      for (let i = 0; i < n; i++) setU64(dv, i * 8, t.base + i * PAGE_SIZE + PTE_P_RW);
    } else {
      for (const [i, v] of t.entries) setU64(dv, i * 8, v);
    }
    mem.write(t.gpa, page);
  }

  page.fill(0);
  setU64(dv, 0, BOOT_INFO_MAGIC);
  setU64(dv, 8, layout.memorySize);
  setU64(dv, 16, layout.freeStart);
  setU64(dv, 24, layout.pml4);
  setU64(dv, 32, GUEST_PAGE_BYTES[layout.pageSize]);
  setU64(dv, 40, layout.cmdline);
  setU64(dv, 48, layout.args.length);
  layout.args.forEach((a, i) => setU64(dv, 56 + i * 8, a));
  if (layout.cmdlineBytes) page.set(layout.cmdlineBytes, CMDLINE_OFFSET); // NUL follows: page is zeroed
  mem.write(layout.bootInfo, page);

  page.fill(0);
  setU64(dv, 8, GDT_CODE64);
  setU64(dv, 16, GDT_DATA);
  mem.write(layout.gdt, page);
  // The stack needs no writing: guest RAM starts zeroed.
}

/** Registers the boot protocol sets, by their architectural names (the vCPU maps names to its register file). */
export type BootRegister =
  | 'cr0' | 'cr3' | 'cr4' | 'efer' | 'gdtr_base' | 'gdtr_limit' | 'idtr_base' | 'idtr_limit'
  | 'cs' | 'ds' | 'es' | 'ss' | 'fs' | 'gs' | 'rflags' | 'rip' | 'rsp' | 'rdi';

/** The initial register file (docs/guest-abi.md "Initial state"); unlisted registers are 0. */
export function initialRegisters(layout: BootLayout, entry: number): Map<BootRegister, bigint> {
  const r = new Map<BootRegister, bigint>();
  r.set('cr0', CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG);
  r.set('cr4', CR4_PAE);
  r.set('efer', EFER_LME | EFER_LMA | EFER_NXE);
  r.set('cr3', BigInt(layout.pml4));
  r.set('gdtr_base', BigInt(layout.gdt));
  r.set('gdtr_limit', BigInt(GDT_LIMIT));
  r.set('idtr_base', 0n);
  r.set('idtr_limit', 0n);
  r.set('cs', BigInt(SEL_CODE));
  for (const s of ['ds', 'es', 'ss', 'fs', 'gs'] as const) r.set(s, BigInt(SEL_DATA));
  r.set('rflags', 0x2n);
  r.set('rip', BigInt(entry));
  r.set('rsp', BigInt(layout.stackTop));
  r.set('rdi', BigInt(layout.bootInfo));
  return r;
}
