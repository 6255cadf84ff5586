# QEMU multiboot (v1) trampoline: lets QEMU boot a hugevisor guest ELF64 exactly as the
# hugevisor VMM would (docs/guest-abi.md "Image and boot"). QEMU loads this ELF32 with
# `-kernel trampoline.elf -initrd guest.elf -append "mem=... pages=4k args=1,2 cmdline=..."`;
# we copy the guest's PT_LOAD segments, build the boot page tables, boot info, GDT page and
# stack at the exact addresses the protocol fixes, enter long mode and jump to e_entry with
# the protocol's initial register state. `cmdline=` must be the last token: the rest of
# the line is the guest command line. Errors print "trampoline: ..." on COM1 and exit 126.
        .set    MB_MAGIC, 0x1BADB002
        .set    MB_FLAGS, 0x00000002            # ask for the memory fields
        .set    BOOT_MAGIC_LO, 0x4F425648       # "HVBO"
        .set    BOOT_MAGIC_HI, 0x3130544F       # "OT01"
        .set    STATUS_TRAMP_ERROR, 126

        .section .multiboot, "a"
        .balign 4
        .long   MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .code32
        .text
        .globl  mb_entry
mb_entry:
        cli
        movl    $stack_top, %esp
        cmpl    $0x2BADB002, %eax
        jne     err_nomb
        movl    %ebx, mbi
        lgdt    tramp_gdtr
        ljmp    $0x08, $1f
1:      movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    %ax, %fs
        movw    %ax, %gs
        cld
        movl    mbi, %ebx
        testl   $1, (%ebx)                      # mem_lower/mem_upper valid
        jz      err_nomb
        movl    8(%ebx), %eax                   # KiB above 1 MiB
        addl    $1024, %eax
        shll    $10, %eax
        movl    %eax, ram_bytes
        testl   $4, (%ebx)                      # command line present
        jz      2f
        movl    16(%ebx), %eax
        movl    %eax, mb_cmdline
2:      testl   $8, (%ebx)                      # modules present
        jz      err_nomod
        cmpl    $1, 20(%ebx)
        jb      err_nomod
        movl    24(%ebx), %esi
        movl    (%esi), %eax
        movl    %eax, mod_start
        movl    4(%esi), %eax
        movl    %eax, mod_end
        cmpl    $0x9F000, %eax                  # must stay below the VGA hole and 1 MiB
        ja      err_modhigh

        # --- mem= and pages= ---
        movl    ram_bytes, %eax
        andl    $0xFFE00000, %eax
        movl    %eax, mem_bytes
        movl    $key_mem, %edi
        call    find_token
        testl   %eax, %eax
        jz      3f
        movl    %eax, %esi
        call    parse_u32
        movl    %eax, mem_bytes
3:      movl    mem_bytes, %eax
        testl   $0xFFF, %eax
        jnz     err_mem
        cmpl    $0x200000, %eax
        jb      err_mem
        cmpl    $0xC0000000, %eax
        ja      err_mem
        cmpl    ram_bytes, %eax
        ja      err_mem
        movl    $key_pages, %edi
        call    find_token
        testl   %eax, %eax
        jz      5f
        movl    (%eax), %ecx                    # compare the two-character value + terminator
        andl    $0x00FFFFFF, %ecx
        cmpl    $0x00006B34, %ecx               # "4k"
        je      5f
        cmpl    $0x00206B34, %ecx               # "4k "
        je      5f
        cmpl    $0x00006D32, %ecx               # "2m"
        je      4f
        cmpl    $0x00206D32, %ecx
        je      4f
        cmpl    $0x00006731, %ecx               # "1g"
        je      6f
        cmpl    $0x00206731, %ecx
        je      6f
        jmp     err_pages
4:      movl    $0x200000, page_size
        jmp     7f
5:      movl    $0x1000, page_size
        jmp     7f
