# boot-info: prints the boot state the VMM handed over, for byte-exact cross-checks.
# Boot-info fields, command line, args, a
# hash of the boot page tables and of the GDT page, GDTR/IDTR, CR0/CR3/CR4 and every GPR
# at entry — so runs under QEMU (trampoline) and hugevisor can be compared byte for byte
# against docs/guest-abi.md "Image and boot".
        .include "runtime.inc"
        .text
# start.s only stored RDI and called us: every other GPR and RSP + 8 is still the
# VMM's initial state, so record it first.
        .globl guest_main
guest_main:
        movq    %rax, boot_regs+0(%rip)         # GPRs in encoding order rax..r15
        movq    %rcx, boot_regs+8(%rip)
        movq    %rdx, boot_regs+16(%rip)
        movq    %rbx, boot_regs+24(%rip)
        leaq    8(%rsp), %rax
        movq    %rax, boot_regs+32(%rip)
        movq    %rbp, boot_regs+40(%rip)
        movq    %rsi, boot_regs+48(%rip)
        movq    %rdi, boot_regs+56(%rip)
        movq    %r8, boot_regs+64(%rip)
        movq    %r9, boot_regs+72(%rip)
        movq    %r10, boot_regs+80(%rip)
        movq    %r11, boot_regs+88(%rip)
        movq    %r12, boot_regs+96(%rip)
        movq    %r13, boot_regs+104(%rip)
        movq    %r14, boot_regs+112(%rip)
        movq    %r15, boot_regs+120(%rip)
        movq    %cr0, %rax
        movq    %rax, boot_cr+0(%rip)
        movq    %cr3, %rax
        movq    %rax, boot_cr+8(%rip)
        movq    %cr4, %rax
        movq    %rax, boot_cr+16(%rip)
        sgdt    boot_gdtr(%rip)
        sidt    boot_idtr(%rip)
        movq    boot_regs+0(%rip), %rax
        pushq   %rbx
        pushq   %r12
        movq    boot_info(%rip), %rbx
        movabsq $BOOT_MAGIC, %rax
        cmpq    %rax, BI_MAGIC(%rbx)
        je      0f
        leaq    s_magic(%rip), %rdi
        call    panic
0:      leaq    s_memory(%rip), %rdi
        movq    BI_MEMORY(%rbx), %rsi
        call    put_kv
        leaq    s_free(%rip), %rdi
        call    puts
        movq    BI_FREE_START(%rbx), %rdi
        call    put_hex
        leaq    s_pml4(%rip), %rdi
        call    puts
        movq    BI_PML4(%rbx), %rdi
        call    put_hex
        leaq    s_bi(%rip), %rdi
        call    puts
        movq    %rbx, %rdi
        call    put_hex
        call    put_nl
        leaq    s_psize(%rip), %rdi
        movq    BI_PAGE_SIZE(%rbx), %rsi
        call    put_kv
        leaq    s_cmdline(%rip), %rdi
        call    puts
        movq    BI_CMDLINE(%rbx), %rdi
        call    put_hex
        testq   %rdi, %rdi
        jz      1f
        leaq    s_quote(%rip), %rdi
        call    puts
        movq    BI_CMDLINE(%rbx), %rdi
        call    puts
        leaq    s_quote2(%rip), %rdi
        call    puts
1:      call    put_nl
        leaq    s_nargs(%rip), %rdi             # args
        movq    BI_NARGS(%rbx), %rsi
        call    put_kv
        xorl    %r12d, %r12d
2:      cmpq    BI_NARGS(%rbx), %r12
        jae     3f
        cmpq    $BI_MAX_ARGS, %r12
        jae     3f
        leaq    s_arg(%rip), %rdi
        call    puts
        movq    %r12, %rdi
        call    put_dec
        leaq    s_eq(%rip), %rdi
        call    puts
        movq    BI_ARGS(%rbx,%r12,8), %rdi
        call    put_dec
        call    put_nl
        incq    %r12
        jmp     2b
