//! Suspend and resume (issue 16): `xl save`, `xl save -c`, `xl restore` and `xl migrate` of a PV or PVH guest.
//!
//! The toolstack writes `suspend` to `control/shutdown` (PV, PVH or HVM). The request is acknowledged and the run
//! loop suspends the domain between two rounds, with no task running and no xenstore request in flight
//! (`sirocco_boot::suspend`).
//!
//! The app sees a pause: its timers and `Instant`s go on from where they stopped (the time suspended is not
//! counted), the wall clock follows the new host. After a restore the runtime binds its timer again, follows
//! xenstore to its new event channel and re-registers every watch (each fires once), and advertises its features
//! again. Each device task then finds its event channel stale and moves to the new domain's backend: netfront on
//! new rings with its buffers granted again, what was in flight dropped for TCP to retransmit, and its addresses
//! announced on the new link; blkfront on a new ring, every request the old backend had not answered sent again.
//! An app that cares awaits [`resumed`].

use crate::{runtime, xenstore};
use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use core::task::{Poll, Waker};
use sirocco_boot::suspend::{self as platform, Resumed as PlatformResumed};

/// How the domain came back from a suspend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// Restored or migrated: a new domain (new domain id, maybe another host).
    NewDomain,
    /// A checkpoint (`xl save -c`) or a suspend the toolstack cancelled: the same domain.
    Cancelled,
}

/// A suspend was acknowledged and waits for the run loop.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Resumes so far, and how the last one came back (0 new domain, 1 cancelled).
static RESUMES: AtomicU64 = AtomicU64::new(0);
static LAST: AtomicU8 = AtomicU8::new(0);
static WAITERS: spin::Mutex<Vec<Waker>> = spin::Mutex::new(Vec::new());

/// The toolstack's request, acknowledged: the run loop suspends at its next round.
pub(crate) fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Called by the run loop between rounds: suspends if asked to and nothing is in flight. Returns whether it
/// suspended (the loop then polls everything again).
pub(crate) fn run_if_requested() -> bool {
    if !REQUESTED.load(Ordering::SeqCst) {
        return false;
    }
    if xenstore::with(|c| c.in_flight()) > 0 {
        // A task's request is out: suspend once its reply is in (the toolstack allows a minute).
        return false;
    }
    REQUESTED.store(false, Ordering::SeqCst);
    let resumed = match platform::suspend(runtime::timer_port()) {
        Ok(PlatformResumed::Cancelled) => {
            log::info!("suspend cancelled or a checkpoint taken: the same domain goes on");
            Resumed::Cancelled
        }
        Ok(PlatformResumed::NewDomain { xenstore_port }) => {
            runtime::rebind_timer();
            xenstore::resumed(xenstore_port);
            crate::logs::resumed();
            Resumed::NewDomain
        }
        Err(e) => {
            log::error!("{e}; the domain goes on where it was");
            return true;
        }
    };
    // Either way there are now two copies of this domain's state (the one going on and the saved image): they
    // must not draw the same random numbers.
    crate::rand::reseed();
    LAST.store(matches!(resumed, Resumed::Cancelled) as u8, Ordering::SeqCst);
    RESUMES.fetch_add(1, Ordering::SeqCst);
    for w in core::mem::take(&mut *WAITERS.lock()) {
        w.wake();
    }
    true
}

/// How many times the domain has resumed since it booted.
pub fn count() -> u64 {
    RESUMES.load(Ordering::SeqCst)
}

/// Completes at the next resume, with how the domain came back.
pub fn resumed() -> impl core::future::Future<Output = Resumed> {
    let start = count();
    poll_fn(move |cx| {
        if count() > start {
            return Poll::Ready(if LAST.load(Ordering::SeqCst) == 1 { Resumed::Cancelled } else { Resumed::NewDomain });
        }
        // Resumes happen in the run loop, between task polls: none can slip in between the check and this.
        WAITERS.lock().push(cx.waker().clone());
        Poll::Pending
    })
}