6:      movl    $0x40000000, page_size
7:      movl    $key_args, %edi
        call    find_token
        movl    %eax, args_ptr
        movl    $key_cmdline, %edi
        call    find_token
        movl    %eax, gcmd_ptr

        # --- load the guest ELF64 ---
        movl    mod_start, %ebx
        cmpl    $0x464C457F, (%ebx)             # "\x7fELF"
        jne     err_elf
        cmpb    $2, 4(%ebx)                     # ELFCLASS64
        jne     err_elf
        cmpw    $0x3E, 18(%ebx)                 # EM_X86_64
        jne     err_elf
        cmpl    $0, 28(%ebx)
        jne     err_elf
        movl    24(%ebx), %eax
        movl    %eax, entry_slot
        movl    32(%ebx), %edx                  # e_phoff
        addl    %ebx, %edx
        movzwl  56(%ebx), %ecx                  # e_phnum
        movl    $0x100000, image_end
8:      testl   %ecx, %ecx
        jz      10f
        cmpl    $1, (%edx)                      # PT_LOAD
        jne     9f
        pushl   %ecx
        movl    24(%edx), %edi                  # p_paddr
        cmpl    $0x100000, %edi
        jb      err_seg
        movl    40(%edx), %eax                  # p_memsz
        addl    %edi, %eax
        jc      err_seg
        cmpl    mem_bytes, %eax
        ja      err_seg
        cmpl    image_end, %eax
        jbe     11f
        movl    %eax, image_end
11:     movl    8(%edx), %esi                   # p_offset
        addl    %ebx, %esi
        movl    32(%edx), %ecx                  # p_filesz
        leal    (%esi,%ecx), %eax
        cmpl    mod_end, %eax
        ja      err_seg
        rep movsb
        movl    40(%edx), %ecx
        subl    32(%edx), %ecx
        jb      err_seg
        xorl    %eax, %eax
        rep stosb
        popl    %ecx
9:      movzwl  54(%ebx), %eax                  # e_phentsize
        addl    %eax, %edx
        decl    %ecx
        jmp     8b
10:
        # --- boot page tables (docs/guest-abi.md layout step 2) ---
        movl    image_end, %eax
        addl    $0xFFF, %eax
        andl    $0xFFFFF000, %eax
        movl    %eax, next_page
        call    alloc_page
        movl    %eax, pml4
        call    alloc_page                      # guest RAM < 512 GiB: one PDPT
        movl    %eax, pdpt
        orl     $3, %eax
        movl    pml4, %edi
        movl    %eax, (%edi)
        xorl    %ebp, %ebp                      # ebp = GiB base
gib_loop:
        cmpl    mem_bytes, %ebp
        jae     tables_done
        movl    %ebp, %edi
        shrl    $30, %edi
        shll    $3, %edi
        addl    pdpt, %edi                      # edi = &pdpt[g]
        cmpl    $0x40000000, page_size
        jne     12f
        movl    mem_bytes, %eax
        subl    %ebp, %eax
        cmpl    $0x40000000, %eax
        jb      12f
        movl    %ebp, %eax                      # 1 GiB leaf
        orl     $0x83, %eax
        movl    %eax, (%edi)
        jmp     gib_next
12:     call    alloc_page
        movl    %eax, %esi                      # esi = PD
        orl     $3, %eax
        movl    %eax, (%edi)
        movl    %ebp, %ebx                      # ebx = 2 MiB chunk base
chunk_loop:
        cmpl    mem_bytes, %ebx
        jae     gib_next
        movl    %ebx, %eax
        subl    %ebp, %eax
        cmpl    $0x40000000, %eax
        jae     gib_next
        shrl    $21, %eax
        leal    (%esi,%eax,8), %edi             # edi = &pd[c]
        cmpl    $0x1000, page_size
        je      13f
        movl    mem_bytes, %eax
        subl    %ebx, %eax
        cmpl    $0x200000, %eax
        jb      13f
        movl    %ebx, %eax                      # 2 MiB leaf
        orl     $0x83, %eax
        movl    %eax, (%edi)
        jmp     chunk_next
13:     call    alloc_page                      # a PT right when its chunk is reached
        movl    %eax, %edx
        orl     $3, %eax
        movl    %eax, (%edi)
        movl    %ebx, %eax                      # 4 KiB entries for [chunk, min(chunk+2M, mem))
14:     cmpl    mem_bytes, %eax
        jae     chunk_next
        movl    %eax, %ecx
        subl    %ebx, %ecx
        cmpl    $0x200000, %ecx
        jae     chunk_next
        shrl    $12, %ecx
        movl    %eax, %edi
        orl     $3, %edi
        movl    %edi, (%edx,%ecx,8)
        addl    $0x1000, %eax
        jmp     14b
