// Every sample guest builds into a static ELF64 linked at 1 MiB whose entry lies in an
// executable PT_LOAD segment, and uses only instructions of the docs/guest-abi.md subset
// (checked on the disassembly, so a stray `leave` or `cld` fails here, not as a #UD later).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const root = join(import.meta.dirname, '..');
const guestsDir = join(root, 'guests');
// A fresh build into a private directory: this file checks what the sources build to now.
const outDir = mkdtempSync(join(tmpdir(), 'hv-guests-'));
const sources = readdirSync(guestsDir).filter((f) => f.endsWith('.s')).map((f) => basename(f, '.s')).sort();

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

// Mnemonics of the subset as objdump (AT&T) spells them; size suffixes are stripped.
const ALLOWED = new Set(`mov movabs movzb movzw movzx movsx movslq movsxd lea xchg push pop
  cmova cmovae cmovb cmovbe cmove cmovne cmovg cmovge cmovl cmovle cmovs cmovns cmovo cmovno cmovp cmovnp
  seta setae setb setbe sete setne setg setge setl setle sets setns seto setno setp setnp
  cbtw cwtl cltq cwtd cltd cqto
  add or adc sbb and sub xor cmp test inc dec neg not mul imul div idiv shl sal shr sar rol ror bt bts btr btc bsf bsr
  jmp ja jae jb jbe je jne jg jge jl jle js jns jo jno jp jnp call ret loop nop nopw nopl pause
  rep repz
  hlt in out lgdt sgdt lidt sidt iretq invlpg cpuid rdtsc cli sti wbinvd ud2
  pushf popf lahf sahf stc clc cmc leave xadd cmpxchg bswap shld shrd tzcnt movnti int3
  lfence mfence sfence prefetcht0 prefetcht1 prefetcht2 prefetchnta prefetchw`.split(/\s+/).filter(Boolean));
const SUFFIXED = /^(.*?)(b|w|l|q)$/;
// String instructions: MOVS STOS LODS CMPS SCAS at every width (not INS/OUTS).
const STRINGS = new Set(['movs', 'stos', 'lods', 'cmps', 'scas'].flatMap((s) => ['b', 'w', 'l', 'q'].map((w) => s + w)));
const MOVSX = /^movs(bw|bl|bq|wl|wq|lq)$/;

function mnemonicsOf(elf: string): Map<string, string> {
  const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', '-M', 'att', elf], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seen = new Map<string, string>();
  for (const line of dis.split('\n')) {
    const m = /^\s+([0-9a-f]+):\t(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    let [, addr, op, operands] = m;
    if (op === 'rep' || op === 'repz' || op === 'repnz' || op === 'lock') {
      const [inner, ...rest] = operands.split(/\s+/);
      op = `${op} ${inner}`;
      operands = rest.join(' ');
    }
    if (/^(rep[nz]* )?(stos|lods|scas)$/.test(op)) {
      op += /(^|,)%al(,|$)/.test(operands) ? 'b' : /(^|,)%ax(,|$)/.test(operands) ? 'w' : /(^|,)%eax(,|$)/.test(operands) ? 'l' : /%rax/.test(operands) ? 'q' : '?';
    }
    seen.set(op === 'movabs' && !operands.startsWith('$') ? 'movabs-moffs' : op, addr);
  }
  return seen;
}
function inSubset(op: string): boolean {
  const base = op.startsWith('rep') || op.startsWith('lock') ? op.split(' ')[1] : op;
  if (STRINGS.has(base) || MOVSX.test(base)) return true;
  if (/^(movs|stos|lods|cmps|scas|ins|outs)/.test(base) && !MOVSX.test(base)) return false;
  if (ALLOWED.has(base)) return true;
  const s = SUFFIXED.exec(base);
  return s !== null && ALLOWED.has(s[1]);
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
    const outside = [...mnemonicsOf(join(outDir, `${name}.elf`))].filter(([op]) => !inSubset(op)).map(([op, addr]) => `${op} at 0x${addr}`);
    t.deepEqual(outside, []);
  });
}
