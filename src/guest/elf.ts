/**
 * The guest ELF loader (docs/guest-abi.md "Image and boot"): a static ELF64 x86-64 executable,
 * each PT_LOAD copied to guest-physical p_paddr with p_memsz − p_filesz zero-filled.
 *
 * parseElf() validates everything (header, program headers, every segment against the file
 * and guest memory, overlaps, the entry point) before loadElf() writes a single byte, so a
 * malformed image is refused with one ElfError naming the problem and nothing half-loaded.
 * All header arithmetic is done in BigInt: the fields are u64 and an overflowing
 * p_paddr + p_memsz must be an error, not a wrap-around.
 */
import { gpa, gva, type Gpa, type Gva } from '../util/address.ts';
import { ElfError } from '../util/errors.ts';
import type { GuestMemory } from './memory.ts';

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const EM_X86_64 = 62;
const PN_XNUM = 0xffff;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
/** Segment flag: executable. */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export interface ElfSegment {
  /** Index of the program header (as readelf numbers them). */
  index: number;
  paddr: Gpa;
  vaddr: Gva;
  /** Byte offset of the segment's data in the file. */
  offset: number;
  filesz: number;
  memsz: number;
  /** PF_R | PF_W | PF_X */
  flags: number;
}

/** A validated image: loadElf() cannot fail on it for the memory size it was checked against. */
export interface ElfImage {
  entry: Gva;
  /** The PT_LOAD segments in program-header order. */
  segments: ElfSegment[];
  /** E of the boot protocol: max(p_paddr + p_memsz) over the PT_LOAD segments. */
  end: Gpa;
  /** Guest memory size the segments were checked against. */
  memorySize: number;
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/**
 * Validates a guest image for a guest of `memorySize` bytes. Throws ElfError naming the
 * first problem found; `name` (e.g. the file path) prefixes the message.
 */
export function parseElf(file: Uint8Array, memorySize: number, name = 'ELF'): ElfImage {
  const fail = (msg: string): never => {
    throw new ElfError(`${name}: ${msg}`);
  };
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const size = BigInt(file.byteLength);
  const mem = BigInt(memorySize);

  if (file.byteLength < 4 || file[0] !== 0x7f || file[1] !== 0x45 || file[2] !== 0x4c || file[3] !== 0x46) {
    fail('bad magic: not an ELF file');
  }
  if (file.byteLength < EHDR_SIZE) fail(`truncated ELF header: file is ${file.byteLength} bytes, the ELF64 header needs ${EHDR_SIZE}`);
  if (file[4] !== ELFCLASS64) fail(`wrong ELF class ${file[4]}: only ELF64 (class 2) guests are supported`);
  if (file[5] !== ELFDATA2LSB) fail(`wrong ELF data encoding ${file[5]}: only little-endian (1) is supported`);
  if (file[6] !== EV_CURRENT) fail(`wrong ELF identification version ${file[6]} (expected 1)`);
  const type = dv.getUint16(16, true);
  if (type === ET_DYN) fail('wrong ELF type ET_DYN (shared object or PIE): a static executable (ET_EXEC) is required');
  if (type !== ET_EXEC) fail(`wrong ELF type ${type}: a static executable (ET_EXEC = 2) is required`);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_X86_64) fail(`wrong ELF machine ${machine}: only x86-64 (EM_X86_64 = 62) is supported`);

