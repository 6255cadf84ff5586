# C guest entry (docs/c-guests.md): the boot protocol leaves RSP 16-byte aligned at the top of
# a 64 KiB stack and the boot info at RDI; hv_start(boot_info) runs main and never returns.
        .section .text.start, "ax"
        .globl _start
_start:
        xorl    %ebp, %ebp              # a zero frame pointer ends backtraces
        call    hv_start
1:      hlt
        jmp     1b
