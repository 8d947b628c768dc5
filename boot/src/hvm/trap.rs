//! Exceptions in the PVH and HVM modes: an IDT (the `x86_64` crate's type) whose 32 exception vectors lead to one
//! report on the console (and the serial and debug ports) followed by a crash, instead of the silent triple fault
//! a guest without an IDT gets. Interrupts stay off in every mode: events are waited for with `SCHEDOP_poll`.
//!
//! Each vector has a 16-byte stub that pushes a zero where the CPU pushes no error code, then the vector number,
//! and jumps to the common path (`crate::trap`) that saves every general register and reports the exception.
//! A page fault and a double fault run on stacks of their own (IST entries of a TSS in our own GDT), so a stack
//! overflow into the guard page below the boot stack is reported as such instead of ending in a triple fault.
//! The report itself (registers, stack overflow, backtrace) is `crate::crash`'s, shared with PV (`pv/trap.rs`).

use core::arch::global_asm;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

global_asm!(
    r#"
    .pushsection .text.exceptions, "ax"
    .balign 16
exc_stubs:
    pushq $0
    pushq $0
    jmp exc_common
    .balign 16
    pushq $0
    pushq $1
    jmp exc_common
    .balign 16
    pushq $0
    pushq $2
    jmp exc_common
    .balign 16
    pushq $0
    pushq $3
    jmp exc_common
    .balign 16
    pushq $0
    pushq $4
    jmp exc_common
    .balign 16
    pushq $0
    pushq $5
    jmp exc_common
    .balign 16
    pushq $0
    pushq $6
    jmp exc_common
    .balign 16
    pushq $0
    pushq $7
    jmp exc_common
    .balign 16
    pushq $8
    jmp exc_common
    .balign 16
    pushq $0
    pushq $9
    jmp exc_common
    .balign 16
    pushq $10
    jmp exc_common
    .balign 16
    pushq $11
    jmp exc_common
    .balign 16
    pushq $12
    jmp exc_common
    .balign 16
    pushq $13
    jmp exc_common
    .balign 16
    pushq $14
    jmp exc_common
    .balign 16
    pushq $0
    pushq $15
    jmp exc_common
    .balign 16
    pushq $0
    pushq $16
    jmp exc_common
    .balign 16
    pushq $17
    jmp exc_common
    .balign 16
    pushq $0
    pushq $18
    jmp exc_common
    .balign 16
    pushq $0
    pushq $19
    jmp exc_common
    .balign 16
    pushq $0
    pushq $20
    jmp exc_common
    .balign 16
    pushq $21
    jmp exc_common
    .balign 16
    pushq $0
    pushq $22
    jmp exc_common
    .balign 16
    pushq $0
    pushq $23
    jmp exc_common
    .balign 16
    pushq $0
    pushq $24
    jmp exc_common
    .balign 16
    pushq $0
    pushq $25
    jmp exc_common
    .balign 16
    pushq $0
    pushq $26
    jmp exc_common
    .balign 16
    pushq $0
    pushq $27
    jmp exc_common
    .balign 16
    pushq $0
    pushq $28
    jmp exc_common
    .balign 16
    pushq $29
    jmp exc_common
    .balign 16
    pushq $30
    jmp exc_common
    .balign 16
    pushq $0
    pushq $31
    jmp exc_common
    /* The event-callback vector (hvm::declare_callback): upcalls stay masked and interrupts off, so it is never
       delivered; if it were, there is nothing to do (the run loop polls the pending bits), so it returns. */
    .balign 16
upcall_stub:
    iretq
    .popsection
    "#,
    options(att_syntax)
);

extern "C" {
    /// The first of 32 stubs, 16 bytes apart (see the module docs).
    static exc_stubs: [u8; 32 * 16];
    /// `iretq`: the handler of [`UPCALL_VECTOR`].
    static upcall_stub: u8;
}

/// The vector named in `HVM_PARAM_CALLBACK_IRQ` (an unused one, above the exceptions and legacy IRQs).
pub(super) const UPCALL_VECTOR: u8 = 0xf3;

static IDT: spin::Once<InterruptDescriptorTable> = spin::Once::new();
static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<GlobalDescriptorTable> = spin::Once::new();