chunk_next:
        addl    $0x200000, %ebx
        jmp     chunk_loop
gib_next:
        addl    $0x40000000, %ebp
        jc      tables_done
        jmp     gib_loop
tables_done:
        # --- boot info page, GDT page, stack (layout steps 3-5) ---
        call    alloc_page
        movl    %eax, boot_info
        movl    %eax, %edi
        movl    $BOOT_MAGIC_LO, 0(%edi)
        movl    $BOOT_MAGIC_HI, 4(%edi)
        movl    mem_bytes, %eax
        movl    %eax, 8(%edi)
        movl    pml4, %eax
        movl    %eax, 24(%edi)
        movl    page_size, %eax
        movl    %eax, 32(%edi)
        call    alloc_page
        movl    %eax, gdt_page
        movl    $0x00209A00, 12(%eax)           # 0x08: 64-bit code 0x00209A0000000000
        movl    $0x00009200, 20(%eax)           # 0x10: data 0x0000920000000000
        movl    %eax, guest_gdtr + 2
        movl    $16, %ecx
15:     call    alloc_page                      # 64 KiB stack, zeroed
        decl    %ecx
        jnz     15b
        movl    next_page, %eax
        movl    %eax, free_start
        movl    boot_info, %edi
        movl    %eax, 16(%edi)

        # --- long mode with the guest's own tables and GDT ---
        movl    $0x20, %eax                     # CR4 = PAE
        movl    %eax, %cr4
        movl    pml4, %eax
        movl    %eax, %cr3
        movl    $0xC0000080, %ecx               # EFER = LME | NXE (LMA follows)
        movl    $0x900, %eax
        xorl    %edx, %edx
        wrmsr
        movl    $0x80010031, %eax               # CR0 = PG | WP | NE | ET | PE
        movl    %eax, %cr0
        lgdt    guest_gdtr
        ljmp    $0x08, $long64

# alloc_page() -> eax = next zeroed 4 KiB page after the image; fails past mem=
alloc_page:
        pushl   %edi
        pushl   %ecx
        movl    next_page, %edi
        leal    0x1000(%edi), %eax
        cmpl    mem_bytes, %eax
        ja      err_small
        movl    %eax, next_page
        pushl   %edi
        movl    $1024, %ecx
        xorl    %eax, %eax
        rep stosl
        popl    %eax
        popl    %ecx
        popl    %edi
        ret

# find_token(edi = "key=") -> eax = pointer to the value, or 0. Tokens are separated by
# spaces; scanning stops at "cmdline=", whose value is the rest of the line.
find_token:
        pushl   %esi
        pushl   %ebx
        pushl   %edx
        movl    mb_cmdline, %esi
        testl   %esi, %esi
        jz      ft_none
ft_start:
        movb    (%esi), %al
        testb   %al, %al
        jz      ft_none
        cmpb    $' ', %al
        jne     1f
        incl    %esi
        jmp     ft_start
1:      movl    %edi, %edx                      # match the key at this token
        movl    %esi, %ebx
2:      movb    (%edx), %al
        testb   %al, %al
        jz      ft_found
        cmpb    (%ebx), %al
        jne     3f
        incl    %edx
        incl    %ebx
        jmp     2b
3:      movl    %esi, %ebx                      # not this key: stop at cmdline=
        movl    $key_cmdline, %edx
4:      movb    (%edx), %al
        testb   %al, %al
        jz      ft_none
        cmpb    (%ebx), %al
        jne     5f
        incl    %edx
        incl    %ebx
        jmp     4b
5:      movb    (%esi), %al                     # skip to the next token
        testb   %al, %al
        jz      ft_none
        cmpb    $' ', %al
        je      ft_start
        incl    %esi
        jmp     5b
ft_found:
        movl    %ebx, %eax
        jmp     ft_ret
ft_none:
        xorl    %eax, %eax
ft_ret: popl    %edx
        popl    %ebx
        popl    %esi
        ret

# parse_u32(esi = text) -> eax: decimal or 0x-hex, optional K/M/G suffix
parse_u32:
        xorl    %eax, %eax
        xorl    %ecx, %ecx                      # digit count
        movl    $10, %ebx
        cmpw    $0x7830, (%esi)                 # "0x"
        jne     1f
        movl    $16, %ebx
        addl    $2, %esi
