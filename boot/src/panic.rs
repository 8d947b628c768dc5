//! Panics: the message and its source location on the console, then `SCHEDOP_shutdown(crash)`, so the toolstack
//! sees a crash (xl's `on_crash`) and the log shows why.

use crate::{console, exit, Exit};
use core::fmt::Write;
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
    console::with_forced(|c| {
        let _ = write!(c, "\nPANIC: {}", info.message());
        match info.location() {
            Some(l) => {
                let _ = writeln!(c, "\n  at {}:{}:{}", l.file(), l.line(), l.column());
            }
            None => {
                let _ = writeln!(c, "\n  at an unknown location");
            }
        }
    });
    exit(Exit::Crash)
}
