//! Panics: the message and its source location on the console, the backtrace (function names from the image's
//! symbol table; `tools/symbolize` adds files and lines) and the heap's state (an out-of-memory panic names the
//! request that failed), then `SCHEDOP_shutdown(crash)`, so the toolstack sees a crash (xl's `on_crash`) and the
//! log shows why.

use crate::{console, exit, Exit};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while reporting a panic: do not try the console again.
        crate::hypercall::shutdown(crate::abi::SHUTDOWN_crash);
        loop {
            crate::hypercall::sched_yield();
        }
    }
    match info.location() {
        Some(l) => console::print_forced(format_args!(
            "\nPANIC: {}\n  at {}:{}:{}\n",
            info.message(),
            l.file(),
            l.line(),
            l.column()
        )),
        None => console::print_forced(format_args!("\nPANIC: {}\n  at an unknown location\n", info.message())),
    }
    let regs = crate::crash::current_regs();
    crate::crash::record(u64::MAX, 0, 0, &regs);
    crate::crash::print_backtrace(None, None, regs.rbp);
    crate::crash::print_heap();
    console::write_trace_dump(true);
    exit(Exit::Crash)
}