  const entry = dv.getBigUint64(24, true);
  const phoff = dv.getBigUint64(32, true);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phnum === 0) fail('no program headers');
  if (phnum === PN_XNUM) fail('too many program headers (PN_XNUM extended numbering is not supported)');
  if (phentsize !== PHDR_SIZE) fail(`bad program header size ${phentsize} (ELF64 uses ${PHDR_SIZE})`);
  if (phoff + BigInt(phnum * PHDR_SIZE) > size) {
    fail(`truncated program header table: ${phnum} headers at offset ${hex(phoff)} end past the file's ${file.byteLength} bytes`);
  }

  interface Raw { index: number; paddr: bigint; vaddr: bigint; offset: bigint; filesz: bigint; memsz: bigint; flags: number }
  const loads: Raw[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = Number(phoff) + i * PHDR_SIZE;
    const ptype = dv.getUint32(at, true);
    if (ptype === PT_INTERP) fail(`program header ${i} is PT_INTERP: dynamically linked guests are not supported`);
    if (ptype === PT_DYNAMIC) fail(`program header ${i} is PT_DYNAMIC: dynamically linked guests are not supported`);
    if (ptype !== PT_LOAD) continue; // PT_NOTE, PT_GNU_STACK, PT_PHDR...: nothing to load
    loads.push({
      index: i,
      flags: dv.getUint32(at + 4, true),
      offset: dv.getBigUint64(at + 8, true),
      vaddr: dv.getBigUint64(at + 16, true),
      paddr: dv.getBigUint64(at + 24, true),
      filesz: dv.getBigUint64(at + 32, true),
      memsz: dv.getBigUint64(at + 40, true),
    });
  }
  if (loads.length === 0) fail('no PT_LOAD segment: nothing to load');

  for (const s of loads) {
    const what = `segment ${s.index}`;
    if (s.filesz > s.memsz) fail(`${what}: p_filesz ${hex(s.filesz)} is larger than p_memsz ${hex(s.memsz)}`);
    if (s.offset + s.filesz > size) {
      fail(`truncated segment data: ${what} needs file bytes [${hex(s.offset)}, ${hex(s.offset + s.filesz)}) but the file has ${file.byteLength}`);
    }
    if (s.paddr + s.memsz > mem) {
      fail(`${what} [${hex(s.paddr)}, ${hex(s.paddr + s.memsz)}) is outside guest memory [0, ${hex(mem)})`);
    }
  }
  // Overlaps: sort by address and compare neighbours (empty segments occupy nothing).
  const sorted = loads.filter((s) => s.memsz > 0n).sort((a, b) => (a.paddr < b.paddr ? -1 : a.paddr > b.paddr ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.paddr < a.paddr + a.memsz) {
      fail(`overlapping segments ${a.index} [${hex(a.paddr)}, ${hex(a.paddr + a.memsz)}) and ${b.index} [${hex(b.paddr)}, ${hex(b.paddr + b.memsz)})`);
    }
  }
  // The boot tables identity-map memory, so the entry (a virtual address) runs at the same
  // physical address: it must lie inside an executable segment as loaded.
  const inExec = loads.some((s) => (s.flags & PF_X) !== 0 && entry >= s.paddr && entry < s.paddr + s.memsz);
  if (!inExec) fail(`entry point ${hex(entry)} is outside every executable segment`);

  const segments: ElfSegment[] = loads.map((s) => ({
    index: s.index,
    paddr: gpa(Number(s.paddr)),
    vaddr: gva(Number(s.vaddr & 0x1fffffffffffffn)), // informational only; kept safe-integer
    offset: Number(s.offset),
    filesz: Number(s.filesz),
    memsz: Number(s.memsz),
    flags: s.flags,
  }));
  const end = loads.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
  return { entry: gva(Number(entry)), segments, end: gpa(Number(end)), memorySize };
}

/** Copies a validated image into guest memory: file bytes, then the zero-filled tail. */
export function loadElf(image: ElfImage, file: Uint8Array, mem: GuestMemory): void {
  if (mem.size !== image.memorySize) {
    throw new ElfError(`image was validated for ${image.memorySize} bytes of guest memory, not ${mem.size}`);
  }
  for (const s of image.segments) {
    if (s.filesz > 0) mem.write(s.paddr, file.subarray(s.offset, s.offset + s.filesz));
    if (s.memsz > s.filesz) mem.zero(gpa(s.paddr + s.filesz), s.memsz - s.filesz);
  }
}
