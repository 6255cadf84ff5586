# ud-no-idt: UD2 with no IDT loaded, so the VMM reports a triple fault (#UD first).
# IDTR limit is 0 at boot. On hardware delivering #UD then
# faults (#GP → #DF) and delivering #DF faults again: a triple fault, which the VMM reports
# with vector 6 first in the chain and RIP = the address printed below.
        .include "runtime.inc"
        .text
        .globl guest_main
guest_main:
        leaq    msg(%rip), %rdi
        call    puts
        leaq    the_ud2(%rip), %rdi
        call    put_hex
        call    put_nl
the_ud2:
        ud2
        leaq    msg_survived(%rip), %rdi   # only reached if #UD was not raised
        call    panic

        .section .rodata
msg:    .asciz  "executing ud2 with no IDT at "
msg_survived:
        .asciz  "ud2 did not fault"
