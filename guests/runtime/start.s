# Guest entry shared by every sample guest: saves the boot-info pointer (RDI, GUEST-ABI.md),
# checks the boot-info magic, initialises the page allocator from free_start, calls
# guest_main(boot_info) and exits with its return value through the debug-exit port.
        .include "runtime.inc"

        .section .text.start, "ax"
        .globl _start
_start:
        movq    %rdi, boot_info(%rip)
        movabsq $BOOT_MAGIC, %rax
        cmpq    %rax, BI_MAGIC(%rdi)
        jne     bad_magic
        movq    BI_FREE_START(%rdi), %rax
        movq    %rax, alloc_next(%rip)
        call    guest_main
        movl    %eax, %edi
        call    exit
bad_magic:
        leaq    msg_magic(%rip), %rdi
        call    panic

        .section .rodata
msg_magic:
        .asciz  "boot info magic is not HVBOOT01"

        .bss
        .balign 8
        .globl boot_info
boot_info:
        .quad   0