1:      movzbl  (%esi), %edx
        subl    $'0', %edx
        cmpl    $9, %edx
        jbe     2f
        cmpl    $16, %ebx
        jne     3f
        movzbl  (%esi), %edx
        orl     $0x20, %edx
        subl    $'a', %edx
        cmpl    $5, %edx
        ja      3f
        addl    $10, %edx
2:      imull   %ebx, %eax
        addl    %edx, %eax
        incl    %esi
        incl    %ecx
        jmp     1b
3:      testl   %ecx, %ecx
        jz      err_num
        movb    (%esi), %dl
        orb     $0x20, %dl
        cmpb    $'k', %dl
        jne     4f
        shll    $10, %eax
4:      cmpb    $'m', %dl
        jne     5f
        shll    $20, %eax
5:      cmpb    $'g', %dl
        jne     6f
        shll    $30, %eax
6:      ret

err_nomb:
        movl    $msg_nomb, %esi
        jmp     fail32
err_nomod:
        movl    $msg_nomod, %esi
        jmp     fail32
err_modhigh:
        movl    $msg_modhigh, %esi
        jmp     fail32
err_mem:
        movl    $msg_mem, %esi
        jmp     fail32
err_pages:
        movl    $msg_pages, %esi
        jmp     fail32
err_elf:
        movl    $msg_elf, %esi
        jmp     fail32
err_seg:
        movl    $msg_seg, %esi
        jmp     fail32
err_small:
        movl    $msg_small, %esi
        jmp     fail32
err_num:
        movl    $msg_num, %esi
# fail32(esi = message): the byte loop below encodes the same in 32- and 64-bit mode
fail32:
        pushl   %esi
        movl    $msg_prefix, %esi
        call    print_esi
        popl    %esi
        call    print_esi
        movw    $0x3f8, %dx
        movb    $10, %al
        outb    %al, %dx
        movw    $0xf4, %dx
        movl    $STATUS_TRAMP_ERROR, %eax
        outl    %eax, %dx
1:      hlt
        jmp     1b
print_esi:
        movw    $0x3f8, %dx
1:      lodsb
        testb   %al, %al
        jz      2f
        outb    %al, %dx
        jmp     1b
2:      ret

        .code64
long64:
        movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    %ax, %fs
        movw    %ax, %gs
        movl    $stack_top, %esp
        movl    gdt_page(%rip), %eax            # loading DS/ES/SS set the descriptors'
        movl    $0x00209A00, 12(%rax)           # accessed bits: restore the exact bytes
        movl    $0x00009200, 20(%rax)           # docs/guest-abi.md prescribes
        movl    boot_info(%rip), %ebx                 # rbx = boot info (below 4 GiB)
        # args=a,b,c: u64 values, decimal or 0x-hex, at most 16
        movl    args_ptr(%rip), %esi
        testq   %rsi, %rsi
        jz      3f
        xorl    %ecx, %ecx
1:      cmpq    $16, %rcx
        jae     err64_args
        call    parse_u64
        movq    %rax, 56(%rbx,%rcx,8)
        incq    %rcx
        cmpb    $',', (%rsi)
        jne     2f
        incq    %rsi
        jmp     1b
2:      movb    (%rsi), %al
        testb   %al, %al
        jz      21f
        cmpb    $' ', %al
        jne     err64_args
21:     movq    %rcx, 48(%rbx)
3:      # cmdline=...: the rest of the line, copied to boot info + 256
        movl    gcmd_ptr(%rip), %esi
        testq   %rsi, %rsi
        jz      5f
        leaq    256(%rbx), %rdi
        movq    %rdi, 40(%rbx)
        movl    $3000, %ecx
4:      lodsb
        stosb
        testb   %al, %al
        jz      5f
        decl    %ecx
        jnz     4b
        jmp     err64_cmdline
