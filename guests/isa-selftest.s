# isa-selftest: known-answer tests of every instruction group of the subset, flags too.
# The data/alu/control/strings groups of the docs/guest-abi.md subset (flags included) come
# from guests/isa/*.inc, the very
# files the native oracle (tools/oracle/) runs on the real CPU; the system group (CPUID,
# control registers, descriptor tables, segment loads, INVLPG, #DE/#UD/#GP/#PF through our
# own IDT and back with IRETQ, #BP from INT3, POPF of IOPL/NT/AC) needs CPL 0 and lives here. RFLAGS of each tested
# instruction is read from the frame of a #UD trap (a UD2 right after it), so AF is
# checked too; the command-line token "noaf" reads flags through SETcc only instead, and
# "noint3" leaves out the INT3 test (for a KVM whose instruction emulator cannot deliver it).
# Prints "<group>: N passed" per group and "N passed, M failed"; exits 1 on any failure.
        .include "runtime.inc"
        .include "framework.inc"
        .include "alu-macros.inc"
        .include "isa-macros.inc"

# DF is set/cleared by an IRETQ to the next instruction (STD/CLD are not in the subset).
        .macro  SET_DF
        movq    %rsp, %r15
        pushq   $0x10
        pushq   %r15
        pushq   $0x402
        pushq   $0x08
        leaq    .Ldf\@(%rip), %r15
        pushq   %r15
        iretq
.Ldf\@:
        .endm
        .macro  CLR_DF
        movq    %rsp, %r15
        pushq   $0x10
        pushq   %r15
        pushq   $0x002
        pushq   $0x08
        leaq    .Lcf\@(%rip), %r15
        pushq   %r15
        iretq
.Lcf\@:
        .endm

# EXPECT_EXC vector: arm the exception recorder to resume at the label after the next
# instruction sequence (closed with EXC_RESUME).
        .macro  EXPECT_EXC
        leaq    .Lresume\@(%rip), %rax
        movq    %rax, resume_rip(%rip)
        movq    $-1, exc_vector(%rip)
        .endm

        .text
        .globl guest_main
guest_main:
        pushq   %rbx
        pushq   %rbp
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        call    idt_install_fatal
        movl    $VEC_DE, %edi
        leaq    exc_de(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_UD, %edi
        leaq    exc_ud(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_GP, %edi
        leaq    exc_gp(%rip), %rsi
        call    idt_set_gate
        movl    $VEC_PF, %edi
        leaq    exc_pf(%rip), %rsi
        call    idt_set_gate
        movl    $3, %edi                        # #BP (INT3)
        leaq    exc_bp(%rip), %rsi
        call    idt_set_gate
        call    idt_load
        leaq    word_noaf(%rip), %rdi
        call    cmdline_has
        testq   %rax, %rax
        jz      1f
        leaq    capture_setcc(%rip), %rax
        movq    %rax, capture_impl(%rip)
        movq    $0, have_af(%rip)
1:
        leaq    word_noint3(%rip), %rdi
        call    cmdline_has
        movq    %rax, skip_int3(%rip)
        GROUP_BEGIN "data"
        .include "data.inc"
        GROUP_END
        GROUP_BEGIN "alu"
        .include "alu-vectors.inc"
        .include "alu-forms.inc"
        GROUP_END
        GROUP_BEGIN "control"
        .include "control.inc"
        GROUP_END
        GROUP_BEGIN "strings"
        .include "strings.inc"
        GROUP_END
        GROUP_BEGIN "system"
        .include "system.inc"
        GROUP_END
        call    report_total
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbp
        popq    %rbx
        ret

# capture_flags: a UD2 whose #UD handler copies RFLAGS from the frame, then the SETcc
# view. Neither changes a register or a flag.
capture_flags:
        jmp     *capture_impl(%rip)
capture_trap:
capture_ud2:
        ud2
capture_setcc:
        setc    setcc_bytes+0(%rip)
        setp    setcc_bytes+1(%rip)
        setz    setcc_bytes+2(%rip)
        sets    setcc_bytes+3(%rip)
        seto    setcc_bytes+4(%rip)
        ret

# Exception entry points: one frame shape (vector, error code) for the recorder.
exc_de:
        pushq   $0
        pushq   $VEC_DE
        jmp     exc_record
exc_ud:
        pushq   %rax                            # the flag-capture UD2: resume after it
        leaq    capture_ud2(%rip), %rax
        cmpq    %rax, 8(%rsp)
        jne     1f
        movq    24(%rsp), %rax                  # frame: rax, RIP, CS, RFLAGS, RSP, SS
        movq    %rax, trapped_flags(%rip)
        addq    $2, 8(%rsp)
        popq    %rax
        iretq
1:      popq    %rax
        pushq   $0
        pushq   $VEC_UD
        jmp     exc_record
exc_bp:
        pushq   $0
        pushq   $3
        jmp     exc_record
exc_gp:
        pushq   $VEC_GP
        jmp     exc_record
exc_pf:
        pushq   $VEC_PF
# frame: 0 vector, 8 error, 16 RIP, 24 CS, 32 RFLAGS, 40 RSP, 48 SS
exc_record:
        pushq   %rax
        movq    8(%rsp), %rax
        movq    %rax, exc_vector(%rip)
        movq    16(%rsp), %rax
        movq    %rax, exc_error(%rip)
        movq    24(%rsp), %rax
        movq    %rax, exc_rip(%rip)
        movq    40(%rsp), %rax
        movq    %rax, exc_rflags(%rip)
        movq    %cr2, %rax
        movq    %rax, exc_cr2(%rip)
        movq    resume_rip(%rip), %rax
        testq   %rax, %rax
        jz      2f
        movq    %rax, 24(%rsp)
        movq    $0, resume_rip(%rip)
        popq    %rax
        addq    $16, %rsp
        iretq
2:      popq    %rax                            # not expected: report like the runtime
        addq    $8, %rsp
        leaq    s_unexp(%rip), %rdi
        call    puts
        movq    exc_vector(%rip), %rdi
        call    put_dec
        leaq    s_atrip(%rip), %rdi
        call    puts
        movq    exc_rip(%rip), %rdi
        call    put_hex
        call    put_nl
        movl    $3, %edi
        call    exit

        .include "framework-funcs.inc"

        .section .rodata
word_noaf:
        .asciz  "noaf"
word_noint3:
        .asciz  "noint3"
s_unexp:
        .asciz  "isa-selftest: unexpected exception "
s_atrip:
        .asciz  " at RIP "

        .data
        .balign 8
        .globl have_af
have_af:        .quad 1
capture_impl:   .quad capture_trap
skip_int3:      .quad 0
resume_rip:     .quad 0
exc_vector:     .quad 0
exc_error:      .quad 0
exc_rip:        .quad 0
exc_rflags:     .quad 0
exc_cr2:        .quad 0
