# mem-scan: bench kernel, sequential 8-byte reads over a region (4 per word).
# Per word: add from memory, add, cmp, jb. The region is filled with its word indices first
# (outside the region of interest), so the checksum is the same on every implementation.
# arg 0: region = 64M bytes (rounded down to 4 KiB)
# arg 1: passes = 1
        .include "runtime.inc"
        .text
        .globl guest_main
guest_main:
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        movl    $0, %edi
        movl    $0x4000000, %esi
        call    arg_or
        andq    $-4096, %rax
        jz      bad
        movq    %rax, %r12              # r12 = region bytes
        movl    $1, %edi
        movl    $1, %esi
        call    arg_or
        movq    %rax, %r13              # r13 = passes
        call    mem_free_bytes
        cmpq    %r12, %rax
        jb      too_small
        movq    %r12, %rdi
        movl    $4096, %esi
        call    alloc_pages
        movq    %rax, %rbx              # rbx = region base
        xorl    %ecx, %ecx              # fill: word i = i
        movq    %r12, %rdx
        shrq    $3, %rdx
0:      movq    %rcx, (%rbx,%rcx,8)
        incq    %rcx
        cmpq    %rdx, %rcx
        jb      0b
        leaq    (%rbx,%r12), %rdi       # rdi = region end
        xorl    %eax, %eax
        movq    %r13, %rcx
        testq   %rcx, %rcx
        jz      3f
        call    roi_begin
1:      movq    %rbx, %rsi
2:      addq    (%rsi), %rax
        addq    $8, %rsi
        cmpq    %rdi, %rsi
        jb      2b
        decq    %rcx
        jnz     1b
        call    roi_end
3:      movq    %rax, %rbx
        leaq    msg_region(%rip), %rdi
        call    puts
        movq    %r12, %rdi
        call    put_dec
        leaq    msg_passes(%rip), %rdi
        call    puts
        movq    %r13, %rdi
        call    put_dec
        leaq    msg_sum(%rip), %rdi
        call    puts
        movq    %rbx, %rdi
        call    put_hex
        call    put_nl
        xorl    %eax, %eax
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
        .asciz  "mem-scan: region "
msg_passes:
        .asciz  " passes "
msg_sum:
        .asciz  " checksum "
msg_bad:
        .asciz  "mem-scan: region size must be at least 4096 bytes"
msg_name:
        .asciz  "mem-scan"
