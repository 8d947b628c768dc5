//! Crash reports, the platform side: reads what the logic in `sirocco_boot_logic::crash` needs (the boot stack's
//! bounds, the words of its frames, the symbol table the build put in the image) and prints the report every mode
//! shares: for a CPU exception its name, error code, the page-fault detail, every register, "STACK OVERFLOW" when
//! the boot stack ran into its guard page, and a backtrace with function names; for a panic (`panic.rs`) the
//! backtrace and the heap's state.
//!
//! Everything here runs with the domain already lost, so it allocates nothing, takes no lock it cannot break
//! (`console::print_forced`), and reads memory only where it is mapped for the domain's whole life.

use crate::console;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use sirocco_boot_logic::crash::frames::{self, WalkEnd};
use sirocco_boot_logic::crash::symtab::{declared_len, Symtab, HEADER_LEN};
use sirocco_boot_logic::crash::{exception_name, PageFault, Regs, Stack, VECTOR_PAGE_FAULT};
use sirocco_boot_logic::PAGE_SIZE;

extern "C" {
    static __stack_bottom: u8;
    static __stack_top: u8;
    static __image_end: u8;
    static __sirocco_syms: u8;
}

/// The table's place in the image until `sirocco build` puts the real one there (`objcopy --update-section`):
/// zeros, which read as "no table". 32 bytes, so the header is always inside the section.
#[used]
#[link_section = ".sirocco_syms"]
static SYMS_PLACEHOLDER: [u8; 32] = [0; 32];

/// Frames a backtrace shows at most.
const MAX_FRAMES: usize = 48;
/// The largest table believed (a real one is tens of KiB).
const MAX_TABLE: usize = 1 << 20;

/// The symbol table's bytes, or none (an image built without it).
fn table_bytes() -> &'static [u8] {
    let start = core::ptr::addr_of!(__sirocco_syms);
    const _: () = assert!(HEADER_LEN <= 32, "the placeholder holds the header");
    // SAFETY: the section holds at least the 32-byte placeholder, loaded with the image and never written.
    let header: &[u8; HEADER_LEN] = unsafe { &*(start as *const [u8; HEADER_LEN]) };
    let Some(len) = declared_len(header).filter(|&len| len <= MAX_TABLE) else { return &[] };
    // SAFETY: the build sized the section (and the segment the loader mapped) to exactly this table; the header is
    // its own, written by `sirocco build` (`sirocco_imgcheck::symtab`) with these lengths. Nothing writes the section.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// The table, if the image has a valid one.
pub(crate) fn symtab() -> Option<Symtab<'static>> {
    Symtab::parse(table_bytes()).ok()
}

/// The end of the loaded image, page-aligned: the linker's `__image_end`, or past the symbol table the build
/// appended after it. Nothing may be placed below this.
pub(crate) fn image_end() -> u64 {
    let linked = core::ptr::addr_of!(__image_end) as u64;
    let table = core::ptr::addr_of!(__sirocco_syms) as u64 + table_bytes().len().max(32) as u64;
    linked.max(table).next_multiple_of(PAGE_SIZE)
}

/// The boot stack (every task runs on it) and its guard page.
pub(crate) fn boot_stack() -> Stack {
    Stack { bottom: core::ptr::addr_of!(__stack_bottom) as u64, top: core::ptr::addr_of!(__stack_top) as u64 }
}

/// Prints one frame: `#n address function+offset` (`?` when no function is known). A return address is looked up
/// one byte back, inside the call that returns there (the call may be a function's last instruction).
fn print_frame(table: Option<&Symtab<'_>>, n: usize, addr: u64, is_return: bool) {
    let look = if is_return { addr.wrapping_sub(1) } else { addr };
    match table.and_then(|t| t.lookup(look)) {
        Some((name, off)) => {
            console::print_forced(format_args!("  #{n:<2} {addr:#018x} {name}+{:#x}\n", off + (addr - look)))
        }
        None => console::print_forced(format_args!("  #{n:<2} {addr:#018x} ?\n")),
    }
}

