# memset/memcpy and a bump allocator of physical pages starting at boot info's free_start
# (initialised on first use).
# Guest RAM above free_start is not promised to be zero (under QEMU the trampoline lived
# below 1 MiB, but other loaders may differ), so alloc_zeroed_pages clears what it hands out.
        .include "runtime.inc"
        .text

# memset(rdi = dst, esi = byte, rdx = count); preserves all but RAX
        .globl memset
memset:
        pushq   %rdi
        pushq   %rcx
        movl    %esi, %eax
        movq    %rdx, %rcx
        rep stosb
        popq    %rcx
        popq    %rdi
        ret

# memcpy(rdi = dst, rsi = src, rdx = count); preserves all but RAX
        .globl memcpy
memcpy:
        pushq   %rdi
        pushq   %rsi
        pushq   %rcx
        movq    %rdx, %rcx
        rep movsb
        popq    %rcx
        popq    %rsi
        popq    %rdi
        ret

# alloc_pages(rdi = bytes, rsi = alignment, a power of two >= 4096) -> rax = GPA.
# Panics when the request does not fit below the memory size from boot info.
        .globl alloc_pages
alloc_pages:
        pushq   %rcx
        pushq   %rdx
        call    alloc_init
        movq    alloc_next(%rip), %rax
        leaq    -1(%rsi), %rcx
        addq    %rcx, %rax
        notq    %rcx
        andq    %rcx, %rax              # rax = next rounded up to the alignment
        movq    %rax, %rdx
        addq    %rdi, %rdx
        jc      1f
        pushq   %rax
        call    bi_ptr
        movq    %rax, %rcx
        popq    %rax
        cmpq    BI_MEMORY(%rcx), %rdx
        ja      1f
        movq    %rdx, alloc_next(%rip)
        popq    %rdx
        popq    %rcx
        ret
1:      leaq    msg_oom(%rip), %rdi
        call    panic

# alloc_zeroed_pages(rdi = bytes, rsi = alignment) -> rax = GPA of zeroed memory
        .globl alloc_zeroed_pages
alloc_zeroed_pages:
        pushq   %rcx
        pushq   %rdi
        call    alloc_pages
        movq    %rdi, %rcx
        movq    %rax, %rdi
        pushq   %rax
        xorl    %eax, %eax
        shrq    $3, %rcx
        rep stosq
        popq    %rax
        popq    %rdi
        popq    %rcx
        ret

# alloc_init(): the allocator starts at free_start on first use (start.s stays minimal)
alloc_init:
        cmpq    $0, alloc_next(%rip)
        jne     1f
        pushq   %rax
        call    bi_ptr
        movq    BI_FREE_START(%rax), %rax
        movq    %rax, alloc_next(%rip)
        popq    %rax
1:      ret

# mem_free_bytes() -> rax = bytes left between the allocator and the end of memory
        .globl mem_free_bytes
mem_free_bytes:
        call    alloc_init
        call    bi_ptr
        movq    BI_MEMORY(%rax), %rax
        subq    alloc_next(%rip), %rax
        jae     1f
        xorl    %eax, %eax
1:      ret

# region_too_big(rdi = guest name, rsi = region bytes, rdx = bytes free): the region does not
# fit; print which --memory would hold it (memory plus what is missing, plus 1/256 for the
# larger boot page tables a larger memory needs (1/512 with 4 KiB pages), in whole MiB) as
# "panic: NAME: guest memory too small for the N-byte region: run with --memory of at least
# M bytes", and exit 1 as panic does.
        .globl region_too_big
region_too_big:
        movq    %rsi, %r8               # region
        movq    %rdx, %r9               # free
        pushq   %r8
        pushq   %r9
        pushq   %rdi
        leaq    msg_panic_prefix(%rip), %rdi
        call    puts
        popq    %rdi
        call    puts
        leaq    msg_small(%rip), %rdi
        call    puts
        movq    8(%rsp), %rdi
        call    put_dec
        leaq    msg_small_need(%rip), %rdi
        call    puts
        call    bi_ptr
        movq    BI_MEMORY(%rax), %rdi
        popq    %r9
        popq    %r8
        addq    %r8, %rdi
        subq    %r9, %rdi
        movq    %rdi, %rax
        shrq    $8, %rax
        addq    %rax, %rdi
        addq    $0xfffff, %rdi
        andq    $-0x100000, %rdi
        call    put_dec
        leaq    msg_small_bytes(%rip), %rdi
        call    puts
        call    put_nl
        movl    $1, %edi
        call    exit

        .section .rodata
msg_oom:
        .asciz  "out of guest memory"
msg_panic_prefix:
        .asciz  "panic: "
msg_small:
        .asciz  ": guest memory too small for the "
msg_small_need:
        .asciz  "-byte region: run with --memory of at least "
msg_small_bytes:
        .asciz  " bytes"

        .bss
        .balign 8
        .globl alloc_next
alloc_next:
        .quad   0
