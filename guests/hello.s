# hello: prints one line on COM1 and exits with status 0.
        .text
        .globl guest_main
guest_main:
        leaq    msg(%rip), %rsi
        movw    $0x3f8, %dx
1:      lodsb
        testb   %al, %al
        jz      2f
        outb    %al, %dx
        jmp     1b
2:      xorl    %eax, %eax
        ret

        .section .rodata
msg:    .asciz  "Hello from a hugevisor guest!\n"
