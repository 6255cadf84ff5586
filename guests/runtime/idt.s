# A 256-entry 64-bit IDT owned by the runtime (GUEST-ABI.md "Exceptions": interrupt gates,
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
