# A 256-entry 64-bit IDT owned by the runtime (docs/guest-abi.md "Exceptions": interrupt gates,
# selector 0x08). Guests install handlers with idt_set_gate and load it with idt_load.
        .include "runtime.inc"
        .text

# idt_set_gate(rdi = vector, rsi = handler address); preserves all but RAX
        .globl idt_set_gate
idt_set_gate:
        pushq   %rcx
        pushq   %rdx
        movq    %rdi, %rcx
        shlq    $4, %rcx
        leaq    idt_table(%rip), %rdx
        addq    %rdx, %rcx              # rcx = &idt[vector]
        movq    %rsi, %rax
        andl    $0xffff, %eax           # offset 15:0
        orl     $0x00080000, %eax       # selector 0x08
        movl    %eax, (%rcx)
        movq    %rsi, %rax
        andl    $0xffff0000, %eax       # offset 31:16
        orl     $0x8e00, %eax           # present, DPL 0, 64-bit interrupt gate
        movl    %eax, 4(%rcx)
        movq    %rsi, %rax
        shrq    $32, %rax
        movl    %eax, 8(%rcx)           # offset 63:32
        movl    $0, 12(%rcx)
        popq    %rdx
        popq    %rcx
        ret

# idt_load(): lidt with all 256 vectors
        .globl idt_load
idt_load:
        leaq    idt_table(%rip), %rax
        movq    %rax, idtr_image+2(%rip)
        lidt    idtr_image(%rip)
        ret

# idt_install_fatal(): every vector the vCPU delivers (#DE, #UD, #DF, #GP, #PF) gets a
# handler that prints "unexpected exception V at RIP r error e cr2 c" and exits 3.
# Guests then override the vectors they handle themselves.
        .globl idt_install_fatal
idt_install_fatal:
        pushq   %rdi
        pushq   %rsi
        movl    $VEC_DE, %edi
        leaq    fatal_de(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_UD, %edi
        leaq    fatal_ud(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_DF, %edi
        leaq    fatal_df(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_GP, %edi
        leaq    fatal_gp(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_PF, %edi
        leaq    fatal_pf(%rip), %rsi
        call    idt_set_gate
        popq    %rsi
        popq    %rdi
        ret

fatal_de:
        pushq   $0                      # no error code: keep one frame shape
        pushq   $VEC_DE
        jmp     fatal_common
fatal_ud:
        pushq   $0
        pushq   $VEC_UD
        jmp     fatal_common
fatal_df:
        pushq   $VEC_DF
        jmp     fatal_common
fatal_gp:
        pushq   $VEC_GP
        jmp     fatal_common
fatal_pf:
        pushq   $VEC_PF
# frame: 0 vector, 8 error code, 16 RIP, 24 CS, 32 RFLAGS, 40 RSP, 48 SS
fatal_common:
        leaq    msg_unexpected(%rip), %rdi
        call    puts
        movq    (%rsp), %rdi
        call    put_dec
        leaq    msg_at(%rip), %rdi
        call    puts
        movq    16(%rsp), %rdi
        call    put_hex
        leaq    msg_error(%rip), %rdi
        call    puts
        movq    8(%rsp), %rdi
        call    put_hex
        leaq    msg_cr2(%rip), %rdi
        call    puts
        movq    %cr2, %rdi
        call    put_hex
        call    put_nl
        movl    $3, %edi
        call    exit

        .section .rodata
msg_unexpected:
        .asciz  "unexpected exception "
msg_at: .asciz  " at RIP "
msg_error:
        .asciz  " error "
msg_cr2:
        .asciz  " cr2 "

        .data
        .balign 16
idtr_image:
        .word   256 * 16 - 1
        .quad   0

        .bss
        .balign 4096
        .globl idt_table
idt_table:
        .skip   256 * 16
