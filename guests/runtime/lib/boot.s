# Boot-info accessors (docs/guest-abi.md "Boot info"). Preserve all registers but RAX. The
# first access checks the magic, so start.s can stay the bare entry stub.
        .include "runtime.inc"
        .text

# bi_ptr() -> rax = the boot-info pointer; panics if its magic is not "HVBOOT01"
        .globl bi_ptr
bi_ptr:
        movq    boot_info(%rip), %rax
        cmpq    $0, bi_checked(%rip)
        jne     1f
        pushq   %rcx
        movabsq $BOOT_MAGIC, %rcx
        cmpq    %rcx, BI_MAGIC(%rax)
        jne     2f
        movq    $1, bi_checked(%rip)
        popq    %rcx
1:      ret
2:      leaq    msg_magic(%rip), %rdi
        call    panic

# arg_or(rdi = index, rsi = default) -> rax = args[index] if index < nargs, else default
        .globl arg_or
arg_or:
        pushq   %rcx
        call    bi_ptr
        movq    %rax, %rcx
        movq    %rsi, %rax
        cmpq    BI_NARGS(%rcx), %rdi
        jae     1f
        cmpq    $BI_MAX_ARGS, %rdi
        jae     1f
        movq    BI_ARGS(%rcx,%rdi,8), %rax
1:      popq    %rcx
        ret

# memory_size() -> rax
        .globl memory_size
memory_size:
        call    bi_ptr
        movq    BI_MEMORY(%rax), %rax
        ret

# cmdline_has(rdi = word) -> rax = 1 if the command line contains `word` as a
# space-separated token (or a token's prefix up to '='), else 0.
        .globl cmdline_has
cmdline_has:
        pushq   %rsi
        pushq   %rdx
        pushq   %rcx
        call    bi_ptr
        movq    BI_CMDLINE(%rax), %rsi
        testq   %rsi, %rsi
        jz      9f
0:      movb    (%rsi), %al             # at a token start: skip spaces
        testb   %al, %al
        jz      9f
        cmpb    $' ', %al
        jne     1f
        incq    %rsi
        jmp     0b
1:      movq    %rdi, %rdx              # compare token with word
2:      movb    (%rdx), %cl
        testb   %cl, %cl
        jz      4f
        cmpb    (%rsi), %cl
        jne     5f
        incq    %rsi
        incq    %rdx
        jmp     2b
4:      movb    (%rsi), %al             # word ended: token must end too (or hit '=')
        testb   %al, %al
        jz      8f
        cmpb    $' ', %al
        je      8f
        cmpb    $'=', %al
        je      8f
5:      movb    (%rsi), %al             # mismatch: skip the rest of the token
        testb   %al, %al
        jz      9f
        cmpb    $' ', %al
        je      0b
        incq    %rsi
        jmp     5b
8:      movl    $1, %eax
        jmp     10f
9:      xorl    %eax, %eax
10:     popq    %rcx
        popq    %rdx
        popq    %rsi
        ret

        .section .rodata
msg_magic:
        .asciz  "boot info magic is not HVBOOT01"

        .bss
        .balign 8
bi_checked:
        .quad   0
