//! Sirocco's platform layer and runtime: the entry points of each boot mode (PV, PVH, multiboot2/HVM), hypercalls, memory, console, logging, and the API an
//! application is written against. It is the only crate with `unsafe`; each use says why it is sound. The logic
//! it drives (page tables, command line, console ring, ...) lives in `sirocco-kernel` and `sirocco-drivers`,
//! tested on the host.
//!
//! An application is a `#![no_std] #![no_main]` binary crate:
//! ```ignore
//! #![no_std]
//! #![no_main]
//! sirocco::main!(main);
//! fn main(env: &sirocco::Env) {
//!     sirocco::println!("hello from {}", env.xen);
//! }
//! ```
//! Returning powers the domain off; returning `Err(e)` (any `Display`) logs it and crashes the domain; a panic
//! prints its message and location and crashes the domain.
#![no_std]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod abi;
pub mod blkfront;
pub mod block;
pub mod console;
mod early;
mod entry;
pub mod evtchn;
pub mod grant;
mod hvm;
mod hypercall;
mod logger;
mod mm;
mod mode;
pub mod net;
pub mod netfront;
mod panic;
pub mod profile;
pub mod ring;
pub mod runtime;
pub mod shutdown;
pub mod xenstore;
/// Front-end device discovery and the xenbus state machine (logic in `sirocco-drivers`).
pub use sirocco_drivers::frontend;
mod start;
mod xen;

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

pub use log;
pub use mm::{heap_stats, HeapStats, MemoryInfo};
pub use mode::{boot_mode, BootMode};
pub use runtime::{block_on, sleep, sleep_until, spawn, wall_clock, Instant, SpawnError};
pub use sirocco_kernel::cmdline::{Arg, Cmdline};
pub use sirocco_kernel::future::{select, Either};

/// What the application is given at start.
pub struct Env {
    /// The guest command line (`extra = "..."` in the xl config).
    pub cmdline: Cmdline<'static>,
    /// Memory facts from boot.
    pub memory: MemoryInfo,
    /// The hypervisor's version.
    pub xen: XenVersion,
    /// How the domain was booted (PV, PVH, or HVM through a boot loader).
    pub mode: BootMode,
}

/// Xen's version, as `XENVER_version` and `XENVER_extraversion` report it.
#[derive(Clone, Copy, Debug)]
pub struct XenVersion {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
    pub(crate) extra: [u8; 16],
}

impl XenVersion {
    /// The extra version text (e.g. ".7" or "-pre").
    pub fn extra(&self) -> &str {
        let end = self.extra.iter().position(|&b| b == 0).unwrap_or(self.extra.len());
        core::str::from_utf8(&self.extra[..end]).unwrap_or("")
    }
}

impl fmt::Display for XenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}{}", self.major, self.minor, self.extra())
    }
}

/// How the domain ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `SHUTDOWN_poweroff`: a clean end.
    Poweroff,
    /// `SHUTDOWN_reboot`: the toolstack restarts the domain (per `on_reboot`).
    Reboot,
    /// `SHUTDOWN_crash`: the toolstack sees a crash (per `on_crash`).
    Crash,
}

/// What an application's `main` may return.
pub trait Termination {
    /// How the domain should end.
    fn report(self) -> Exit;
}

impl Termination for () {
    fn report(self) -> Exit {
        Exit::Poweroff
    }
}

impl Termination for Exit {
    fn report(self) -> Exit {
        self
    }
}

impl<E: fmt::Display> Termination for Result<(), E> {
    fn report(self) -> Exit {
        match self {
            Ok(()) => Exit::Poweroff,
            Err(e) => {
                log::error!("application failed: {e}");
                Exit::Crash
            }
        }
    }
}

impl<E: fmt::Display> Termination for Result<Exit, E> {
    fn report(self) -> Exit {
        match self {
            Ok(exit) => exit,
            Err(e) => {
                log::error!("application failed: {e}");
                Exit::Crash
            }
        }
    }
}

/// Declares the application's entry point: `sirocco::main!(main)` with `fn main(env: &Env) -> impl Termination`.
#[macro_export]
macro_rules! main {
    ($f:path) => {
        #[no_mangle]
        pub fn __sirocco_app_main(env: &$crate::Env) -> $crate::Exit {
            $crate::Termination::report($f(env))
        }
    };
}

static BOOT_NS: AtomicU64 = AtomicU64::new(0);

/// Time since Sirocco's entry point ran.
pub fn uptime() -> Duration {
    let now = xen::system_time_ns().unwrap_or(0);
    Duration::from_nanos(now.saturating_sub(BOOT_NS.load(Ordering::Relaxed)))
}

/// Ends the domain: waits (bounded) for the console to drain so the last lines are not lost, then asks Xen.
pub fn exit(how: Exit) -> ! {
    let how = shutdown::adjust(how);
    let reason = match how {
        Exit::Poweroff => abi::SHUTDOWN_poweroff,
        Exit::Reboot => abi::SHUTDOWN_reboot,
        Exit::Crash => abi::SHUTDOWN_crash,
    };
    if let Some(dropped) = console::with(|c| c.dropped()).filter(|&d| d > 0) {
        println!("sirocco: {dropped} console bytes were dropped (backend did not drain the ring)");
    }
    console::flush();
    let rc = hypercall::shutdown(reason);
    // Xen refused: say so and crash instead.
    println!("sirocco: SCHEDOP_shutdown({reason}) failed with {rc}; crashing");
    console::flush();
    loop {
        hypercall::shutdown(abi::SHUTDOWN_crash);
        hypercall::sched_yield();
    }
}
