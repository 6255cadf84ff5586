// The ELF loader accepts the fixture guest exactly and refuses every malformed variant of it
// (built by patching bytes of the good file) with one ElfError naming the problem, writing
// nothing to guest memory.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { loadElf, parseElf, PF_X } from '../src/guest/elf.ts';
import { ElfError } from '../src/util/errors.ts';
import { gpa } from '../src/util/address.ts';
import { SparseGuestMemory } from './fixtures/sparse-memory.ts';

const good = new Uint8Array(readFileSync(new URL('./fixtures/two-segments.elf', import.meta.url)));
const MEM = 4 * 1024 * 1024;
const PH = 64; // e_phoff of the fixture
const PHSZ = 56;

function patch(edit: (dv: DataView, b: Uint8Array) => void, bytes = good): Uint8Array {
  const b = bytes.slice();
  edit(new DataView(b.buffer), b);
  return b;
}
const ph = (i: number, field: number): number => PH + i * PHSZ + field;
const P_TYPE = 0, P_FLAGS = 4, P_OFFSET = 8, P_PADDR = 24, P_FILESZ = 32, P_MEMSZ = 40;

test('the fixture parses into its two PT_LOAD segments, entry and image end', (t) => {
  const img = parseElf(good, MEM);
  t.is<number, number>(img.entry, 0x100000);
  t.is<number, number>(img.end, 0x112008);
  t.deepEqual(
    img.segments.map((s) => [s.index, s.paddr, s.offset, s.filesz, s.memsz, s.flags]),
    [
      [0, 0x100000, 0x1000, 0x18, 0x18, 5],
      [1, 0x110000, 0x2000, 0x5, 0x2008, 6],
    ],
  );
});

test('loading copies file bytes to p_paddr and zero-fills p_memsz - p_filesz', (t) => {
  const mem = new SparseGuestMemory(MEM);
  mem.write(gpa(0x110000), new Uint8Array(0x2008).fill(0xcc)); // stale bytes the tail must clear
  loadElf(parseElf(good, MEM), good, mem);
  t.deepEqual(mem.read(gpa(0x100000), 0x18), good.subarray(0x1000, 0x1018));
  t.deepEqual([...mem.read(gpa(0x110000), 5)], [0x41, 0x44, 0x41, 0x54, 0x41]);
  t.true(mem.read(gpa(0x110005), 0x2003).every((b) => b === 0));
  t.deepEqual([...mem.read(gpa(0x110000 + 0x2008), 1)], [0]);
});