5:      # the protocol's initial state
        lidt    null_idtr(%rip)
        movq    %rbx, %rdi
        movl    free_start(%rip), %esp
        pushq   $2
        popfq
        xorl    %eax, %eax
        xorl    %ebx, %ebx
        xorl    %ecx, %ecx
        xorl    %edx, %edx
        xorl    %esi, %esi
        xorl    %ebp, %ebp
        xorl    %r8d, %r8d
        xorl    %r9d, %r9d
        xorl    %r10d, %r10d
        xorl    %r11d, %r11d
        xorl    %r12d, %r12d
        xorl    %r13d, %r13d
        xorl    %r14d, %r14d
        xorl    %r15d, %r15d
        jmp     *entry_slot(%rip)

# parse_u64(rsi = text) -> rax, rsi after the number: decimal or 0x-hex
parse_u64:
        pushq   %rcx
        pushq   %rbx
        xorl    %eax, %eax
        xorl    %ecx, %ecx
        movl    $10, %ebx
        cmpw    $0x7830, (%rsi)
        jne     1f
        movl    $16, %ebx
        addq    $2, %rsi
1:      movzbl  (%rsi), %edx
        subl    $'0', %edx
        cmpl    $9, %edx
        jbe     2f
        cmpl    $16, %ebx
        jne     3f
        movzbl  (%rsi), %edx
        orl     $0x20, %edx
        subl    $'a', %edx
        cmpl    $5, %edx
        ja      3f
        addl    $10, %edx
2:      imulq   %rbx, %rax
        addq    %rdx, %rax
        incq    %rsi
        incl    %ecx
        jmp     1b
3:      testl   %ecx, %ecx
        jz      err64_args
        popq    %rbx
        popq    %rcx
        ret

err64_args:
        movl    $msg_args, %esi
        jmp     fail64
err64_cmdline:
        movl    $msg_cmdline, %esi
fail64:
        movl    $stack_top, %esp
        pushq   %rsi
        movl    $msg_prefix, %esi
        call    print_esi                       # same bytes in 64-bit mode
        popq    %rsi
        call    print_esi
        movw    $0x3f8, %dx
        movb    $10, %al
        outb    %al, %dx
        movw    $0xf4, %dx
        movl    $STATUS_TRAMP_ERROR, %eax
        outl    %eax, %dx
1:      hlt
        jmp     1b

        .section .rodata
key_mem:        .asciz  "mem="
key_pages:      .asciz  "pages="
key_args:       .asciz  "args="
key_cmdline:    .asciz  "cmdline="
msg_prefix:     .asciz  "trampoline: "
msg_nomb:       .asciz  "not started by a multiboot loader with memory info"
msg_nomod:      .asciz  "no guest module (use -initrd guest.elf)"
msg_modhigh:    .asciz  "guest module loaded above 0x9F000 (guest ELF too large)"
msg_mem:        .asciz  "mem= must be a multiple of 4096, at least 2 MiB, at most 3 GiB and the QEMU -m size"
msg_pages:      .asciz  "pages= must be 4k, 2m or 1g"
msg_elf:        .asciz  "guest module is not an ELF64 x86-64 image"
msg_seg:        .asciz  "guest segment outside memory, below 1 MiB or truncated"
msg_small:      .asciz  "memory too small for the boot structures"
msg_num:        .asciz  "bad number in mem="
msg_args:       .asciz  "args= must be at most 16 comma-separated numbers"
msg_cmdline:    .asciz  "cmdline= longer than 3000 bytes"

        .data
        .balign 8
tramp_gdt:
        .quad   0
        .quad   0x00CF9A000000FFFF              # 0x08: flat 32-bit code
        .quad   0x00CF92000000FFFF              # 0x10: flat data
tramp_gdtr:
        .word   23
        .long   tramp_gdt
        .balign 8
guest_gdtr:
        .word   23
        .long   0
        .balign 8
null_idtr:
        .word   0
        .quad   0

        .bss
        .balign 8
mbi:            .long   0
ram_bytes:      .long   0
mem_bytes:      .long   0
page_size:      .long   0
mb_cmdline:     .long   0
mod_start:      .long   0
mod_end:        .long   0
args_ptr:       .quad   0
gcmd_ptr:       .quad   0
entry_slot:     .quad   0
image_end:      .long   0
next_page:      .long   0
pml4:           .long   0
pdpt:           .long   0
boot_info:      .quad   0
gdt_page:       .long   0
free_start:     .quad   0
        .balign 16
stack:          .skip   8192
stack_top:
