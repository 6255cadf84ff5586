# Guest entry shared by every sample guest: saves the boot-info pointer (RDI, docs/guest-abi.md),
# calls guest_main(boot_info) and exits with its return value through the debug-exit port.
        .section .text.start, "ax"
        .globl _start
_start:
        movq    %rdi, boot_info(%rip)
        call    guest_main
        movw    $0xf4, %dx
        outl    %eax, %dx
1:      hlt
        jmp     1b

        .bss
        .balign 8
        .globl boot_info
boot_info:
        .quad   0