const bad: [string, Uint8Array, RegExp][] = [
  ['bad magic', patch((_, b) => { b[1] = 0x58; }), /bad magic: not an ELF file/],
  ['empty file', new Uint8Array(0), /bad magic/],
  ['truncated header', good.slice(0, 40), /truncated ELF header: file is 40 bytes, the ELF64 header needs 64/],
  ['ELF32 class', patch((_, b) => { b[4] = 1; }), /wrong ELF class 1: only ELF64/],
  ['big-endian data', patch((_, b) => { b[5] = 2; }), /wrong ELF data encoding 2/],
  ['ident version', patch((_, b) => { b[6] = 0; }), /wrong ELF identification version 0/],
  ['shared object', patch((dv) => dv.setUint16(16, 3, true)), /wrong ELF type ET_DYN/],
  ['relocatable', patch((dv) => dv.setUint16(16, 1, true)), /wrong ELF type 1: a static executable/],
  ['wrong machine', patch((dv) => dv.setUint16(18, 3, true)), /wrong ELF machine 3: only x86-64/],
  ['no program headers', patch((dv) => dv.setUint16(56, 0, true)), /no program headers/],
  ['bad phentsize', patch((dv) => dv.setUint16(54, 32, true)), /bad program header size 32/],
  ['phdr table past the end', patch((dv) => dv.setBigUint64(32, BigInt(good.length - 60), true)), /truncated program header table/],
  ['file cut inside the phdr table', good.slice(0, 100), /truncated program header table: 2 headers at offset 0x40/],
  ['file cut inside segment data', good.slice(0, 0x2003), /truncated segment data: segment 1 needs file bytes \[0x2000, 0x2005\)/],
  ['no PT_LOAD', patch((dv) => { dv.setUint32(ph(0, P_TYPE), 4, true); dv.setUint32(ph(1, P_TYPE), 4, true); }), /no PT_LOAD segment/],
  ['PT_INTERP', patch((dv) => dv.setUint32(ph(1, P_TYPE), 3, true)), /program header 1 is PT_INTERP/],
  ['PT_DYNAMIC', patch((dv) => dv.setUint32(ph(1, P_TYPE), 2, true)), /program header 1 is PT_DYNAMIC/],
  ['p_filesz > p_memsz', patch((dv) => dv.setBigUint64(ph(1, P_FILESZ), 0x3000n, true)), /segment 1: p_filesz 0x3000 is larger than p_memsz 0x2008/],
  ['segment data offset past the end', patch((dv) => dv.setBigUint64(ph(0, P_OFFSET), 0x100000n, true)), /truncated segment data: segment 0/],
  ['segment outside guest memory', patch((dv) => dv.setBigUint64(ph(1, P_PADDR), BigInt(MEM - 0x1000), true)), /segment 1 \[0x3ff000, 0x401008\) is outside guest memory \[0, 0x400000\)/],
  ['segment end overflowing 64 bits', patch((dv) => dv.setBigUint64(ph(1, P_PADDR), 0xfffffffffffff000n, true)), /segment 1 \[0xfffffffffffff000, 0x10000000000001008\) is outside guest memory/],
  ['overlapping segments', patch((dv) => dv.setBigUint64(ph(1, P_PADDR), 0x100010n, true)), /overlapping segments 0 \[0x100000, 0x100018\) and 1 \[0x100010, 0x102018\)/],
  ['entry outside every segment', patch((dv) => dv.setBigUint64(24, 0x200000n, true)), /entry point 0x200000 is outside every executable segment/],
  ['entry in a non-executable segment', patch((dv) => dv.setBigUint64(24, 0x110000n, true)), /entry point 0x110000 is outside every executable segment/],
  ['entry with the text segment not executable', patch((dv) => dv.setUint32(ph(0, P_FLAGS), 4, true)), /entry point 0x100000 is outside every executable segment/],
  ['entry one past the text segment', patch((dv) => dv.setBigUint64(24, 0x100018n, true)), /entry point 0x100018 is outside/],
  ['memsz growing into the next segment', patch((dv) => dv.setBigUint64(ph(0, P_MEMSZ), 0x10001n, true)), /overlapping segments 0 \[0x100000, 0x110001\) and 1/],
];

for (const [name, bytes, msg] of bad) {
  test(`a malformed image is refused with a named error and nothing loaded: ${name}`, (t) => {
    const mem = new SparseGuestMemory(MEM);
    const err = t.throws(() => loadElf(parseElf(bytes, MEM, 'guest.elf'), bytes, mem), { instanceOf: ElfError });
    t.regex(err!.message, /^guest\.elf: /);
    t.regex(err!.message, msg);
    t.is(err!.code, 'EINVAL_ELF');
    t.is(mem.pages.size, 0);
  });
}

test('a segment ending exactly at the end of guest memory is accepted', (t) => {
  const img = parseElf(good, 0x112008 + 0xff8);
  t.is<number, number>(img.end, 0x112008);
  t.throws(() => parseElf(good, 0x112000), { message: /segment 1 \[0x110000, 0x112008\) is outside guest memory \[0, 0x112000\)/ });
});

test('an image validated for one memory size cannot be loaded into another', (t) => {
  const img = parseElf(good, MEM);
  t.throws(() => loadElf(img, good, new SparseGuestMemory(MEM * 2)), { instanceOf: ElfError, message: /validated for 4194304 bytes/ });
});

test('the built hello sample (GNU ld, guests/link.ld) is accepted, linked at 1 MiB', (t) => {
  const url = new URL('../build/guests/hello.elf', import.meta.url);
  const img = parseElf(new Uint8Array(readFileSync(url)), MEM);
  t.true(img.segments.length >= 1);
  t.is<number, number>(img.segments[0].paddr, 0x100000);
  t.true(img.segments.some((s) => (s.flags & PF_X) !== 0 && img.entry >= s.paddr && img.entry < s.paddr + s.memsz));
});

test('random byte mutations of the header area give a valid image or an ElfError, never another exception', (t) => {
  let seed = 0x12345678;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const b = good.slice(0, rand(3) === 0 ? rand(good.length) : good.length);
    for (let k = 1 + rand(4); k > 0 && b.length > 0; k--) b[rand(Math.min(b.length, 176))] = rand(256);
    try {
      const img = parseElf(b, MEM);
      loadElf(img, b, new SparseGuestMemory(MEM));
      accepted++;
    } catch (e) {
      if (!(e instanceof ElfError)) t.fail(`mutation ${i}: ${String(e)}`);
      refused++;
    }
  }
  t.is(accepted + refused, 3000);
  t.true(accepted > 0 && refused > 0);
});
