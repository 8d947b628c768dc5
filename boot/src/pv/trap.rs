//! PV exceptions: Xen's trap table (`HYPERVISOR_set_trap_table`) names a stub per exception vector, so a fault is
//! reported (`crate::trap`, `crate::crash`) instead of Xen crashing the domain with nothing from us on the console.
//!
//! Xen delivers a PV exception like the CPU would (SS, RSP, RFLAGS, CS, RIP and, for some vectors, an error code)
//! plus RCX and R11 on top; each stub takes those two back, pushes a zero where there is no error code and the
//! vector, and joins the common path. What PV cannot do: run a handler on a stack of its own (Xen has no IST for PV
//! guests). A stack overflow into the guard page leaves Xen no room for the exception frame, and Xen crashes the
//! domain itself (`xl dmesg` shows the fault); `tools/debug-core` tells it from the preserved domain's registers.
//! Double faults and machine checks never reach a PV guest's trap table; NMIs come through a callback, not used.

use crate::abi::{TrapInfo, FLAT_KERNEL_CS64, HYPERVISOR_SET_TRAP_TABLE};
use core::arch::global_asm;

/// Vectors Xen delivers through the trap table, and whether the CPU pushes an error code for each.
const VECTORS: [(u8, bool); 16] = [
    (0, false),
    (1, false),
    (3, false),
    (4, false),
    (5, false),
    (6, false),
    (7, false),
    (9, false),
    (10, true),
    (11, true),
    (12, true),
    (13, true),
    (14, true),
    (16, false),
    (17, true),
    (19, false),
];

// One 16-byte stub per vector 0..=19 (those not in VECTORS are never installed).
global_asm!(
    r#"
    .pushsection .text.exceptions, "ax"
    .balign 16
pv_exc_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19
    .balign 16
    popq %rcx
    popq %r11
    .if \v == 8 || (\v >= 10 && \v <= 14) || \v == 17
    .else
    pushq $0
    .endif
    pushq $\v
    jmp exc_common
    .endr
    .popsection
    "#,
    options(att_syntax)
);

// The stubs' `.if` must agree with VECTORS on which vectors have an error code.
const _: () = {
    let mut i = 0;
    while i < VECTORS.len() {
        let (v, code) = VECTORS[i];
        assert!(code == (v == 8 || (v >= 10 && v <= 14) || v == 17));
        i += 1;
    }
};

extern "C" {
    /// The first of 20 stubs, 16 bytes apart.
    static pv_exc_stubs: [u8; 20 * 16];
}

/// Installs the trap table. Called first thing in the PV start of day, once the console is up.
pub(super) fn init() {
    let base = core::ptr::addr_of!(pv_exc_stubs) as u64;
    let mut table = [TrapInfo::default(); VECTORS.len() + 1];
    for (entry, &(vector, _)) in table.iter_mut().zip(VECTORS.iter()) {
        // DPL 0: no `int n` may raise it; events stay as they were (the run loop polls, with upcalls masked).
        *entry = TrapInfo { vector, flags: 0, cs: FLAT_KERNEL_CS64, address: base + 16 * u64::from(vector) };
    }
    // The last entry stays zero: the terminator.
    // SAFETY: `table` is a live array of trap_info entries ending with a zero address, as the hypercall wants; Xen
    // copies it before returning. Each address is the stub for that vector, which expects exactly Xen's PV
    // exception frame for it and never returns.
    let rc = unsafe { crate::hypercall::hypercall5(HYPERVISOR_SET_TRAP_TABLE, table.as_ptr() as u64, 0, 0, 0, 0) };
    if rc != 0 {
        log::warn!("HYPERVISOR_set_trap_table failed ({rc}): CPU exceptions will not be reported");
    }
}
