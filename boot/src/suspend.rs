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
//! A PVH guest's differs (docs/suspend.md, section 6): no start_info and no p2m; shared_info and the grant frames
//! are placed with `XENMEM_add_to_physmap` again (a restore does not carry them); the xenstore and console ports
//! come from HVM params; and `HVM_PARAM_CALLBACK_IRQ` is set at boot, without which a cancelled suspend would
//! return 0 as if in a new domain, and again after every resume. An HVM guest's is a PVH guest's, and after it the
//! new device model's emulated disks and NICs are unplugged again (its state is the toolstack's to save: QEMU's).

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

/// Suspends the domain and returns once it runs again. See the module's docs for what the caller must ensure.
/// `timer_port`: the port VIRQ_TIMER is bound to, by which a translated guest tells a checkpoint from a new domain
/// should the toolstack not have set the return value.
pub fn suspend(timer_port: Option<u32>) -> Result<Resumed, SuspendError> {
    let pv = !mode::boot_mode().translated();
    let guest_now = xen::system_time_ns().unwrap_or(0);
    log::info!("suspending (the toolstack asked)");
    console::flush();
    grant::suspend_frames().map_err(|e| SuspendError { what: e.what, code: e.code })?;
    let frames = pv.then(pv::canonicalise_start_info);
    if let Err(code) = xen::suspend_shared_info() {
        if let Some(frames) = frames {
            pv::restore_start_info(frames);
        }
        return Err(SuspendError { what: "unmapping shared_info", code });
    }
    let mut rc = hypercall::suspend(if pv { pv::start_info_mfn() } else { 0 });
    // Still bound: the same domain. libxl sets 1 only for a translated guest with HVM_PARAM_CALLBACK_IRQ (said
    // below, once the clock can be read again for the log line's time).
    let still_bound = rc == 0 && !pv && timer_port.is_some_and(evtchn::is_timer_virq);
    if still_bound {
        rc = 1;
    }
    // From here the toolstack may have rewritten start_info (a restore), or left it alone (cancelled).
    if let (Some(frames), true) = (frames, rc != 0) {
        pv::restore_start_info(frames);
    }
    if pv {
        let (shared_info, _, _) = pv::resumed_info();
        xen::map_shared_info_pv(shared_info)
    } else {
        // A restore does not carry the frames placed with add_to_physmap: their guest frames are holes now.
        xen::map_shared_info_hvm()
    }
    .map_err(|code| SuspendError { what: "mapping shared_info", code })?;
    xen::resume_clock(guest_now);
    if !pv {
        // Both outcomes, as Linux's `xen_hvm_post_suspend`: the callback (a restore does not carry it), and under
        // HVM the unplug (a restore starts a new device model, its emulated devices plugged).
        crate::hvm::resumed();
    }
    if still_bound {
        log::info!("the suspend answered 0 but VIRQ_TIMER is still bound: the same domain (a checkpoint)");
    }
    if pv {
        pv::memory::publish_p2m();
    }
    grant::resume_frames().map_err(|e| SuspendError { what: e.what, code: e.code })?;
    if rc != 0 {
        if rc < 0 {
            log::warn!("SCHEDOP_shutdown(suspend) answered {rc}: taken as a cancelled suspend");
        }
        return Ok(Resumed::Cancelled);
    }
    let forgotten = evtchn::forget_all();
    // Refs the old host's backends still mapped are empty in the new table: free now. The drivers grant their
    // pages again (`Grant::regrant`) when they reconnect.
    let parked = grant::poll_deferred();
    let (xenstore_port, console_port) = if pv {
        let (_, store, console) = pv::resumed_info();
        (store, console)
    } else {
        let param = |p| hypercall::hvm_get_param(p).map(|v| v as u32);
        let store = param(crate::abi::HVM_PARAM_STORE_EVTCHN)
            .map_err(|code| SuspendError { what: "HVM_PARAM_STORE_EVTCHN", code })?;
        (store, param(crate::abi::HVM_PARAM_CONSOLE_EVTCHN).unwrap_or(0))
    };
    if console_port != 0 {
        console::resume(console_port);
    }
    log::info!(
        "resumed in a new domain: {forgotten} event channels forgotten, {parked} parked grants freed, xenstore on port {xenstore_port}, console on {console_port}"
    );
    Ok(Resumed::NewDomain { xenstore_port })
}