/// Prints the backtrace: `rip` first (a faulting instruction), then `pushed` (a return address a call left at RSP
/// before jumping nowhere), then every return address of the frame-pointer chain from `rbp`, within the boot stack.
/// Raw addresses go through `tools/symbolize` for file and line.
pub(crate) fn print_backtrace(rip: Option<u64>, pushed: Option<u64>, rbp: u64) {
    let table = symtab();
    console::print_forced(format_args!(
        "backtrace (most recent call first{}):\n",
        if table.is_some() { "" } else { "; no symbol table in this image" }
    ));
    let mut n = 0;
    if let Some(rip) = rip {
        print_frame(table.as_ref(), n, rip, false);
        n += 1;
    }
    if let Some(ret) = pushed {
        print_frame(table.as_ref(), n, ret, true);
        n += 1;
    }
    let stack = boot_stack();
    let end = frames::walk(
        rbp,
        stack.bottom..stack.top,
        MAX_FRAMES,
        // SAFETY: `walk` reads only 8-byte-aligned words inside [__stack_bottom, __stack_top), the boot stack,
        // mapped writable for the domain's life.
        |a| unsafe { core::ptr::read_volatile(a as *const u64) },
        |ret| {
            print_frame(table.as_ref(), n, ret, true);
            n += 1;
        },
    );
    if end != WalkEnd::Bottom {
        console::print_forced(format_args!("  ({end})\n"));
    }
}

/// The crash record dom0's post-mortem tool reads from a dump of the domain (`tools/debug-core`, by this symbol's
/// address in the image): a magic word, the vector (`u64::MAX` for a panic), the error code, CR2, then the
/// registers in the order of Linux's `user_regs_struct` (r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx,
/// rdx, rsi, rdi, rip, cs, rflags, rsp, ss), so the core it writes starts gdb's backtrace at the fault rather than
/// at the shutdown hypercall the vCPU was in when it stopped.
#[no_mangle]
#[used]
static SIROCCO_CRASH_RECORD: [AtomicU64; 24] = [const { AtomicU64::new(0) }; 24];
/// `SIROCCO_CRASH_RECORD[0]` once the rest is written: "SIRCRSH1".
const CRASH_RECORD_MAGIC: u64 = u64::from_le_bytes(*b"SIRCRSH1");

/// Fills [`SIROCCO_CRASH_RECORD`].
pub(crate) fn record(vector: u64, error: u64, cr2: u64, r: &Regs) {
    let words = [
        vector,
        error,
        cr2,
        r.r15,
        r.r14,
        r.r13,
        r.r12,
        r.rbp,
        r.rbx,
        r.r11,
        r.r10,
        r.r9,
        r.r8,
        r.rax,
        r.rcx,
        r.rdx,
        r.rsi,
        r.rdi,
        r.rip,
        r.cs & 0xffff,
        r.rflags,
        r.rsp,
        r.ss & 0xffff,
    ];
    for (slot, w) in SIROCCO_CRASH_RECORD[1..].iter().zip(words) {
        slot.store(w, Ordering::Relaxed);
    }
    SIROCCO_CRASH_RECORD[0].store(CRASH_RECORD_MAGIC, Ordering::Release);
}

/// The caller's registers as far as a post-mortem backtrace needs them (frame, stack and instruction pointers).
#[inline(always)]
pub(crate) fn current_regs() -> Regs {
    let (rbp, rsp, rip): (u64, u64, u64);
    // SAFETY: reads registers and the address of the next instruction; no memory is touched.
    unsafe {
        core::arch::asm!("mov {0}, rbp", "mov {1}, rsp", "lea {2}, [rip]", out(reg) rbp, out(reg) rsp, out(reg) rip,
            options(nomem, nostack, preserves_flags))
    };
    Regs { rbp, rsp, rip, ..Regs::default() }
}

