//! Crash reports: what the exception and panic handlers print, as plain values the platform crate reads off the CPU
//! and the stack: which exception, the page-fault detail, every register, whether the stack overflowed, and the
//! chain of return addresses ([`frames`]) with the function each lies in ([`symtab`], a table the build embeds in
//! the image). Everything here is host-tested against fabricated frames, stacks and tables; the platform crate only
//! reads registers and stack words inside bounds given by [`frames::walk`].

pub mod frames;
pub mod symtab;

use core::fmt;

/// The 32 exception vectors' names (Intel SDM vol. 3, table 6-1).
pub const EXCEPTION_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved (15)",
    "x87 floating-point error",
    "alignment check",
    "machine check",
    "SIMD floating-point error",
    "virtualization exception",
    "control protection exception",
    "reserved (22)",
    "reserved (23)",
    "reserved (24)",
    "reserved (25)",
    "reserved (26)",
    "reserved (27)",
    "hypervisor injection",
    "VMM communication",
    "security exception",
    "reserved (31)",
];

/// Vector of a page fault.
pub const VECTOR_PAGE_FAULT: u64 = 14;
/// Vector of a double fault.
pub const VECTOR_DOUBLE_FAULT: u64 = 8;

/// The name of exception `vector`, or "unknown" past 31.
pub fn exception_name(vector: u64) -> &'static str {
    EXCEPTION_NAMES.get(vector as usize).copied().unwrap_or("unknown")
}

/// A page fault's detail: the address (CR2) and what the error code says of the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The faulting linear address (CR2; under PV, `vcpu_info.arch.cr2`).
    pub address: u64,
    /// The error code the CPU pushed.
    pub error: u64,
    /// The faulting instruction's address.
    pub rip: u64,
}

impl PageFault {
    /// Whether it was an instruction fetch (a jump into a page that is not executable or not there). The CPU
    /// flags a fetch only with NX or SMEP on; a fault whose address is the instruction's own is one too.
    pub fn is_fetch(&self) -> bool {
        self.error & 0x10 != 0 || self.address == self.rip
    }

    /// "read", "write" or "fetch" ([`PageFault::is_fetch`]).
    pub fn access(&self) -> &'static str {
        if self.is_fetch() {
            "fetch"
        } else if self.error & 0x2 != 0 {
            "write"
        } else {
            "read"
        }
    }

    /// Whether the page was present (a protection violation) or not.
    pub fn cause(&self) -> &'static str {
        if self.error & 1 != 0 {
            "protection violation"
        } else {
            "page not present"
        }
    }
}

impl fmt::Display for PageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {:#x}: {}", self.access(), self.address, self.cause())?;
        match (self.error & 1 != 0, self.access()) {
            (true, "fetch") => f.write_str(" (the page is not executable)")?,
            (true, "write") => f.write_str(" (the page is read-only)")?,
            _ => {}
        }
        if self.address < 4096 {
            f.write_str(" (a null pointer)")?;
        }
        Ok(())
    }
}

/// The general registers at the fault, and the interrupted context's RIP, RSP, RFLAGS, CS and SS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub cs: u64,
    pub ss: u64,
}

impl fmt::Display for Regs {
    /// Four lines of `name value` pairs, each indented by two spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self;
        writeln!(f, "  rip {:#018x} rsp {:#018x} rbp {:#018x} rflags {:#x}", r.rip, r.rsp, r.rbp, r.rflags)?;
        writeln!(f, "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}", r.rax, r.rbx, r.rcx, r.rdx)?;
        writeln!(f, "  rsi {:#018x} rdi {:#018x} r8  {:#018x} r9  {:#018x}", r.rsi, r.rdi, r.r8, r.r9)?;
        writeln!(f, "  r10 {:#018x} r11 {:#018x} r12 {:#018x} r13 {:#018x}", r.r10, r.r11, r.r12, r.r13)?;
        // Selectors are 16 bits; under PV Xen keeps the saved event mask in the CS slot's upper bits.
        write!(f, "  r14 {:#018x} r15 {:#018x} cs {:#x} ss {:#x}", r.r14, r.r15, r.cs & 0xffff, r.ss & 0xffff)
    }
}

