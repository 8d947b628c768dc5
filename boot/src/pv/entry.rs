//! The PV entry point, the image's Xen ELF notes, and the hypercall page. (The PVH and multiboot2 entry points are
//! in `hvm/entry.rs`.)
//!
//! Xen enters `_start` in 64-bit mode with `%rsi` = virtual address of `start_info` and a small bootstrap stack
//! inside the start-of-day region. We switch at once to our own stack (`__stack_top` in linker.ld, above an unmapped
//! guard page) so every frame after the bootstrap page tables is free, and call [`crate::start::start`].

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.entry, "ax"
    .globl _start
    .type _start, @function
_start:
    cld
    lea __stack_top(%rip), %rsp
    xor %ebp, %ebp
    mov %rsi, %rdi
    call {start}
    ud2

    /* Filled by Xen at domain build: 128 stubs of 32 bytes, hypercall N at HYPERCALL_PAGE + 32 * N. */
    .section .text.hypercall_page, "ax"
    .balign 4096
    .globl HYPERCALL_PAGE
HYPERCALL_PAGE:
    .fill 4096, 1, 0xcc
    "#,
    start = sym super::start,
    options(att_syntax)
);

// The Xen ELF notes (xen/elfnote.h), each {namesz=4, descsz, type, "Xen\0", desc}, 4-byte aligned.
// Numbers: ENTRY 1, HYPERCALL_PAGE 2, VIRT_BASE 3, PADDR_OFFSET 4, XEN_VERSION 5, GUEST_OS 6, GUEST_VERSION 7,
// LOADER 8, FEATURES 10, PHYS32_ENTRY 18 (the PVH entry, `hvm/entry.rs`; a PV build ignores it). `tools/imgcheck` re-reads them from every built image.
global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 18f - 17f, 6
    .asciz "Xen"
17: .asciz "Sirocco"
18: .balign 4
    .long 4, 20f - 19f, 7
    .asciz "Xen"
19: .asciz "0.1"
20: .balign 4
    .long 4, 22f - 21f, 5
    .asciz "Xen"
21: .asciz "xen-3.0"
22: .balign 4
    .long 4, 8, 3
    .asciz "Xen"
    .quad 0
    .long 4, 8, 4
    .asciz "Xen"
    .quad 0
    .long 4, 8, 1
    .asciz "Xen"
    .quad _start
    .long 4, 8, 2
    .asciz "Xen"
    .quad HYPERCALL_PAGE
    .long 4, 24f - 23f, 8
    .asciz "Xen"
23: .asciz "generic"
24: .balign 4
    .long 4, 26f - 25f, 10
    .asciz "Xen"
25: .asciz "!writable_page_tables"
26: .balign 4
    .long 4, 8, 18
    .asciz "Xen"
    .quad _start_pvh
    "#,
    options(att_syntax)
);
