# demand-paging: a tiny kernel that demand-pages a region at 512 GiB, one #PF per page.
# It loads its own IDT, switches to its own PML4 (the
# boot identity map of low memory shared through entry 0, plus an empty PDPT for a region
# at 512 GiB VA, far above any guest RAM), then writes and verifies a pattern over the
# region. Every first touch raises #PF; the handler allocates any missing paging
# structures and maps one free page, so exactly one fault is taken per page.
# arg 0: region = 16M bytes (rounded up to the page size)
# arg 1: huge = 0 (1, or the token "huge" on the command line: 2 MiB pages instead of 4 KiB)
# Output: region/page lines, "page faults handled: N", "pattern verified: W words".
# Refuses with a message and status 2 when guest memory cannot back the region.
        .include "runtime.inc"
        .set    REGION_VA, 0x8000000000         # PML4 slot 1
        .set    STRIDE, 64                      # one pattern word per 64 bytes
        .set    PATTERN, 0x5a5aa5a5f00dcafe
        .set    ADDR_MASK, 0x000ffffffffff000
        .text
        .globl guest_main
guest_main:
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        movl    $1, %edi                        # page size
        xorl    %esi, %esi
        call    arg_or
        movq    %rax, %rbx
        leaq    word_huge(%rip), %rdi
        call    cmdline_has
        orq     %rax, %rbx
        movq    $PAGE_4K, %r13
        testq   %rbx, %rbx
        jz      1f
        movq    $PAGE_2M, %r13
1:      movq    %r13, page_size(%rip)
        xorl    %edi, %edi                      # region size, rounded up to the page size
        movl    $0x1000000, %esi
        call    arg_or
        testq   %rax, %rax
        jz      bad_size
        leaq    -1(%r13), %rcx
        addq    %rcx, %rax
        jc      bad_size
        notq    %rcx
        andq    %rcx, %rax
        movq    %rax, %r12                      # r12 = region bytes
        movq    %rax, region_bytes(%rip)        # the #PF handler's bound
        movabsq $0x4000000000, %rcx             # at most 256 GiB (half of the PML4 slot)
        cmpq    %rcx, %rax
        ja      bad_size
        # memory needed: the pages, one PT per 2 MiB (4K mode), one PD per GiB, the
        # PML4 and PDPT, and a page-size alignment slack
        movq    %r12, %rax
        xorl    %edx, %edx
        divq    %r13
        movq    %rax, %r14                      # r14 = pages expected
        movq    %r12, %rax
        addq    %r13, %rax
        cmpq    $PAGE_4K, %r13
        jne     2f
        movq    %r12, %rcx
        shrq    $21, %rcx
        addq    $1, %rcx
        shlq    $12, %rcx
        addq    %rcx, %rax
2:      movq    %r12, %rcx
        shrq    $30, %rcx
        addq    $3, %rcx
        shlq    $12, %rcx
        addq    %rcx, %rax
        movq    %rax, %rbx                      # rbx = bytes needed
        call    mem_free_bytes
        cmpq    %rbx, %rax
        jb      too_small

        leaq    msg_region(%rip), %rdi
        call    puts
        movabsq $REGION_VA, %rdi
        call    put_hex
        leaq    msg_size(%rip), %rdi
        call    puts
        movq    %r12, %rdi
        call    put_dec
        leaq    msg_page(%rip), %rdi
        call    puts
        movq    %r13, %rdi
        call    put_dec
        call    put_nl

        call    idt_install_fatal
        movl    $VEC_PF, %edi
        leaq    pf_handler(%rip), %rsi
        call    idt_set_gate
        call    idt_load
        # own PML4: entry 0 = the boot identity map, entry 1 = an empty PDPT
        movl    $PAGE_4K, %edi
        movl    $PAGE_4K, %esi
        call    alloc_zeroed_pages
        movq    %rax, %rbx
        movq    boot_info(%rip), %rcx
        movq    BI_PML4(%rcx), %rcx
        movq    (%rcx), %rcx
        movq    %rcx, (%rbx)
        call    alloc_zeroed_pages
        orq     $3, %rax
        movq    %rax, 8(%rbx)
        movq    %rbx, %cr3

        call    roi_begin
        movabsq $REGION_VA, %rsi                # write the pattern
        leaq    (%rsi,%r12), %rdi
        movabsq $PATTERN, %rdx
3:      movq    %rsi, %rax
        xorq    %rdx, %rax
        movq    %rax, (%rsi)
        addq    $STRIDE, %rsi
        cmpq    %rdi, %rsi
        jb      3b
        movabsq $REGION_VA, %rsi                # verify it
        xorl    %ecx, %ecx
