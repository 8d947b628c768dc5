//! Suspending the domain (issue 16): what `xl save`, `xl save -c` and `xl migrate` ask of a PV guest, on the
//! platform's side. The runtime (`sirocco::suspend`) calls [`suspend`] between two rounds of its loop, with no
//! task running and no xenstore request in flight, and rebuilds its own state (timer, xenstore) from what it
//! returns. The order follows Linux's and Mini-OS's (docs/suspend.md):
//! 1. the grant table's frames and shared_info unmapped (the toolstack refuses to save a page table that maps a
//!    frame outside the domain's memory), start_info's xenstore and console frames made pseudo-physical;
//! 2. `SCHEDOP_shutdown(SHUTDOWN_suspend)` with start_info's machine frame;
//! 3. back: shared_info mapped (a new frame after a restore), the guest's clock continued from the suspend
//!    (`ClockOffset`), the p2m tree published again, the grant table's frames mapped again; after a restore in a
//!    new domain, every event channel forgotten and the console moved to its new port.
//!
//! PV only for now: a PVH guest's save differs (no p2m, shared_info and grant frames re-added to the physmap, and
//! `HVM_PARAM_CALLBACK_IRQ` needed for a cancelled suspend to return 1), and is not done yet.

use crate::{console, evtchn, grant, hypercall, mode, pv, xen};
use core::fmt;

/// How the domain came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// Restored or migrated: a new domain on this host or another. Every event channel, grant and xenstore watch
    /// is gone; the devices' backends are new.
    NewDomain {
        /// The xenstore ring's event channel now.
        xenstore_port: u32,
    },
    /// The suspend was cancelled or was a checkpoint (`xl save -c`): the same domain, everything as it was.
    Cancelled,
}

/// Why the domain could not suspend, or came back broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuspendError {
    /// What failed.
    pub what: &'static str,
    /// Xen's error code, if any.
    pub code: i64,
}

impl fmt::Display for SuspendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "suspend: {} (code {})", self.what, self.code)
    }
}

/// Whether this boot mode can suspend (PV only, for now).
pub fn supported() -> bool {
    mode::boot_mode() == mode::BootMode::Pv
}

/// Suspends the domain and returns once it runs again. See the module's docs for what the caller must ensure.
pub fn suspend() -> Result<Resumed, SuspendError> {
    if !supported() {
        return Err(SuspendError { what: "only PV guests can suspend so far", code: 0 });
    }
    let guest_now = xen::system_time_ns().unwrap_or(0);
    log::info!("suspending (the toolstack asked)");
    console::flush();
    grant::suspend_frames().map_err(|e| SuspendError { what: e.what, code: e.code })?;
    let frames = pv::canonicalise_start_info();
    if let Err(code) = xen::suspend_shared_info() {
        pv::restore_start_info(frames);
        return Err(SuspendError { what: "unmapping shared_info", code });
    }
    let rc = hypercall::suspend(pv::start_info_mfn());
    // From here the toolstack may have rewritten start_info (a restore), or left it alone (cancelled).
    if rc != 0 {
        pv::restore_start_info(frames);
    }
    let (shared_info, xenstore_port, console_port) = pv::resumed_info();
    xen::resume_shared_info_pv(shared_info).map_err(|code| SuspendError { what: "mapping shared_info", code })?;
    xen::resume_clock(guest_now);
    pv::memory::publish_p2m();
    grant::resume_frames().map_err(|e| SuspendError { what: e.what, code: e.code })?;
    if rc != 0 {
        if rc < 0 {
            log::warn!("SCHEDOP_shutdown(suspend) answered {rc}: taken as a cancelled suspend");
        }
        return Ok(Resumed::Cancelled);
    }
    let forgotten = evtchn::forget_all();
    console::resume(console_port);
    log::info!(
        "resumed in a new domain: {forgotten} event channels forgotten, xenstore on port {xenstore_port}, console on {console_port}"
    );
    Ok(Resumed::NewDomain { xenstore_port })
}
