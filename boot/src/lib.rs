//! Sirocco's platform layer: the entry point and start of day of each boot mode, and the Xen interfaces the
//! runtime stands on. It holds all of Sirocco's `unsafe` but the runtime's executor hand-off; each use says why it
//! is sound.
//!
//! - **Boot modes**: `pv/` (Xen enters `_start` in 64-bit mode with `start_info`), `hvm/` (the PVH entry named by
//!   `XEN_ELFNOTE_PHYS32_ENTRY`, and the multiboot2 entry GRUB uses for HVM guests: 32-bit code, our own page
//!   tables, Xen found through CPUID), and `start.rs`, the steps they share before handing over to the runtime
//!   (crate `sirocco`, in `kernel/`) through [`Started`].
//! - **Xen interfaces**: hypercalls, memory and the heap, shared_info and the PV clock, event channels, the grant
//!   table, shared rings, the console (and, in PVH/HVM, the serial and debug ports), CPU exceptions.
//!
//! The logic all of this drives (page tables, boot information, CPUID, the command line, the console ring, grant
//! bookkeeping, ...) lives in `sirocco-boot-logic` and `sirocco-drivers`, tested on the host.
#![no_std]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod abi;
pub mod console;
mod crash;
mod early;
pub mod entropy;
pub mod evtchn;
pub mod grant;
mod hvm;
pub mod hypercall;
mod logger;
mod mm;
mod mode;
mod panic;
pub mod profile;
mod protect;
mod pv;
pub mod ring;
mod start;
pub mod suspend;
mod trap;
pub mod xen;
pub mod xsring;

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

pub use mm::{heap_stats, page_pool_free, virt_to_mfn, HeapStats, MemoryInfo};
pub use mode::{boot_mode, BootMode};
pub use start::Started;

/// The logger's side of `sirocco::logs`: the ring of recent records, the hand-off of each record to the
/// runtime's syslog queue, and the sections whose records stay local (see `logger.rs`).
pub mod logs {
    pub use crate::logger::{filter, local_only, recent, ring_stats, set_forward, DEFAULT_RING_BYTES};
    pub use sirocco_boot_logic::logging::ring::RingStats;
    pub use sirocco_boot_logic::logging::{OwnedRecord, Record};
}

/// CPUID `leaf` (sub-leaf 0): eax, ebx, ecx, edx.
pub(crate) fn cpuid(leaf: u32) -> [u32; 4] {
    // SAFETY: CPUID is available on every x86_64 CPU and only reads processor information.
    #[allow(unused_unsafe)]
    let r = unsafe { core::arch::x86_64::__cpuid(leaf) };
    [r.eax, r.ebx, r.ecx, r.edx]
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

static BOOT_NS: AtomicU64 = AtomicU64::new(0);

/// Time since Sirocco's entry point ran.
pub fn uptime() -> Duration {
    let now = xen::system_time_ns().unwrap_or(0);
    Duration::from_nanos(now.saturating_sub(BOOT_NS.load(Ordering::Relaxed)))
}

/// Ends the domain as `how` says: waits (bounded) for the console to drain so the last lines are not lost, then
/// asks Xen. (The runtime's `sirocco::exit` first turns a poweroff into the reboot the toolstack asked for.)
pub fn exit(how: Exit) -> ! {
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
