# Boot-info accessors (GUEST-ABI.md "Boot info"). Preserve all registers but RAX.
        .include "runtime.inc"
        .text

# arg_or(rdi = index, rsi = default) -> rax = args[index] if index < nargs, else default
        .globl arg_or
arg_or:
        pushq   %rcx
        movq    boot_info(%rip), %rcx
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
        movq    boot_info(%rip), %rax
        movq    BI_MEMORY(%rax), %rax
        ret

# cmdline_has(rdi = word) -> rax = 1 if the command line contains `word` as a
# space-separated token (or a token's prefix up to '='), else 0.
        .globl cmdline_has
cmdline_has:
        pushq   %rsi
        pushq   %rdx
        pushq   %rcx
        movq    boot_info(%rip), %rax
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