/// Set while an exception is being reported: a second one means the report itself faulted.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Whether an exception report is already under way (a fault inside it must not start another).
pub(crate) fn begin_report() -> bool {
    !REPORTING.swap(true, Ordering::SeqCst)
}

/// Prints the report of CPU exception `vector` (error code `error`, CR2 `cr2` for a page fault, the registers at
/// the fault). The caller ends the domain.
pub(crate) fn report_exception(vector: u64, error: u64, cr2: Option<u64>, regs: &Regs) {
    record(vector, error, cr2.unwrap_or(0), regs);
    let stack = boot_stack();
    if stack.overflowed(vector, cr2, regs.rsp) {
        let guard = stack.guard();
        console::print_forced(format_args!(
            "\nsirocco: STACK OVERFLOW: the boot stack ({} KiB) ran into its guard page at {:#x}..{:#x}\n",
            (stack.top - stack.bottom) / 1024,
            guard.start,
            guard.end
        ));
    }
    console::print_forced(format_args!(
        "\nsirocco: CPU exception {vector} ({}), error code {error:#x}, at rip {:#018x}\n",
        exception_name(vector),
        regs.rip
    ));
    let mut pushed = None;
    if let (VECTOR_PAGE_FAULT, Some(address)) = (vector, cr2) {
        let pf = PageFault { address, error, rip: regs.rip };
        console::print_forced(format_args!("  page fault: {pf}\n"));
        // A call to a bad address faults on the fetch of its target, before any frame is set up there: the
        // caller is the return address the call left at RSP. (The fetch is of RIP itself, or RIP is outside the
        // code: CR2 may read back wrong under nested virtualisation.)
        let rsp_in_stack = regs.rsp.is_multiple_of(8) && regs.rsp >= stack.bottom && regs.rsp + 8 <= stack.top;
        let jumped_out = address == regs.rip || !crate::protect::is_code(regs.rip);
        if pf.is_fetch() && jumped_out && rsp_in_stack {
            // SAFETY: an aligned word inside the boot stack, mapped for the domain's life.
            pushed = Some(unsafe { core::ptr::read_volatile(regs.rsp as *const u64) });
        }
    }
    console::print_forced(format_args!("{regs}\n"));
    print_backtrace(Some(regs.rip), pushed, regs.rbp);
}

/// Allocations the heap refused (each one a null return; `try_reserve` callers handle theirs), and the size and
/// alignment of the last one, for the out-of-memory report.
static REFUSED: AtomicU64 = AtomicU64::new(0);
static LAST_REFUSED: AtomicU64 = AtomicU64::new(0);

/// Records a refused allocation (called by the heap).
pub(crate) fn allocation_refused(size: usize, align: usize) {
    REFUSED.fetch_add(1, Ordering::Relaxed);
    LAST_REFUSED.store((size as u64) << 16 | (align.trailing_zeros() as u64), Ordering::Relaxed);
}

/// Prints the heap's totals and the refused allocations (part of every panic report: the usual panic after a
/// refused allocation is Rust's "memory allocation of N bytes failed").
pub(crate) fn print_heap() {
    match crate::mm::try_heap_stats() {
        Some(h) => console::print_forced(format_args!(
            "heap: {} KiB, {} KiB in use, {} KiB free",
            h.size / 1024,
            h.used / 1024,
            h.free / 1024
        )),
        None => console::print_forced(format_args!("heap: locked by the code that panicked")),
    }
    let refused = REFUSED.load(Ordering::Relaxed);
    if refused > 0 {
        let last = LAST_REFUSED.load(Ordering::Relaxed);
        console::print_forced(format_args!(
            "; allocations refused: {refused}, the last of {} bytes (align {})\n",
            last >> 16,
            1u64 << (last & 0xffff)
        ));
    } else {
        console::print_forced(format_args!("; no allocation refused\n"));
    }
}