4:      movq    %rsi, %rax
        xorq    %rdx, %rax
        cmpq    %rax, (%rsi)
        jne     bad_pattern
        incq    %rcx
        addq    $STRIDE, %rsi
        cmpq    %rdi, %rsi
        jb      4b
        call    roi_end
        movq    %rcx, %rbx                      # rbx = words verified

        leaq    msg_faults(%rip), %rdi
        movq    pf_count(%rip), %rsi
        call    put_kv
        leaq    msg_verified(%rip), %rdi
        call    puts
        movq    %rbx, %rdi
        call    put_dec
        leaq    msg_words(%rip), %rdi
        call    puts
        xorl    %eax, %eax
        cmpq    %r14, pf_count(%rip)            # one fault per page, no more, no less
        je      5f
        leaq    msg_count(%rip), %rdi
        call    puts
        movq    %r14, %rdi
        call    put_dec
        call    put_nl
        movl    $1, %eax
5:      popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        ret

bad_size:
        leaq    msg_bad_size(%rip), %rdi
        call    panic
too_small:
        leaq    msg_small(%rip), %rdi
        call    puts
        movq    %rbx, %rdi
        call    put_dec
        leaq    msg_have(%rip), %rdi
        call    puts
        call    mem_free_bytes
        movq    %rax, %rdi
        call    put_dec
        call    put_nl
        movl    $2, %eax
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        ret
bad_pattern:
        leaq    msg_bad_pattern(%rip), %rdi
        call    puts
        movq    %rsi, %rdi
        call    put_hex
        call    put_nl
        movl    $1, %edi
        call    exit

# #PF: frame 0 error code, 8 RIP, 16 CS, 24 RFLAGS, 32 RSP, 40 SS. Only not-present
# faults inside the region are expected; anything else is a bug and panics.
pf_handler:
        pushq   %rax
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        pushq   %r8
        pushq   %r9                             # error code now at 56(%rsp)
        movq    %cr2, %r8                       # r8 = faulting GVA
        movabsq $REGION_VA, %rax
        cmpq    %rax, %r8
        jb      pf_unexpected
        addq    region_bytes(%rip), %rax
        cmpq    %rax, %r8
        jae     pf_unexpected
        testq   $1, 56(%rsp)
        jnz     pf_unexpected
        incq    pf_count(%rip)
        movq    %cr3, %rsi
        movabsq $ADDR_MASK, %r9
        andq    %r9, %rsi                       # rsi = current table
        movl    $39, %ecx                       # shift of the current level
        movq    page_size(%rip), %rdi
6:      movq    %r8, %rax                       # rdx = &table[(va >> shift) & 511]
        shrq    %cl, %rax
        andl    $511, %eax
        leaq    (%rsi,%rax,8), %rdx
        cmpl    $21, %ecx                       # leaf level for 2 MiB pages
        jne     7f
        cmpq    $PAGE_2M, %rdi
        je      8f
7:      cmpl    $12, %ecx                       # leaf level for 4 KiB pages
        je      8f
        movq    (%rdx), %rax                    # interior level: allocate if absent
        testq   $1, %rax
        jnz     9f
        pushq   %rdi
        pushq   %rsi
        movl    $PAGE_4K, %edi
        movl    $PAGE_4K, %esi
        call    alloc_zeroed_pages
        popq    %rsi
        popq    %rdi
        orq     $3, %rax
        movq    %rax, (%rdx)
9:      andq    %r9, %rax
        movq    %rax, %rsi
        subl    $9, %ecx
        jmp     6b
8:      pushq   %rsi                            # leaf: map one free page
        movq    %rdi, %rsi
        call    alloc_pages
        popq    %rsi
        orq     $3, %rax
        cmpq    $PAGE_2M, %rdi
        jne     10f
        orq     $0x80, %rax
10:     movq    %rax, (%rdx)
        popq    %r9
        popq    %r8
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rax
        addq    $8, %rsp                        # drop the error code
        iretq
pf_unexpected:
        leaq    msg_pf(%rip), %rdi
        call    puts
        movq    %r8, %rdi
        call    put_hex
        leaq    msg_err(%rip), %rdi
        call    puts
        movq    56(%rsp), %rdi
        call    put_hex
        call    put_nl
        movl    $1, %edi
        call    exit

        .section .rodata
word_huge:
        .asciz  "huge"
msg_region:
        .asciz  "demand-paging: region "
msg_size:
        .asciz  " size "
msg_page:
        .asciz  " page "
msg_faults:
        .asciz  "page faults handled: "
msg_verified:
        .asciz  "pattern verified: "
msg_words:
        .asciz  " words\n"
msg_count:
        .asciz  "demand-paging: wrong fault count, expected "
msg_bad_size:
        .asciz  "demand-paging: region size must be 1 byte to 256 GiB"
msg_small:
        .asciz  "demand-paging: guest memory too small: need "
msg_have:
        .asciz  " free bytes, have "
msg_bad_pattern:
        .asciz  "demand-paging: pattern mismatch at "
msg_pf: .asciz  "demand-paging: unexpected page fault at "
msg_err:
        .asciz  " error "

        .bss
        .balign 8
page_size:
        .quad   0
region_bytes:
        .quad   0
pf_count:
        .quad   0