/// Bytes of each exception stack.
const EXCEPTION_STACK: usize = 16 * 1024;
/// IST slots (1-based in the IDT, 0-based in the TSS): double fault, page fault.
const IST_DOUBLE_FAULT: u16 = 0;
const IST_PAGE_FAULT: u16 = 1;

#[repr(C, align(16))]
struct ExceptionStacks([[u8; EXCEPTION_STACK]; 2]);
/// Only the CPU writes these (by pushing exception frames); Rust never reads or writes them.
static mut EXCEPTION_STACKS: ExceptionStacks = ExceptionStacks([[0; EXCEPTION_STACK]; 2]);

/// A GDT of our own (64-bit code, data, and a TSS whose IST entries point at [`EXCEPTION_STACKS`]), replacing the
/// boot GDT of `entry.rs`, which has no TSS.
fn load_gdt() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let base = core::ptr::addr_of_mut!(EXCEPTION_STACKS) as u64;
        for (i, slot) in [IST_DOUBLE_FAULT, IST_PAGE_FAULT].into_iter().enumerate() {
            tss.interrupt_stack_table[slot as usize] = VirtAddr::new(base + ((i + 1) * EXCEPTION_STACK) as u64);
        }
        tss
    });
    let mut selectors = None;
    let gdt = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        selectors = Some((code, data, tss));
        gdt
    });
    gdt.load();
    let (code, data, tss) = selectors.expect("the GDT is loaded once");
    // SAFETY: the selectors index descriptors of the GDT just loaded (which lives for the domain's life): a 64-bit
    // ring-0 code segment, a ring-0 data segment, and an available TSS; reloading them changes no address.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss);
    }
}

/// Installs our GDT (with the TSS) and the IDT. Called once, first thing in 64-bit mode.
pub(super) fn init() {
    load_gdt();
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        let base = core::ptr::addr_of!(exc_stubs) as u64;
        let stub = |v: u64| VirtAddr::new(base + 16 * v);
        // SAFETY: (every `set_handler_addr` below) the address is the vector's stub in `exc_stubs`, code that
        // expects exactly the frame the CPU pushes for that vector (with or without an error code) and never
        // returns; the code segment is our GDT's 64-bit one, current since `load_gdt`. The IST indexes name TSS
        // entries `load_gdt` filled with the tops of stacks nothing else uses.
        unsafe {
            idt.divide_error.set_handler_addr(stub(0));
            idt.debug.set_handler_addr(stub(1));
            idt.non_maskable_interrupt.set_handler_addr(stub(2));
            idt.breakpoint.set_handler_addr(stub(3));
            idt.overflow.set_handler_addr(stub(4));
            idt.bound_range_exceeded.set_handler_addr(stub(5));
            idt.invalid_opcode.set_handler_addr(stub(6));
            idt.device_not_available.set_handler_addr(stub(7));
            idt.double_fault.set_handler_addr(stub(8)).set_stack_index(IST_DOUBLE_FAULT);
            idt.invalid_tss.set_handler_addr(stub(10));
            idt.segment_not_present.set_handler_addr(stub(11));
            idt.stack_segment_fault.set_handler_addr(stub(12));
            idt.general_protection_fault.set_handler_addr(stub(13));
            idt.page_fault.set_handler_addr(stub(14)).set_stack_index(IST_PAGE_FAULT);
            idt.x87_floating_point.set_handler_addr(stub(16));
            idt.alignment_check.set_handler_addr(stub(17));
            idt.machine_check.set_handler_addr(stub(18));
            idt.simd_floating_point.set_handler_addr(stub(19));
            idt.virtualization.set_handler_addr(stub(20));
            idt.cp_protection_exception.set_handler_addr(stub(21));
            idt.hv_injection_exception.set_handler_addr(stub(28));
            idt.vmm_communication_exception.set_handler_addr(stub(29));
            idt.security_exception.set_handler_addr(stub(30));
            idt[UPCALL_VECTOR].set_handler_addr(VirtAddr::new(core::ptr::addr_of!(upcall_stub) as u64));
        }
        idt
    });
    idt.load();
}

/// Stops this vCPU for good: interrupts off, `hlt` in a loop (an NMI would only return to the loop).
pub(crate) fn halt() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