3:      leaq    s_tables(%rip), %rdi            # the tables: [PML4, boot info)
        call    puts
        movq    %rbx, %rax
        subq    BI_PML4(%rbx), %rax
        shrq    $12, %rax
        movq    %rax, %rdi
        call    put_dec
        leaq    s_hash(%rip), %rdi
        call    puts
        movq    BI_PML4(%rbx), %rdi
        movq    %rbx, %rsi
        movq    $~0x60, %rdx                    # the MMU sets Accessed/Dirty as we run
        call    hash_range
        movq    %rax, %rdi
        call    put_hex
        call    put_nl
        leaq    s_bihash(%rip), %rdi            # the whole boot-info page
        call    puts
        movq    %rbx, %rdi
        leaq    4096(%rbx), %rsi
        movq    $-1, %rdx
        call    hash_range
        movq    %rax, %rdi
        call    put_hex
        call    put_nl
        leaq    s_gdtr(%rip), %rdi
        call    puts
        movq    boot_gdtr+2(%rip), %rdi
        call    put_hex
        leaq    s_limit(%rip), %rdi
        call    puts
        movzwq  boot_gdtr(%rip), %rdi
        call    put_dec
        leaq    s_hash(%rip), %rdi
        call    puts
        movq    boot_gdtr+2(%rip), %rdi
        leaq    4096(%rdi), %rsi
        movq    $-1, %rdx
        call    hash_range
        movq    %rax, %rdi
        call    put_hex
        call    put_nl
        movq    boot_gdtr+2(%rip), %r12         # the three descriptors
        xorl    %ecx, %ecx
4:      leaq    s_desc(%rip), %rdi
        call    puts
        movq    (%r12,%rcx,8), %rdi
        call    put_hex
        incl    %ecx
        cmpl    $3, %ecx
        jb      4b
        call    put_nl
        leaq    s_idtr(%rip), %rdi
        call    puts
        movzwq  boot_idtr(%rip), %rdi
        call    put_dec
        call    put_nl
        leaq    s_cr0(%rip), %rdi
        call    puts
        movq    boot_cr(%rip), %rdi
        call    put_hex
        leaq    s_cr3(%rip), %rdi
        call    puts
        movq    boot_cr+8(%rip), %rdi
        call    put_hex
        leaq    s_cr4(%rip), %rdi
        call    puts
        movq    boot_cr+16(%rip), %rdi
        call    put_hex
        call    put_nl
        xorl    %r12d, %r12d                    # GPRs at entry
5:      leaq    reg_names(%rip), %rdi
        leaq    (%rdi,%r12,4), %rdi
        call    puts
        leaq    s_eq(%rip), %rdi
        call    puts
        leaq    boot_regs(%rip), %rdi
        movq    (%rdi,%r12,8), %rdi
        call    put_hex
        movl    %r12d, %eax                     # four registers per line
        andl    $3, %eax
        cmpl    $3, %eax
        movl    $' ', %edi
        jne     8f
        movl    $10, %edi
8:      call    putc
        incq    %r12
        cmpq    $16, %r12
        jb      5b
        xorl    %eax, %eax
        popq    %r12
        popq    %rbx
        ret

# hash_range(rdi = start, rsi = end, rdx = mask applied to each qword) -> rax: FNV-1a
# style over qwords (multiply by the 64-bit FNV prime after each xor).
hash_range:
        pushq   %rdi
        pushq   %rcx
        pushq   %r8
        movabsq $0xcbf29ce484222325, %rax
        movabsq $0x100000001b3, %rcx
1:      cmpq    %rsi, %rdi
        jae     2f
        movq    (%rdi), %r8
        andq    %rdx, %r8
        xorq    %r8, %rax
        imulq   %rcx, %rax
        addq    $8, %rdi
        jmp     1b
2:      popq    %r8
        popq    %rcx
        popq    %rdi
        ret

        .section .rodata
s_memory:  .asciz "memory "
s_free:    .asciz "free_start "
s_pml4:    .asciz " pml4 "
s_bi:      .asciz " boot_info "
s_psize:   .asciz "page size "
s_cmdline: .asciz "cmdline "
s_quote:   .asciz " \""
s_quote2:  .asciz "\""
s_nargs:   .asciz "args "
s_arg:     .asciz "arg"
s_eq:      .asciz "="
s_tables:  .asciz "boot tables: pages "
s_hash:    .asciz " hash "
s_bihash:  .asciz "boot info page hash "
s_gdtr:    .asciz "gdtr base "
s_limit:   .asciz " limit "
s_desc:    .asciz " "
s_idtr:    .asciz "idtr limit "
s_cr0:     .asciz "cr0 "
s_cr3:     .asciz " cr3 "
s_cr4:     .asciz " cr4 "
s_magic:   .asciz "boot info magic is not HVBOOT01"
reg_names: .ascii "rax\0rcx\0rdx\0rbx\0rsp\0rbp\0rsi\0rdi\0r8\0\0r9\0\0r10\0r11\0r12\0r13\0r14\0r15\0"

        .bss
        .balign 8
boot_regs: .skip 16 * 8
boot_cr:   .skip 3 * 8                          # CR0, CR3, CR4
boot_gdtr: .skip 16                             # limit (2 bytes) + base (8 bytes)
boot_idtr: .skip 16
