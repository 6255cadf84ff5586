# ud-bad-gate: a probe of exception escalation, run by test/kvm-diff.test.ts on both KVM
# and hugevisor (built by tools/kvm/run-guest.mjs buildKvmGuest, not by scripts/build.mjs:
# guests/ belongs to the guests branch). It raises #UD through an IDT whose #UD gate is
# not present, with handlers for #DF, #NP and #GP installed.
# hugevisor follows the SDM (Vol. 3A 6.15, Table 6-5), as QEMU TCG does: #UD is benign, so
# the not-present gate's #NP(0x33) is delivered serially. docs/guest-abi.md simplifies this to
# "a fault while delivering -> #DF", and the KVM on this machine (which emulates event
# delivery in software) gives #DF; the test pins both outcomes.
# Output: "ud2 through a bad #UD gate", then "#DF error 0x..." (exit 8), "#NP error 0x..."
# (exit 11) or "#GP error 0x..." (exit 13).
        .include "runtime.inc"
        .text
        .globl guest_main
guest_main:
        movl    $VEC_DF, %edi
        leaq    on_df(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_GP, %edi
        leaq    on_gp(%rip), %rsi
        call    idt_set_gate
        movl    $11, %edi                       # #NP
        leaq    on_np(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_UD, %edi
        leaq    on_ud(%rip), %rsi
        call    idt_set_gate
        leaq    idt_table(%rip), %rax
        movb    $0x0e, VEC_UD*16+5(%rax)        # P=0: not present
        call    idt_load
        leaq    msg(%rip), %rdi
        call    puts
        ud2

on_gp:  leaq    msg_gp(%rip), %rdi
        movl    $13, %ebx
        jmp     report
on_np:  leaq    msg_np(%rip), %rdi
        movl    $11, %ebx
        jmp     report
on_df:  leaq    msg_df(%rip), %rdi
        movl    $8, %ebx
        jmp     report
on_ud:  leaq    msg_ud(%rip), %rdi              # only if the bad gate were honoured (no error code)
        call    puts
        call    put_nl
        movl    $6, %edi
        call    exit
report: call    puts
        movq    (%rsp), %rdi                    # the error code on the exception frame
        call    put_hex
        call    put_nl
        movl    %ebx, %edi
        call    exit

        .section .rodata
msg:    .asciz  "ud2 through a bad #UD gate\n"
msg_gp: .asciz  "#GP error "
msg_df: .asciz  "#DF error "
msg_np: .asciz  "#NP error "
msg_ud: .asciz  "#UD handler ran"
