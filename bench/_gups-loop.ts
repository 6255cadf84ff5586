// The gups loop body (random 8-byte read-modify-write, HPCC's LCG) that bench/interp.ts
// times and bench/_gups-profile.ts profiles: one source so the two measure the same code.
import type { Machine } from '../test/vcpu-harness.ts';

/** 8 guest instructions per iteration, then hlt; rbx = base, r8 = qwords − 1, rcx = iterations, rdx = seed. */
export const GUPS_LOOP = `
1:  imul %r9, %rdx
    add %r10, %rdx
    mov %rdx, %rax
    shr $20, %rax
    and %r8, %rax
    xor %rdx, (%rbx,%rax,8)
    dec %rcx
    jnz 1b
    hlt`;

/** The loop's registers: a region of `region` bytes at `base`, `iters` iterations from `seed`. */
export function setGupsRegs(m: Machine, base: number, region: number, iters: number, seed: number): void {
  m.setReg('rbx', base);
  m.setReg('r8', region / 8 - 1);
  m.setReg('r9', 6364136223846793005n);
  m.setReg('r10', 1442695040888963407n);
  m.setReg('rdx', seed);
  m.setReg('rcx', iters);
}
