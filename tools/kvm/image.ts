/**
 * Builds the boot image kvm-run.c maps as guest RAM, with the project's own loader
 * (src/guest/elf.ts + src/guest/boot.ts): the KVM reference boots byte-identical memory to
 * hugevisor's, so any difference in a run is a difference in execution, not in loading.
 *
 * The image travels to kvm-run on stdin as records {u64 gpa, u64 len, len bytes} (little
 * endian), one per touched 4 KiB page (guest RAM starts zeroed, so untouched pages are
 * not sent); the initial registers travel as command-line flags (kvmRunArgs).
 */
import { initialRegisters, planBoot, writeBoot, type BootLayout, type BootRegister, type GuestPageSize } from '../../src/guest/boot.ts';
import { loadElf, parseElf } from '../../src/guest/elf.ts';
import { checkGuestRange, type GuestMemory } from '../../src/guest/memory.ts';
import type { Gpa } from '../../src/util/address.ts';

const PAGE = 4096;

/** Guest memory that keeps only the pages written, so a 1 GiB guest costs a few pages here. */
export class SparseGuestMemory implements GuestMemory {
  readonly pages = new Map<number, Uint8Array>();
  constructor(readonly size: number) {}

  private page(pfn: number, create: boolean): Uint8Array | undefined {
    let p = this.pages.get(pfn);
    if (!p && create) {
      p = new Uint8Array(PAGE);
      this.pages.set(pfn, p);
    }
    return p;
  }

  private each(addr: number, length: number, fn: (pfn: number, off: number, n: number, done: number) => void): void {
    checkGuestRange(this, addr, length);
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const off = a % PAGE;
      const n = Math.min(PAGE - off, length - done);
      fn(Math.floor(a / PAGE), off, n, done);
      done += n;
    }
  }

  write(addr: Gpa, data: Uint8Array): void {
    this.each(addr, data.length, (pfn, off, n, done) => this.page(pfn, true)!.set(data.subarray(done, done + n), off));
  }

  read(addr: Gpa, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.each(addr, length, (pfn, off, n, done) => {
      const p = this.page(pfn, false);
      if (p) out.set(p.subarray(off, off + n), done);
    });
    return out;
  }

  zero(addr: Gpa, length: number): void {
    this.each(addr, length, (pfn, off, n) => this.page(pfn, false)?.fill(0, off, off + n));
  }

  /** The records kvm-run reads from stdin, pages in ascending GPA order. */
  records(): Buffer {
    const pfns = [...this.pages.keys()].sort((a, b) => a - b);
    const out = Buffer.alloc(pfns.length * (16 + PAGE));
    pfns.forEach((pfn, i) => {
      const o = i * (16 + PAGE);
      out.writeBigUInt64LE(BigInt(pfn * PAGE), o);
      out.writeBigUInt64LE(BigInt(PAGE), o + 8);
      out.set(this.pages.get(pfn)!, o + 16);
    });
    return out;
  }
}

export interface KvmImageOptions {
  memory: number;
  pageSize: GuestPageSize;
  args?: readonly (number | bigint)[];
  cmdline?: string;
}

export interface KvmImage {
  /** stdin for kvm-run */
  records: Buffer;
  /** The GUEST-ABI initial registers kvm-run sets (the rest are fixed by the ABI). */
  regs: { rip: bigint; rsp: bigint; rdi: bigint; cr3: bigint; gdt: bigint };
  layout: BootLayout;
  entry: number;
}

/** Loads `elf` and writes the boot structures exactly as hugevisor's createVm does. */
export function buildKvmImage(elf: Uint8Array, o: KvmImageOptions, name = 'guest'): KvmImage {
  const image = parseElf(elf, o.memory, name);
  const layout = planBoot({ memorySize: o.memory, imageEnd: image.end, pageSize: o.pageSize, cmdline: o.cmdline, args: o.args });
  const mem = new SparseGuestMemory(o.memory);
  loadElf(image, elf, mem);
  writeBoot(layout, mem);
  const r = initialRegisters(layout, image.entry);
  const get = (k: BootRegister): bigint => r.get(k) ?? 0n;
  return {
    records: mem.records(),
    regs: { rip: get('rip'), rsp: get('rsp'), rdi: get('rdi'), cr3: get('cr3'), gdt: get('gdtr_base') },
    layout,
    entry: image.entry,
  };
}

/** kvm-run's command-line flags for an image. */
export function kvmRunArgs(img: KvmImage, memory: number): string[] {
  const h = (v: bigint): string => `0x${v.toString(16)}`;
  const { rip, rsp, rdi, cr3, gdt } = img.regs;
  return ['--mem', String(memory), '--rip', h(rip), '--rsp', h(rsp), '--rdi', h(rdi), '--cr3', h(cr3), '--gdt', h(gdt)];
}
