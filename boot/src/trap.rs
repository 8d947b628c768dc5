//! The exception path every mode shares: the stubs of each mode (`hvm/trap.rs` for the IDT, `pv/trap.rs` for Xen's
//! trap table) push a zero where the CPU pushes no error code, then the vector number, and jump to `exc_common`,
//! which saves every general register and calls [`exception`] with the frame: the report (`crate::crash`), then the
//! domain crashes. Nothing returns from an exception: every one is a bug to report.

use crate::{early, Exit};
use core::arch::global_asm;
use sirocco_boot_logic::crash::{Regs, VECTOR_PAGE_FAULT};

global_asm!(
    r#"
    .pushsection .text.exceptions, "ax"
    .globl exc_common
exc_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    cld
    call {handler}
    ud2
    .popsection
    "#,
    handler = sym exception,
    options(att_syntax)
);

/// What an exception stub leaves on the stack, lowest address first: the general registers it pushed, the vector
/// and error code (0 where the CPU pushes none), then the CPU's frame (RIP, CS, RFLAGS, RSP, SS). The same under
/// PVH/HVM (`hvm/trap.rs`) and PV (`pv/trap.rs`, after taking off the RCX and R11 Xen adds).
#[repr(C)]
pub(crate) struct TrapFrame {
    pub(crate) r15: u64,
    pub(crate) r14: u64,
    pub(crate) r13: u64,
    pub(crate) r12: u64,
    pub(crate) r11: u64,
    pub(crate) r10: u64,
    pub(crate) r9: u64,
    pub(crate) r8: u64,
    pub(crate) rbp: u64,
    pub(crate) rdi: u64,
    pub(crate) rsi: u64,
    pub(crate) rdx: u64,
    pub(crate) rcx: u64,
    pub(crate) rbx: u64,
    pub(crate) rax: u64,
    pub(crate) vector: u64,
    pub(crate) error: u64,
    pub(crate) rip: u64,
    pub(crate) cs: u64,
    pub(crate) rflags: u64,
    pub(crate) rsp: u64,
    pub(crate) ss: u64,
}

impl TrapFrame {
    /// The registers at the fault.
    pub(crate) fn regs(&self) -> Regs {
        Regs {
            rax: self.rax,
            rbx: self.rbx,
            rcx: self.rcx,
            rdx: self.rdx,
            rsi: self.rsi,
            rdi: self.rdi,
            rbp: self.rbp,
            rsp: self.rsp,
            r8: self.r8,
            r9: self.r9,
            r10: self.r10,
            r11: self.r11,
            r12: self.r12,
            r13: self.r13,
            r14: self.r14,
            r15: self.r15,
            rip: self.rip,
            rflags: self.rflags,
            cs: self.cs,
            ss: self.ss,
        }
    }
}

/// Whether hypercalls work yet (PV: always; PVH/HVM: once the hypercall page is installed).
fn hypercalls_ready() -> bool {
    !crate::mode::boot_mode().translated() || crate::hvm::hypercalls_ready()
}

/// Reports an exception (`crate::crash`) and crashes the domain.
extern "C" fn exception(f: &TrapFrame) -> ! {
    if !crate::crash::begin_report() {
        // A fault while reporting one: say the least possible and stop.
        early::write(b"sirocco: exception while reporting an exception; crashing\n");
        stop();
    }
    let cr2 = match (f.vector, crate::mode::boot_mode().translated()) {
        (VECTOR_PAGE_FAULT, true) => Some(x86_64::registers::control::Cr2::read_raw()),
        // A PV guest cannot read CR2: Xen puts the address in vcpu_info.
        (VECTOR_PAGE_FAULT, false) => crate::xen::pv_cr2(),
        _ => None,
    };
    crate::crash::report_exception(f.vector, f.error, cr2, &f.regs());
    if !hypercalls_ready() {
        stop();
    }
    crate::console::write_trace_dump(true);
    crate::exit(Exit::Crash)
}

/// Ends the domain as a crash without the console: `SCHEDOP_shutdown(crash)` when hypercalls work, else (PVH/HVM
/// before the hypercall page) `hlt` with interrupts off, which Xen takes as the vCPU going down.
fn stop() -> ! {
    if hypercalls_ready() {
        crate::hypercall::shutdown(crate::abi::SHUTDOWN_crash);
    }
    if crate::mode::boot_mode().translated() {
        crate::hvm::halt();
    }
    loop {
        crate::hypercall::sched_yield();
    }
}
