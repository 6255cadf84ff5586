# pointer-chase: bench kernel, dependent loads around one random cycle of 64-byte nodes.
# 3 instructions per step (load, dec, jnz).
# arg 0: region = 64M bytes (rounded down to a power of two, at least 4 KiB)
# arg 1: steps = 1000000
# The cycle is the full-period LCG i -> (a*i + c) mod N (a = 1 mod 4, c odd: Hull-Dobell),
# so every node is visited once per lap and the order is the same on every implementation.
        .include "runtime.inc"
        .set    LCG_A, 6364136223846793005
        .set    LCG_C, 1442695040888963407
        .text
        .globl guest_main
guest_main:
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        movl    $0, %edi
        movl    $0x4000000, %esi
        call    arg_or
        cmpq    $4096, %rax
        jb      bad
        bsrq    %rax, %rcx
        movl    $1, %eax
        shlq    %cl, %rax
        movq    %rax, %r12              # r12 = region bytes (power of two)
        movl    $1, %edi
        movl    $1000000, %esi
        call    arg_or
        movq    %rax, %r13              # r13 = steps
        call    mem_free_bytes
        cmpq    %r12, %rax
        jb      too_small
        movq    %r12, %rdi
        movl    $4096, %esi
        call    alloc_pages
        movq    %rax, %rbx              # rbx = region base
        movq    %r12, %r14
        shrq    $6, %r14
        decq    %r14                    # r14 = node mask (N - 1)
        movabsq $LCG_A, %r8
        movabsq $LCG_C, %r9
        xorl    %ecx, %ecx              # link node i -> node next(i)
0:      movq    %rcx, %rax
        imulq   %r8, %rax
        addq    %r9, %rax
        andq    %r14, %rax
        shlq    $6, %rax
        addq    %rbx, %rax
        movq    %rcx, %rdx
        shlq    $6, %rdx
        movq    %rax, (%rbx,%rdx)
        incq    %rcx
        cmpq    %r14, %rcx
        jbe     0b
        movq    %rbx, %rax              # chase from node 0
        movq    %r13, %rcx
        testq   %rcx, %rcx
        jz      2f
        call    roi_begin
1:      movq    (%rax), %rax
        decq    %rcx
        jnz     1b
        call    roi_end
2:      subq    %rbx, %rax
        shrq    $6, %rax
        movq    %rax, %r14              # r14 = index of the final node
        leaq    msg_region(%rip), %rdi
        call    puts
        movq    %r12, %rdi
        call    put_dec
        leaq    msg_steps(%rip), %rdi
        call    puts
        movq    %r13, %rdi
        call    put_dec
        leaq    msg_node(%rip), %rdi
        call    puts
        movq    %r14, %rdi
        call    put_dec
        call    put_nl
        xorl    %eax, %eax
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        ret
bad:    leaq    msg_bad(%rip), %rdi
        call    panic
too_small:
        movq    %rax, %rdx              # bytes free
        movq    %r12, %rsi              # region bytes
        leaq    msg_name(%rip), %rdi
        call    region_too_big

        .section .rodata
msg_region:
        .asciz  "pointer-chase: region "
msg_steps:
        .asciz  " steps "
msg_node:
        .asciz  " final node "
msg_bad:
        .asciz  "pointer-chase: region size must be at least 4096 bytes"
msg_name:
        .asciz  "pointer-chase"
