# gups: bench kernel, random 8-byte read-modify-writes driven by an LCG (8 per update).
# Instructions per update: imul, add, mov, shr, and, xor-to-memory, dec, jnz; the LCG
# gives the same sequence on every implementation. The region is zeroed first and summed
# after the region of interest, so the checksum covers every update; without it the guest
# prints the final LCG state instead ("checksum skipped").
# arg 0: region = 256M bytes (rounded down to a power of two, at least 4 KiB)
# arg 1: updates = 1000000
# arg 2: seed = 1
# arg 3: checksum = 1 (0 = skip)
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
        pushq   %r15
        movl    $0, %edi
        movl    $0x10000000, %esi
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
        movq    %rax, %r13              # r13 = updates
        movl    $2, %edi
        movl    $1, %esi
        call    arg_or
        movq    %rax, %r14              # r14 = seed
        call    mem_free_bytes
        cmpq    %r12, %rax
        jb      too_small
        movq    %r12, %rdi
        movl    $4096, %esi
        call    alloc_zeroed_pages
        movq    %rax, %rbx              # rbx = region base
        movq    %r12, %r10
        shrq    $3, %r10
        decq    %r10                    # r10 = word mask
        movabsq $LCG_A, %r8
        movabsq $LCG_C, %r9
        movq    %r14, %rax
        movq    %r13, %rcx
        testq   %rcx, %rcx
        jz      2f
        call    roi_begin
1:      imulq   %r8, %rax
        addq    %r9, %rax
        movq    %rax, %rdx
        shrq    $24, %rdx               # the LCG's high bits are the random ones
        andq    %r10, %rdx
        xorq    %rax, (%rbx,%rdx,8)
        decq    %rcx
        jnz     1b
        call    roi_end
2:      movq    %rax, %r15                      # r15 = final LCG state
        movl    $3, %edi
        movl    $1, %esi
        call    arg_or
        testq   %rax, %rax
        jz      4f
        xorl    %eax, %eax              # checksum = sum of all words, 4 per iteration
        movq    %rbx, %rsi
        leaq    (%rbx,%r12), %rdi
3:      addq    (%rsi), %rax
        addq    8(%rsi), %rax
        addq    16(%rsi), %rax
        addq    24(%rsi), %rax
        addq    $32, %rsi
        cmpq    %rdi, %rsi
        jb      3b
        movq    %rax, %r14
        leaq    msg_region(%rip), %rdi
        call    puts
        movq    %r12, %rdi
        call    put_dec
        leaq    msg_updates(%rip), %rdi
        call    puts
        movq    %r13, %rdi
        call    put_dec
        leaq    msg_sum(%rip), %rdi
        call    puts
        movq    %r14, %rdi
        call    put_hex
        call    put_nl
        jmp     5f
4:      leaq    msg_region(%rip), %rdi          # no checksum: the final LCG state
        call    puts
        movq    %r12, %rdi
        call    put_dec
        leaq    msg_updates(%rip), %rdi
        call    puts
        movq    %r13, %rdi
        call    put_dec
        leaq    msg_state(%rip), %rdi
        call    puts
        movq    %r15, %rdi
        call    put_hex
        call    put_nl
5:      xorl    %eax, %eax
        popq    %r15
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
        .asciz  "gups: region "
msg_updates:
        .asciz  " updates "
msg_sum:
        .asciz  " checksum "
msg_state:
        .asciz  " checksum skipped, final state "
msg_bad:
        .asciz  "gups: region size must be at least 4096 bytes"
msg_name:
        .asciz  "gups"
