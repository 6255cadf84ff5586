# Leaving the VM and marking the region of interest (docs/guest-abi.md "Devices and exits").
        .include "runtime.inc"
        .text

# exit(edi = status): never returns. The dword write reaches QEMU's isa-debug-exit too.
        .globl exit
exit:
        movl    %edi, %eax
        movw    $PORT_EXIT, %dx
        outl    %eax, %dx
1:      hlt                             # only reached if the VMM ignored the exit port
        jmp     1b

# panic(rdi = message): prints "panic: <message>" and exits with status 1.
        .globl panic
panic:
        pushq   %rdi
        leaq    msg_panic(%rip), %rdi
        call    puts
        popq    %rdi
        call    puts
        call    put_nl
        movl    $1, %edi
        call    exit

# roi_begin() / roi_end(): snapshot counters around the measured part of a guest.
# They preserve every register (RAX too) so they can sit inside a measured loop's setup.
        .globl roi_begin
roi_begin:
        pushq   %rax
        pushq   %rdx
        movw    $PORT_ROI, %dx
        movb    $1, %al
        outb    %al, %dx
        popq    %rdx
        popq    %rax
        ret

        .globl roi_end
roi_end:
        pushq   %rax
        pushq   %rdx
        movw    $PORT_ROI, %dx
        movb    $2, %al
        outb    %al, %dx
        popq    %rdx
        popq    %rax
        ret

        .section .rodata
msg_panic:
        .asciz  "panic: "
