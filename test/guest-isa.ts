// Test helper (not a test file): the instructions a built guest uses, read from its
// disassembly, checked against the docs/guest-abi.md subset, and — for instructions outside
// the written list — probed on the vCPU itself, so a guest that needs an instruction the
// vCPU lacks is named with that instruction, and stops being so the day the vCPU gains it.
import { execFileSync } from 'node:child_process';
import { CODE, DATA, STACK_TOP, installIdt, makeMachine } from './vcpu-harness.ts';

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
// String instructions at every width (SCAS as objdump prints it, with its operands).
const STRINGS = new Set(['scas', ...['movs', 'stos', 'lods', 'cmps', 'scas'].flatMap((o) => ['b', 'w', 'l', 'q'].map((w) => o + w))]);
const MOVSX = /^movs(bw|bl|bq|wl|wq|lq)$/;
const C_EXTRA = /^(movs|stos|lods|cmps)[bwlq]$|^(cld|std)$/;
// Segment-override and operand-size prefixes objdump prints as words: on NOP padding only.
const PREFIX_WORDS = new Set(['cs', 'ds', 'es', 'ss', 'data16']);

export interface Instruction {
  op: string;
  addr: number;
  bytes: number[];
}

/** Every mnemonic of `elf` (rep-prefixed string ops as `rep movs` etc.), with its first occurrence. */
export function instructionsOf(elf: string): Map<string, Instruction> {
  const dis = execFileSync('objdump', ['-d', '-M', 'att', elf], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seen = new Map<string, Instruction>();
  let last: Instruction | undefined;
  for (const line of dis.split('\n')) {
    const m = /^\s+([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*(?:\t(\S+)\s*(.*))?$/.exec(line);
    if (!m) continue;
    const bytes = m[2]!.trim().split(' ').map((b) => parseInt(b, 16));
    if (m[3] === undefined) {
      last?.bytes.push(...bytes); // objdump continues long encodings on the next line
      continue;
    }
    const addr = parseInt(m[1]!, 16);
    let words = [m[3], ...(m[4] ?? '').split(/\s+/).filter(Boolean)];
    while (PREFIX_WORDS.has(words[0]!) && words.length > 1 && /^(nop|cs|ds|es|ss|data16)/.test(words[1]!)) words = words.slice(1);
    let op = words[0]!;
    let operands = words.slice(1).join(' ');
    if (/^(rep|repz|repnz|repe|repne|lock)$/.test(op) && words.length > 1) {
      op = `${op} ${words[1]}`;
      operands = words.slice(2).join(' ');
    }
    if (/^(rep[z]? )?(stos|lods)$/.test(op)) op += / %al$|,%al$/.test(operands) || operands.startsWith('%al') ? 'b' : /%rax/.test(operands) ? 'q' : /%eax/.test(operands) ? 'l' : /%ax/.test(operands) ? 'w' : '?';
    if (op === 'movabs' && !operands.startsWith('$')) op = 'movabs-moffs';
    const insn = { op, addr, bytes };
    if (!seen.has(op)) seen.set(op, insn);
    last = insn;
  }
  return seen;
}

/** In the written subset: `strict` for the hand-written guests (docs/guest-abi.md "Sample guests"). */
export function inSubset(op: string, strict = true): boolean {
  const base = /^(rep|repz|repe|repnz|repne|lock) /.test(op) ? op.split(' ')[1]! : op;
  if (STRINGS.has(base) || MOVSX.test(base)) return true;
  if (!strict && C_EXTRA.test(base)) return true;
  if (/^(movs|stos|lods|cmps|scas|ins|outs)/.test(base) && !MOVSX.test(base)) return false;
  if (ALLOWED.has(base)) return true;
  const s = SUFFIXED.exec(base);
  return s !== null && ALLOWED.has(s[1]!);
}

const probed = new Map<string, boolean>();
/**
 * Whether the vCPU raises #UD on this exact encoding: it runs alone on a fresh machine whose
 * GPRs all point into scratch memory (RCX = 1 for a REP), with an IDT whose every vector
 * ends the run, and the #UD count decides. Any other outcome (#PF, #DE, completion) means
 * the instruction is decoded.
 */
export function vcpuLacks(insn: Instruction): boolean {
  const key = insn.bytes.join(',');
  const hit = probed.get(key);
  if (hit !== undefined) return hit;
  const m = makeMachine();
  m.load(new Uint8Array([...insn.bytes, 0xf4])); // the instruction, then hlt
  const stop = CODE + 0x800;
  m.load(new Uint8Array([0xf4]), stop);
  installIdt(m, Object.fromEntries(Array.from({ length: 20 }, (_, v) => [v, stop])));
  for (const r of ['rax', 'rbx', 'rdx', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const) m.setReg(r, DATA + 0x1000);
  m.setReg('rcx', 1);
  m.setReg('rbp', STACK_TOP - 0x200);
  m.setReg('rsp', STACK_TOP - 0x100);
  m.run(100);
  const lacks = m.counter('exc_ud') > 0n;
  probed.set(key, lacks);
  return lacks;
}

/** The mnemonics of `elf` outside the written subset that the vCPU raises #UD on, sorted. */
export function missingInstructions(elf: string, strict = false): { op: string; addr: number }[] {
  return [...instructionsOf(elf).values()].filter((i) => !inSubset(i.op, strict) && vcpuLacks(i)).map(({ op, addr }) => ({ op, addr })).sort((a, b) => a.op.localeCompare(b.op));
}