/// The stack the fault happened on: `[bottom, top)`, with an unmapped guard page just below `bottom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack {
    /// Lowest usable address (the guard page ends here).
    pub bottom: u64,
    /// One past the highest address.
    pub top: u64,
}

impl Stack {
    /// The guard page: `[bottom - 4096, bottom)`.
    pub fn guard(&self) -> core::ops::Range<u64> {
        self.bottom.saturating_sub(4096)..self.bottom
    }

    /// Whether a fault looks like the stack running out: a page fault or double fault whose address (CR2) is in
    /// the guard page, or one taken with RSP in the guard page or within 64 KiB below it (a frame bigger than the
    /// guard, or CR2 lost: seen under nested virtualisation, where CR2 came back 0), or a PV fault whose frame Xen
    /// could not push (RSP at or below the bottom).
    pub fn overflowed(&self, vector: u64, cr2: Option<u64>, rsp: u64) -> bool {
        let guard = self.guard();
        let fault = matches!(vector, VECTOR_PAGE_FAULT | VECTOR_DOUBLE_FAULT);
        let cr2_in_guard = cr2.is_some_and(|a| guard.contains(&a));
        let rsp_exhausted = rsp < self.bottom && rsp >= guard.start.saturating_sub(64 * 1024);
        fault && (cr2_in_guard || rsp_exhausted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn page_fault_detail_names_the_access_and_the_cause() {
        let pf = |address, error| format!("{}", PageFault { address, error, rip: 0x10_2000 });
        assert_eq!(pf(0, 0), "read of 0x0: page not present (a null pointer)");
        let jump = PageFault { address: 0, error: 0, rip: 0 };
        assert_eq!(format!("{jump}"), "fetch of 0x0: page not present (a null pointer)", "no NX: error code 0");
        assert_eq!(pf(0x180000, 0x3), "write of 0x180000: protection violation (the page is read-only)");
        assert_eq!(pf(0x190000, 0x11), "fetch of 0x190000: protection violation (the page is not executable)");
        assert_eq!(pf(0xdead000, 0x2), "write of 0xdead000: page not present");
    }

    #[test]
    fn names_of_vectors() {
        assert_eq!(exception_name(0), "divide error");
        assert_eq!(exception_name(6), "invalid opcode");
        assert_eq!(exception_name(14), "page fault");
        assert_eq!(exception_name(32), "unknown");
        assert_eq!(exception_name(u64::MAX), "unknown");
    }

    #[test]
    fn registers_print_on_five_lines() {
        let r = Regs { rip: 0x10_2345, rsp: 0x18_0ff8, r15: 15, cs: 0x1_0000_e033, ss: 0xe02b, ..Regs::default() };
        let text = format!("{r}");
        assert_eq!(text.lines().count(), 5);
        assert!(text.starts_with("  rip 0x0000000000102345 rsp 0x0000000000180ff8"), "{text}");
        assert!(text.contains("r15 0x000000000000000f"), "{text}");
        assert!(text.ends_with("cs 0xe033 ss 0xe02b"), "the PV event mask above CS is not a selector: {text}");
    }

    #[test]
    fn an_overflow_is_told_from_other_faults() {
        let stack = Stack { bottom: 0x20_0000, top: 0x24_0000 };
        assert_eq!(stack.guard(), 0x1f_f000..0x20_0000);
        // CR2 in the guard page.
        assert!(stack.overflowed(14, Some(0x1f_fff8), 0x20_0010));
        // CR2 lost (0), RSP below the bottom: still an overflow.
        assert!(stack.overflowed(14, Some(0), 0x1f_fff0));
        assert!(stack.overflowed(8, None, 0x1f_0000));
        // A null read with plenty of stack left, or a fault that is not a page fault.
        assert!(!stack.overflowed(14, Some(0), 0x23_0000));
        assert!(!stack.overflowed(6, Some(0x1f_fff8), 0x1f_fff0));
        // Far below the guard: some other stack, not this one run out.
        assert!(!stack.overflowed(14, Some(0), 0x10_0000));
    }
}
