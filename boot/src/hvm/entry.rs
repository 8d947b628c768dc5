//! The 32-bit entry points of the PVH and HVM boot modes, and what takes them to 64-bit Rust.
//!
//! Both enter in 32-bit protected mode with paging off, flat segments and interrupts off:
//! - **PVH** (`_start_pvh`, named by the `XEN_ELFNOTE_PHYS32_ENTRY` note): `%ebx` = physical address of
//!   `hvm_start_info` (xen/arch-x86/hvm/start_info.h). Xen's PVH builder and QEMU's `-kernel` both use it.
//! - **Multiboot2** (`_start_multiboot2`, named by the header's entry-address tag; GRUB's `multiboot2`):
//!   `%eax` = 0x36d76289, `%ebx` = physical address of the boot information.
//!
//! The common path takes our own stack, builds a boot identity map of the first 4 GiB with 2 MiB pages (6 page-table
//! pages in .bss: enough to read whatever the boot protocol points at; `hvm::start` replaces it with the final map
//! once it knows the memory map), turns on PAE and long mode, loads a 3-entry GDT and far-jumps to 64-bit code,
//! which calls `hvm::start(entry, info, magic)`. The image is linked at 1 MiB with virtual = physical addresses,
//! so 32-bit absolute addresses of our symbols are valid both before and after paging is on.

use core::arch::global_asm;

/// `entry` value passed to `hvm::start` by `_start_pvh`.
pub(super) const ENTRY_PVH: u32 = 1;
/// `entry` value passed to `hvm::start` by `_start_multiboot2`.
pub(super) const ENTRY_MULTIBOOT2: u32 = 2;

global_asm!(
    r#"
    .pushsection .text.boot32, "ax"
    .code32
    .globl _start_pvh
_start_pvh:
    cli
    cld
    movl ${pvh}, boot_args
    movl %ebx, boot_args + 4
    movl $0, boot_args + 8
    jmp 1f

    .globl _start_multiboot2
_start_multiboot2:
    cli
    cld
    movl ${mb2}, boot_args
    movl %ebx, boot_args + 4
    movl %eax, boot_args + 8

1:  movl $__stack_top, %esp
    /* Known flags whatever the loader left: all clear (IF and DF included). */
    pushl $0
    popfl
    /* Zero the boot tables (PML4, PDPT, 4 PDs), whatever the loader left in .bss. */
    movl $boot_pml4, %edi
    movl $(6 * 1024), %ecx
    xorl %eax, %eax
    rep stosl
    /* PML4[0] -> PDPT; PDPT[0..4] -> the 4 PDs; PD entries: 2048 x 2 MiB, present | writable | large. */
    movl $boot_pdpt, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl $boot_pdpt, %edi
    movl $4, %ecx
2:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 2b
    movl $boot_pd, %edi
    xorl %ecx, %ecx
3:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, (%edi, %ecx, 8)
    incl %ecx
    cmpl $2048, %ecx
    jb 3b
    /* CR4.PAE, CR3, EFER.LME, then CR0.PG (with PE): long mode, compatibility submode until the far jump. */
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    /* CR0 written whole (multiboot2 leaves its other bits undefined): PG | WP | NE | ET | MP | PE; caches on. */
    movl $0x80010033, %eax
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $4f

    .code64
4:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    leaq __stack_top(%rip), %rsp
    xorl %ebp, %ebp
    movl boot_args(%rip), %edi
    movl boot_args + 4(%rip), %esi
    movl boot_args + 8(%rip), %edx
    call {start}
    ud2
    .popsection

    .pushsection .data.boot32, "aw"
    .balign 8
    /* Null, 64-bit code (0x08), data (0x10). */
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
    .balign 4
boot_args:
    .long 0, 0, 0
    .popsection

    .pushsection .bss.boot_tables, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    .popsection

    /* The multiboot2 header (within the file's first 32 KiB: linker.ld puts it first in .text). GRUB loads the
       ELF's segments at their physical addresses and enters at the entry-address tag's address in 32-bit mode. */
    .pushsection .multiboot2, "a"
    .balign 8
mb2_header:
    .long 0xe85250d6
    .long 0
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (0xe85250d6 + (mb2_header_end - mb2_header))
    .balign 8
    .word 3, 0
    .long 12
    .long _start_multiboot2
    .balign 8
    .word 0, 0
    .long 8
mb2_header_end:
    .popsection
    "#,
    pvh = const ENTRY_PVH,
    mb2 = const ENTRY_MULTIBOOT2,
    start = sym super::start,
    options(att_syntax)
);
