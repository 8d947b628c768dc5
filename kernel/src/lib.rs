//! Sirocco's runtime core and the API an application is written against: the run loop, tasks and timers
//! (`runtime`), xenstore and `control/shutdown` (`xenstore`, `shutdown`), the network and block devices (`net`,
//! `block`), metrics and the stats endpoint that serves them with a live page (`metrics`, `stats`), and [`Env`] /
//! [`macro@main`]. It starts where the platform layer (`sirocco-boot`,
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
//!
//! # Configuration
//! Devices are configured in code or from the guest command line, which is one source of the configuration, not
//! a hidden global: [`net::interfaces_with`] takes a [`net::VifConfigs`] (or one [`net::NetConfig`] for the first
//! vif) and [`block::open`] a [`block::DiskConfig`]; [`net::interfaces`], [`net::default`], [`block::disks`] and
//! [`block::default`] read theirs from the command line (`ip=`, `tso=`, `blk-segments=`...:
//! `VifConfigs::from_cmdline(&env.cmdline)`, `DiskConfig::from_cmdline`), and a program may read those and change
//! what it likes before bringing the devices up.
//!
//! # Stability
//! Everything public here follows semantic versioning (0.x: a minor release may break, and the CHANGELOG says how)
//! except `raw`: the shared rings, grants, event channels, console, xenbus front-end logic and the raw
//! netfront/blkfront drivers, compiled in only with the feature `unstable` and outside semver.
#![no_std]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod block;
pub mod boot_steps;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod net;
pub mod rand;
// The layers under the API (outside semver): public with the feature `unstable`, the runtime's own otherwise.
#[cfg(feature = "unstable")]
pub mod raw;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)] // what only programs with `unstable` use
mod raw;
pub mod runtime;
pub mod shutdown;
mod start;
pub mod stats;
pub mod suspend;
pub mod sync;
#[cfg(feature = "tls")]
pub mod tls;
pub mod trace;
pub mod xenstore;

use core::fmt;

pub use error::{Error, ErrorContext};
pub use log;
pub use runtime::{block_on, sleep, sleep_until, spawn, wall_clock, Instant, JoinError, JoinHandle};
pub use sirocco_boot::{
    boot_mode, heap_stats, page_pool_free, print, println, uptime, BootMode, Exit, HeapStats, MemoryInfo, XenVersion,
};
/// Where the guest's time goes: [`profile::Profile::now`], the counters the run loop and the network tasks keep
/// (time idle in the hypervisor, in the network stacks' polls, wake-ups, kicks), for apps' status reports.
pub mod profile {
    pub use sirocco_boot::profile::Profile;
}
pub use sirocco_boot_logic::cmdline::{Arg, Cmdline};
pub use sirocco_kernel_logic::future::{select, Either};
/// Declares the application's entry point (see the crate docs): `#[sirocco::main] async fn main(env: Env)`.
pub use sirocco_macros::main;

static CMDLINE: spin::Once<Cmdline<'static>> = spin::Once::new();
static APP_NAME: spin::Once<&'static str> = spin::Once::new();

/// Records the application's package name (`#[sirocco::main]`'s entry point calls it), for syslog's APP-NAME
/// (`logs`) and the metrics' build information.
#[doc(hidden)]
pub fn __set_app_name(name: &'static str) {
    APP_NAME.call_once(|| name);
}

/// The application's package name, once its entry point has run.
pub(crate) fn app_name() -> Option<&'static str> {
    APP_NAME.get().copied()
}
/// The hypervisor's version, recorded at the start of day (for `metrics`' build information).
static XEN: spin::Once<XenVersion> = spin::Once::new();

/// The hypervisor's version, once the start of day has recorded it.
pub(crate) fn xen_version() -> Option<XenVersion> {
    XEN.get().copied()
}

/// The guest command line, where `net::interfaces` and `block::disks` read their configurations (`tso=`,
/// `blk-segments=`...): empty until the start of day has recorded it.
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
