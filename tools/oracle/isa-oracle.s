# Native oracle for the isa-selftest guest: a Linux x86-64 user program assembled from the
# same test vectors (guests/isa/*.inc) with a user-mode environment: output through the
# write syscall, RFLAGS captured with PUSHFQ, DF set with STD/CLD. Running it on this
# machine proves every expected value in the vectors against the real CPU. The system
# group (CPUID, CRs, descriptor tables, exceptions) needs CPL 0 and runs in the guest only.
        .include "framework.inc"
        .include "alu-macros.inc"
        .include "isa-macros.inc"

        .macro  SET_DF
        std
        .endm
        .macro  CLR_DF
        cld
        .endm

        .text
        .globl  _start
_start:
        andq    $-16, %rsp
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
        call    report_total
        movl    %eax, %edi
        movl    $60, %eax                       # exit
        syscall

# capture_flags: RFLAGS via PUSHFQ, then the SETcc view; no register changes.
capture_flags:
        pushfq
        popq    trapped_flags(%rip)
        setc    setcc_bytes+0(%rip)
        setp    setcc_bytes+1(%rip)
        setz    setcc_bytes+2(%rip)
        sets    setcc_bytes+3(%rip)
        seto    setcc_bytes+4(%rip)
        ret

# puts(rdi) via write(1, ...); put_hex/put_dec/put_nl as in guests/runtime/lib/console.s
puts:
        pushq   %rdi
        pushq   %rsi
        pushq   %rdx
        pushq   %rcx
        pushq   %r11
        movq    %rdi, %rsi
        xorl    %edx, %edx
1:      cmpb    $0, (%rsi,%rdx)
        je      2f
        incq    %rdx
        jmp     1b
2:      movl    $1, %edi
        movl    $1, %eax                        # write
        syscall
        popq    %r11
        popq    %rcx
        popq    %rdx
        popq    %rsi
        popq    %rdi
        ret
put_nl:
        pushq   %rdi
        leaq    s_nl(%rip), %rdi
        call    puts
        popq    %rdi
        ret
put_hex:
        pushq   %rcx
        pushq   %rsi
        pushq   %rdi
        leaq    numbuf+2(%rip), %rsi
        movl    $16, %ecx
1:      rolq    $4, %rdi
        movl    %edi, %eax
        andl    $15, %eax
        leaq    hexdig(%rip), %rdx
        movb    (%rdx,%rax), %al
        movb    %al, (%rsi)
        incq    %rsi
        decl    %ecx
        jnz     1b
        movb    $0, (%rsi)
        movw    $0x7830, numbuf(%rip)
        leaq    numbuf(%rip), %rdi
        call    puts
        popq    %rdi
        popq    %rsi
        popq    %rcx
        ret
put_dec:
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        leaq    numbuf+31(%rip), %rsi
        movb    $0, (%rsi)
        movq    %rdi, %rax
        movl    $10, %ecx
1:      xorl    %edx, %edx
        divq    %rcx
        addb    $'0', %dl
        decq    %rsi
        movb    %dl, (%rsi)
        testq   %rax, %rax
        jnz     1b
        movq    %rsi, %rdi
        call    puts
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        ret

        .include "framework-funcs.inc"

        .section .rodata
s_nl:   .asciz  "\n"
hexdig: .ascii  "0123456789abcdef"
        .data
        .globl have_af
have_af: .quad 1
numbuf: .skip 32
