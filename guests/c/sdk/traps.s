# Exception entry stubs for the C IDT (sdk/idt.c): each stub pushes a dummy error code when
# the CPU pushed none, then its vector, saves the GPRs as a struct hv_trap_frame and calls
# hv_trap(frame). The frame is 16-byte aligned at the call: 7 + 15 quadwords on a stack the
# CPU aligned to 16 before pushing.
        .text
        .macro  stub vec, err
        .globl  hv_trap_stub_\vec
hv_trap_stub_\vec:
        .if     \err == 0
        pushq   $0
        .endif
        pushq   $\vec
        jmp     trap_common
        .endm

        stub 0, 0
        stub 1, 0
        stub 2, 0
        stub 3, 0
        stub 4, 0
        stub 5, 0
        stub 6, 0
        stub 7, 0
        stub 8, 1
        stub 9, 0
        stub 10, 1
        stub 11, 1
        stub 12, 1
        stub 13, 1
        stub 14, 1
        stub 15, 0
        stub 16, 0
        stub 17, 1
        stub 18, 0
        stub 19, 0

trap_common:
        pushq   %rax
        pushq   %rbx
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        pushq   %rbp
        pushq   %r8
        pushq   %r9
        pushq   %r10
        pushq   %r11
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, %rdi
        call    hv_trap
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rbp
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rbx
        popq    %rax
        addq    $16, %rsp               # vector and error code
        iretq

        .section .rodata
        .balign 8
        .globl  hv_trap_stubs
hv_trap_stubs:
        .quad   hv_trap_stub_0, hv_trap_stub_1, hv_trap_stub_2, hv_trap_stub_3
        .quad   hv_trap_stub_4, hv_trap_stub_5, hv_trap_stub_6, hv_trap_stub_7
        .quad   hv_trap_stub_8, hv_trap_stub_9, hv_trap_stub_10, hv_trap_stub_11
        .quad   hv_trap_stub_12, hv_trap_stub_13, hv_trap_stub_14, hv_trap_stub_15
        .quad   hv_trap_stub_16, hv_trap_stub_17, hv_trap_stub_18, hv_trap_stub_19
