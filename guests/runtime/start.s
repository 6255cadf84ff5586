# Guest entry shared by every sample guest: records the initial GPRs and control registers
# (boot_regs, for the boot-info guest), saves the boot-info pointer (RDI, GUEST-ABI.md),
# checks the boot-info magic, initialises the page allocator from free_start, calls
# guest_main(boot_info) and exits with its return value through the debug-exit port.
        .include "runtime.inc"

        .section .text.start, "ax"
        .globl _start
_start:
        movq    %rax, boot_regs+0(%rip)         # GPRs in encoding order rax..r15
        movq    %rcx, boot_regs+8(%rip)
        movq    %rdx, boot_regs+16(%rip)
        movq    %rbx, boot_regs+24(%rip)
        movq    %rsp, boot_regs+32(%rip)
        movq    %rbp, boot_regs+40(%rip)
        movq    %rsi, boot_regs+48(%rip)
        movq    %rdi, boot_regs+56(%rip)
        movq    %r8, boot_regs+64(%rip)
        movq    %r9, boot_regs+72(%rip)
        movq    %r10, boot_regs+80(%rip)
        movq    %r11, boot_regs+88(%rip)
        movq    %r12, boot_regs+96(%rip)
        movq    %r13, boot_regs+104(%rip)
        movq    %r14, boot_regs+112(%rip)
        movq    %r15, boot_regs+120(%rip)
        movq    %cr0, %rax
        movq    %rax, boot_cr+0(%rip)
        movq    %cr3, %rax
        movq    %rax, boot_cr+8(%rip)
        movq    %cr4, %rax
        movq    %rax, boot_cr+16(%rip)
        sgdt    boot_gdtr(%rip)
        sidt    boot_idtr(%rip)
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
        .globl boot_regs, boot_cr, boot_gdtr, boot_idtr
boot_regs:
        .skip   16 * 8
boot_cr:
        .skip   3 * 8                           # CR0, CR3, CR4
boot_gdtr:
        .skip   16                              # limit (2 bytes) + base (8 bytes)
boot_idtr:
        .skip   16
