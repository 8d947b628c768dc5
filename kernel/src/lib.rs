//! Sirocco's runtime core and the API an application is written against: the run loop, tasks and timers
//! (`runtime`), xenstore and `control/shutdown` (`xenstore`, `shutdown`), the network and block devices (`net`,
//! `netfront`, `block`, `blkfront`), and [`Env`] / [`macro@main`]. It starts where the platform layer (`sirocco-boot`,
//! `boot/`) hands over after the start of day of whichever mode booted (PV, PVH or HVM), and stands on its
//! hypercalls, event channels, grant table and console. The logic it drives lives in `sirocco-kernel-logic`,
//! `sirocco-drivers` and `sirocco-net`, tested on the host.
//!
//! An application is a `#![no_std] #![no_main]` binary crate:
//! ```ignore
//! #![no_std]
//! #![no_main]
//! #[sirocco::main]
//! async fn main(env: sirocco::Env) -> Result<(), sirocco::Error> {
//!     sirocco::println!("hello from {}", env.xen);
//!     Ok(())
//! }
//! ```
//! Returning powers the domain off; returning `Err(e)` (any `Display`) logs it and crashes the domain; a panic
//! prints its message and location and crashes the domain. A synchronous `fn main(env: &sirocco::Env)` works too.
#![no_std]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod blkfront;
pub mod block;
pub mod boot_steps;
mod error;
/// Front-end device discovery and the xenbus state machine (logic in `sirocco-drivers`).
pub use sirocco_drivers::frontend;
pub mod net;
pub mod netfront;
pub mod runtime;
pub mod shutdown;
mod start;
pub mod sync;
pub mod xenstore;

use core::fmt;

pub use error::{Error, ErrorContext};
pub use log;
pub use runtime::{block_on, sleep, sleep_until, spawn, wall_clock, Instant, JoinError, JoinHandle};
pub use sirocco_boot::{
    boot_mode, heap_stats, page_pool_free, print, println, uptime, BootMode, Exit, HeapStats, MemoryInfo, XenVersion,
};
/// The platform layer's modules apps and drivers use directly (console, event channels, grants, shared rings,
/// profile counters).
pub use sirocco_boot::{console, evtchn, grant, profile, ring};
pub use sirocco_boot_logic::cmdline::{Arg, Cmdline};
pub use sirocco_kernel_logic::future::{select, Either};
/// Declares the application's entry point (see the crate docs): `#[sirocco::main] async fn main(env: Env)`.
pub use sirocco_macros::main;

static CMDLINE: spin::Once<Cmdline<'static>> = spin::Once::new();

/// The guest command line, for the drivers' own settings (`tso=`, `blk-segments=`...): empty until the start of
/// day has recorded it.
pub(crate) fn cmdline() -> Cmdline<'static> {
    CMDLINE.get().copied().unwrap_or_else(|| Cmdline::parse("").expect("the empty command line parses"))
}

/// What the application is given at start (an async `main` gets its own copy).
#[derive(Clone, Copy, Debug)]
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

/// Ends the domain: a poweroff becomes the reboot the toolstack asked for (`control/shutdown`), the console is
/// drained (bounded) so the last lines are not lost, then Xen is asked.
pub fn exit(how: Exit) -> ! {
    sirocco_boot::exit(shutdown::adjust(how))
}
