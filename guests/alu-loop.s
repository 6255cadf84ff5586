# alu-loop: bench kernel, a register-only loop of add, xor, dec, jnz (4 per iteration).
# Prints a checksum so runs under different implementations can be compared.
# arg 0: iterations = 10000000
        .include "runtime.inc"
        .text
        .globl guest_main
guest_main:
        pushq   %rbx
        pushq   %r12
        movl    $0, %edi
        movq    $10000000, %rsi
        call    arg_or
        movq    %rax, %r12              # r12 = iterations
        movq    %rax, %rcx
        movabsq $0x9e3779b97f4a7c15, %rsi
        movl    $1, %eax
        xorl    %ebx, %ebx
        testq   %rcx, %rcx
        jz      2f
        call    roi_begin
1:      addq    %rsi, %rax
        xorq    %rax, %rbx
        decq    %rcx
        jnz     1b
        call    roi_end
2:      leaq    msg_iter(%rip), %rdi
        call    puts
        movq    %r12, %rdi
        call    put_dec
        leaq    msg_sum(%rip), %rdi
        call    puts
        movq    %rbx, %rdi
        call    put_hex
        call    put_nl
        xorl    %eax, %eax
        popq    %r12
        popq    %rbx
        ret

        .section .rodata
msg_iter:
        .asciz  "alu-loop: iterations "
msg_sum:
        .asciz  " checksum "
