// Every sample guest builds into a static ELF64 linked at 1 MiB whose entry lies in an
// executable PT_LOAD segment, and uses only instructions of the docs/guest-abi.md subset
// (checked on the disassembly, so a stray `leave` or `cld` fails here, not as a #UD later).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { inSubset, instructionsOf, missingInstructions, vcpuLacks } from './guest-isa.ts';

const root = join(import.meta.dirname, '..');
const guestsDir = join(root, 'guests');
// A fresh build into a private directory: this file checks what the sources build to now.
const outDir = mkdtempSync(join(tmpdir(), 'hv-guests-'));
const sources = readdirSync(guestsDir).filter((f) => f.endsWith('.s')).map((f) => basename(f, '.s')).sort();
const cSources = readdirSync(join(guestsDir, 'c')).filter((f) => f.endsWith('.c')).map((f) => basename(f, '.c')).sort();

test.before(() => {
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--guests', '--out', outDir], { cwd: root, stdio: 'pipe' });
});
test.after.always(() => rmSync(outDir, { recursive: true, force: true }));

interface Phdr { type: number; flags: number; offset: number; paddr: number; filesz: number; memsz: number }
function readElf(path: string) {
  const b = readFileSync(path);
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  const phdrs: Phdr[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    phdrs.push({
      type: b.readUInt32LE(o), flags: b.readUInt32LE(o + 4), offset: Number(b.readBigUInt64LE(o + 8)),
      paddr: Number(b.readBigUInt64LE(o + 24)), filesz: Number(b.readBigUInt64LE(o + 32)), memsz: Number(b.readBigUInt64LE(o + 40)),
    });
  }
  return { magic: b.subarray(0, 4).toString('latin1'), cls: b[4], data: b[5], type: b.readUInt16LE(16), machine: b.readUInt16LE(18), entry: Number(b.readBigUInt64LE(24)), phdrs };
}

test('every guests/*.s builds into build/guests/NAME.elf', (t) => {
  const built = readdirSync(outDir).filter((f) => f.endsWith('.elf')).map((f) => basename(f, '.elf')).sort();
  t.deepEqual(built.filter((n) => sources.includes(n)), sources);
  for (const name of ['hello', 'isa-selftest', 'demand-paging', 'ud-no-idt', 'alu-loop', 'mem-scan', 'pointer-chase', 'gups']) {
    t.true(sources.includes(name), `guest ${name} exists`);
  }
});

for (const name of sources) {
  test(`${name}: static ELF64 x86-64 linked at 1 MiB with its entry in an executable segment`, (t) => {
    const elf = readElf(join(outDir, `${name}.elf`));
    t.is(elf.magic, '\x7fELF');
    t.is(elf.cls, 2);
    t.is(elf.data, 1);
    t.is(elf.type, 2); // ET_EXEC
    t.is(elf.machine, 0x3e);
    const loads = elf.phdrs.filter((p) => p.type === 1);
    t.true(loads.length > 0);
    t.is(Math.min(...loads.map((p) => p.paddr)), 0x100000);
    t.false(elf.phdrs.some((p) => p.type === 3), 'no PT_INTERP');
    const seg = loads.find((p) => elf.entry >= p.paddr && elf.entry < p.paddr + p.filesz);
    t.truthy(seg, 'entry inside a PT_LOAD segment');
    t.true(((seg?.flags ?? 0) & 1) === 1, 'entry segment is executable');
    const sorted = [...loads].sort((a, b) => a.paddr - b.paddr);
    for (let i = 1; i < sorted.length; i++) t.true(sorted[i - 1].paddr + sorted[i - 1].memsz <= sorted[i].paddr, 'segments do not overlap');
  });

  test(`${name}: uses only instructions of the GUEST-ABI subset`, (t) => {
    const outside = [...instructionsOf(join(outDir, `${name}.elf`)).values()].filter((i) => !inSubset(i.op)).map((i) => `${i.op} at 0x${i.addr.toString(16)}`);
    t.deepEqual(outside, []);
  });
}

test('every guests/c/*.c builds into NAME.elf (-O2) and O0/NAME.elf (-O0)', (t) => {
  t.true(cSources.length >= 8, 'the C workloads exist');
  for (const name of cSources) {
    t.false(sources.includes(name), `${name}: one name, one guest`);
    for (const elf of [join(outDir, `${name}.elf`), join(outDir, 'O0', `${name}.elf`)]) {
      const e = readElf(elf);
      t.is(e.type, 2, elf);
      t.is(Math.min(...e.phdrs.filter((p) => p.type === 1).map((p) => p.paddr)), 0x100000, elf);
      t.false(e.phdrs.some((p) => p.type === 3), `${elf}: no PT_INTERP`);
    }
  }
});

for (const name of cSources) {
  for (const level of ['O2', 'O0']) {
    test(`${name} (-${level}): the vCPU decodes every instruction gcc emitted`, (t) => {
      const missing = missingInstructions(join(outDir, ...(level === 'O0' ? ['O0'] : []), `${name}.elf`));
      t.deepEqual(missing.map((m) => `${m.op} at 0x${m.addr.toString(16)}`), []);
    });
  }
}

test('the vCPU probe tells a decoded instruction from one that raises #UD', (t) => {
  t.false(vcpuLacks({ op: 'add', addr: 0, bytes: [0x48, 0x01, 0xc3] }), 'add %rax,%rbx');
  t.false(vcpuLacks({ op: 'mov', addr: 0, bytes: [0x48, 0x8b, 0x07] }), 'mov (%rdi),%rax');
  t.true(vcpuLacks({ op: 'syscall', addr: 0, bytes: [0x0f, 0x05] }), 'SYSCALL is outside the subset');
  t.true(vcpuLacks({ op: 'addps', addr: 0, bytes: [0x0f, 0x58, 0xc1] }), 'SSE is outside the subset');
});
