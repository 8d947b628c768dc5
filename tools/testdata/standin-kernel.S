/*
 * Stand-in for build/APP.xen outside Xen, for testing tools/mkimage.sh and tools/qemu-boot-check.sh
 * until the real image has its multiboot2 header and PVH entry. Same shape as the real one: an ELF64
 * linked at 1 MiB with
 *   - a multiboot2 header (first 32 KiB of the file, 8-byte aligned) whose entry-address tag points at
 *     32-bit code (GRUB's multiboot2 loader: protected mode, paging off, EAX=0x36d76289, EBX=MBI);
 *   - a Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (18) with the same entry (PVH: what QEMU's -kernel uses
 *     for an ELF64; its reader takes the descriptor as a 64-bit value, so it is a .quad here, as Linux's).
 * The 32-bit code prints "sirocco: no Xen hypervisor found" on the debug port 0xE9 and COM1, then
 * halts with interrupts off, forever. On port 0xE9 only, it then adds the command line it was given
 * ("cmdline: ..."; from the multiboot2 information's cmdline tag, or PVH's hvm_start_info), to show
 * what each boot path hands over.
 *
 * Variants for negative tests (as --defsym MODE=n): 0 as above; 1 prints another line (the check must
 * fail: line absent); 2 prints the line then triple-faults (with -no-reboot QEMU exits: must fail);
 * 3 prints the line then spins instead of halting; 4 prints it then halts with interrupts on (PIC
 * masked, so it stays halted). 3 and 4 must fail the halt check.
 */
        .ifndef MODE
        .set MODE, 0
        .endif

        .set MB2_MAGIC, 0xe85250d6
        .set MB2_ARCH_I386, 0
        .set MB2_TAG_END, 0
        .set MB2_TAG_ENTRY_ADDRESS, 3

        .section .multiboot2, "a"
        .balign 8
mb2_header:
        .long MB2_MAGIC
        .long MB2_ARCH_I386
        .long mb2_header_end - mb2_header
        .long 0x100000000 - (MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
        .balign 8
        .short MB2_TAG_ENTRY_ADDRESS, 0
        .long 12
        .long start32
        .balign 8
        .short MB2_TAG_END, 0
        .long 8
mb2_header_end:

        .section .note.Xen, "a", @note
        .balign 4
        .long 4                         /* namesz: "Xen\0" */
        .long 8                         /* descsz */
        .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .balign 4
        .quad start32

        .text
        .code32
        .globl start32
start32:
        cli
        cld
        mov %eax, %edi                                      /* multiboot2: 0x36d76289; PVH: anything */
        mov %ebx, %ebp                                      /* multiboot2 information / hvm_start_info */
        /* COM1: 115200 8N1, FIFO on (GRUB has done this already; the PVH path has not). */
        mov $0x3f9, %dx; xor %al, %al; out %al, %dx         /* IER = 0 */
        mov $0x3fb, %dx; mov $0x80, %al; out %al, %dx       /* LCR: DLAB */
        mov $0x3f8, %dx; mov $1, %al; out %al, %dx          /* DLL = 1 (115200) */
        mov $0x3f9, %dx; xor %al, %al; out %al, %dx         /* DLM = 0 */
        mov $0x3fb, %dx; mov $0x03, %al; out %al, %dx       /* LCR: 8N1 */
        mov $0x3fa, %dx; mov $0x07, %al; out %al, %dx       /* FCR: FIFO on, cleared */
        mov $message, %esi
1:      lodsb
        test %al, %al
        jz 3f
        mov %al, %bl
        out %al, $0xe9
        mov $0x3fd, %dx                                     /* LSR: wait for THR empty */
2:      in %dx, %al
        test $0x20, %al
        jz 2b
        mov $0x3f8, %dx
        mov %bl, %al
        out %al, %dx
        jmp 1b
3:
        /* The command line, on 0xE9 only. */
        xor %esi, %esi
        cmp $0x36d76289, %edi
        jne 8f
        lea 8(%ebp), %ecx                                   /* multiboot2: first tag */
7:      mov (%ecx), %eax
        test %eax, %eax                                     /* end tag: no cmdline */
        jz 10f
        cmp $1, %eax                                        /* MULTIBOOT_TAG_TYPE_CMDLINE */
        je 9f
        mov 4(%ecx), %eax                                   /* next tag: size rounded up to 8 */
        add $7, %eax
        and $~7, %eax
        add %eax, %ecx
        jmp 7b
9:      lea 8(%ecx), %esi
        jmp 10f
8:      cmpl $0x336ec578, (%ebp)                            /* PVH: hvm_start_info magic */
        jne 10f
        mov 24(%ebp), %esi                                  /* cmdline_paddr (low 32 bits) */
10:     mov $cmdline_label, %ebx
11:     mov (%ebx), %al
        inc %ebx
        test %al, %al
        jz 12f
        out %al, $0xe9
        jmp 11b
12:     test %esi, %esi
        jz 14f
13:     lodsb
        test %al, %al
        jz 14f
        out %al, $0xe9
        jmp 13b
14:     mov $'\r', %al
        out %al, $0xe9
        mov $'\n', %al
        out %al, $0xe9

        .if MODE == 2
        lidt null_idt                                       /* no IDT: the int3 triple-faults */
        int3
        .endif
        .if MODE == 3
4:      jmp 4b
        .endif
        .if MODE == 4
        mov $0xff, %al
        out %al, $0x21
        out %al, $0xa1
        sti
6:      hlt
        jmp 6b
        .endif
5:      cli
        hlt
        jmp 5b

        .section .rodata
null_idt:
        .short 0
        .long 0
cmdline_label:
        .asciz "cmdline: "
message:
        .if MODE == 1
        .asciz "sirocco: something else entirely\r\n"
        .else
        .asciz "sirocco: no Xen hypervisor found\r\n"
        .endif
