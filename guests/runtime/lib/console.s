# Console output on COM1 (docs/guest-abi.md "Devices"): one `out` per byte, no line-status
# polling (the port always reports the transmitter empty, and QEMU's UART never stalls).
# Every function here preserves all registers except RAX, so assembly guests stay short.
        .include "runtime.inc"
        .text

# putc(dil = byte)
        .globl putc
putc:
        pushq   %rdx
        movl    %edi, %eax
        movw    $PORT_COM1, %dx
        outb    %al, %dx
        popq    %rdx
        ret

# puts(rdi = NUL-terminated string); no newline added
        .globl puts
puts:
        pushq   %rsi
        pushq   %rdx
        movq    %rdi, %rsi
        movw    $PORT_COM1, %dx
1:      movb    (%rsi), %al
        testb   %al, %al
        jz      2f
        outb    %al, %dx
        incq    %rsi
        jmp     1b
2:      popq    %rdx
        popq    %rsi
        ret

# put_nl(): "\n"
        .globl put_nl
put_nl:
        pushq   %rdi
        movl    $10, %edi
        call    putc
        popq    %rdi
        ret

# put_hex(rdi = value): "0x" and 16 lower-case hex digits
        .globl put_hex
put_hex:
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        movw    $PORT_COM1, %dx
        movb    $'0', %al
        outb    %al, %dx
        movb    $'x', %al
        outb    %al, %dx
        movl    $16, %ecx
        movq    %rdi, %rsi
1:      rolq    $4, %rsi
        movl    %esi, %eax
        andl    $15, %eax
        leaq    hex_digits(%rip), %rdx
        movb    (%rdx,%rax), %al
        movw    $PORT_COM1, %dx
        outb    %al, %dx
        decl    %ecx
        jnz     1b
        popq    %rsi
        popq    %rdx
        popq    %rcx
        ret

# put_dec(rdi = unsigned value): decimal, no leading zeros
        .globl put_dec
put_dec:
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rbp
        movq    %rsp, %rbp
        subq    $32, %rsp
        leaq    -1(%rbp), %rsi          # digits are built backwards in a 32-byte buffer
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
        pushq   %rdi
        movq    %rsi, %rdi
        call    puts
        popq    %rdi
        movq    %rbp, %rsp
        popq    %rbp
        popq    %rsi
        popq    %rdx
        popq    %rcx
        ret

# put_kv(rdi = label, rsi = value): "label" then the value in decimal and a newline
        .globl put_kv
put_kv:
        call    puts
        pushq   %rdi
        movq    %rsi, %rdi
        call    put_dec
        call    put_nl
        popq    %rdi
        ret

        .section .rodata
hex_digits:
        .ascii  "0123456789abcdef"
