//! Event channels (2-level ABI): binding, sending, masking, closing, and the scan of shared_info's pending bitmap
//! that dispatches events to their owners through `sirocco_boot_logic::events::EventRegistry`.

/// xen.h: `VIRQ_TIMER`, the per-vCPU timer set by `set_timer_op`.
pub use crate::abi::VIRQ_TIMER;
use crate::abi::*;
use crate::hypercall::{self, evtchn_op};
use crate::xen;
use core::fmt;
use core::future::poll_fn;
use core::sync::atomic::{AtomicU64, Ordering};
use sirocco_boot_logic::events::{pending_in_word, EventRegistry};
use sirocco_boot_logic::trace::{self, Category, Phase};

/// The registry of our ports; locked briefly by tasks (to wait) and by the run loop (to dispatch).
pub(crate) static EVENTS: spin::Mutex<EventRegistry> = spin::Mutex::new(EventRegistry::new());

/// An event-channel hypercall that Xen refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvtchnError {
    /// Which operation.
    pub op: &'static str,
    /// Xen's error code (negative errno).
    pub errno: i64,
}

impl fmt::Display for EvtchnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event channel {} failed: error {}", self.op, self.errno)
    }
}

impl core::error::Error for EvtchnError {}

fn check(op: &'static str, rc: i64) -> Result<(), EvtchnError> {
    if rc < 0 {
        Err(EvtchnError { op, errno: rc })
    } else {
        Ok(())
    }
}

/// Bumped by every resume in a new domain (`forget_all`): a channel bound in an earlier epoch is stale.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// A bound local port, closed on drop (unless the domain has since moved: see [`EventChannel::stale`]).
#[derive(Debug)]
pub struct EventChannel {
    port: u32,
    seen: u64,
    epoch: u64,
}

impl EventChannel {
    fn adopt(port: u32) -> Self {
        EVENTS.lock().register(port);
        // A fresh port is unmasked by Xen; make sure, since a previous owner of the number may have masked it.
        unmask(port);
        EventChannel { port, seen: 0, epoch: EPOCH.load(Ordering::Relaxed) }
    }

    /// Binds a virtual IRQ (e.g. `VIRQ_TIMER`) on vCPU 0.
    pub fn bind_virq(virq: u32) -> Result<Self, EvtchnError> {
        let mut arg = evtchn_bind_virq { virq, vcpu: 0, port: 0 };
        // SAFETY: evtchn_bind_virq is the struct for EVTCHNOP_bind_virq (layout checked in abi.rs).
        check("bind_virq", unsafe { evtchn_op(EVTCHNOP_BIND_VIRQ, &mut arg) })?;
        Ok(Self::adopt(arg.port))
    }

    /// Allocates a port that domain `remote` may bind to (the usual front-end side of a split driver).
    pub fn alloc_unbound(remote: u16) -> Result<Self, EvtchnError> {
        let mut arg = evtchn_alloc_unbound { dom: DOMID_SELF as u16, remote_dom: remote, port: 0 };
        // SAFETY: evtchn_alloc_unbound is the struct for EVTCHNOP_alloc_unbound (layout checked in abi.rs).
        check("alloc_unbound", unsafe { evtchn_op(EVTCHNOP_ALLOC_UNBOUND, &mut arg) })?;
        Ok(Self::adopt(arg.port))
    }

    /// Binds to port `remote_port` that domain `remote` allocated for us.
    pub fn bind_interdomain(remote: u16, remote_port: u32) -> Result<Self, EvtchnError> {
        let mut arg = evtchn_bind_interdomain { remote_dom: remote, remote_port, local_port: 0 };
        // SAFETY: evtchn_bind_interdomain is the struct for EVTCHNOP_bind_interdomain (layout checked in abi.rs).
        check("bind_interdomain", unsafe { evtchn_op(EVTCHNOP_BIND_INTERDOMAIN, &mut arg) })?;
        Ok(Self::adopt(arg.local_port))
    }

    /// Takes over a port someone else bound (start_info's console and xenstore ports).
    pub fn existing(port: u32) -> Self {
        Self::adopt(port)
    }

    /// The local port number.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Whether the domain resumed as a new domain (`xl restore`, `xl migrate`) since this channel was bound: Xen
    /// closed it with the old domain, [`EventChannel::wait`] answers false, and the port number may already be
    /// another channel's. Dropping a stale channel closes nothing. Its owner binds a new one.
    pub fn stale(&self) -> bool {
        self.epoch != EPOCH.load(Ordering::Relaxed)
    }

    /// Notifies the other end.
    pub fn notify(&self) -> Result<(), EvtchnError> {
        check("send", hypercall::evtchn_send(self.port))
    }

    /// Waits for the next event on this port (events that arrived since the last wait count). Returns false if
    /// the port was closed meanwhile.
    pub async fn wait(&mut self) -> bool {
        let port = self.port;
        let seen = &mut self.seen;
        poll_fn(|cx| EVENTS.lock().poll_event(port, seen, cx.waker())).await
    }

    /// Events received so far.
    pub fn count(&self) -> u64 {
        EVENTS.lock().fired(self.port).unwrap_or(0)
    }

    /// Stops delivery (the pending bit is still set by Xen).
    pub fn mask(&self) {
        xen::set_mask(self.port, true);
    }

    /// Resumes delivery; Xen re-raises an event that arrived while masked.
    pub fn unmask(&self) {
        unmask(self.port);
    }
}

fn unmask(port: u32) {
    let mut arg = port;
    // SAFETY: struct evtchn_unmask is a single u32 port.
    let rc = unsafe { evtchn_op(EVTCHNOP_UNMASK, &mut arg) };
    if rc < 0 {
        log::warn!("evtchn: unmask of port {port} failed: {rc}");
    }
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        if self.stale() {
            // Xen closed it with the old domain; its number may now be another channel's.
            return;
        }
        EVENTS.lock().unregister(self.port);
        let mut arg = self.port;
        // SAFETY: struct evtchn_close is a single u32 port.
        let rc = unsafe { evtchn_op(EVTCHNOP_CLOSE, &mut arg) };
        if rc < 0 {
            log::warn!("evtchn: close of port {} failed: {rc}", self.port);
        }
    }
}

/// Finds pending, unmasked ports in shared_info, clears them, and hands them to their owners. Returns how many
/// events were dispatched.
pub fn dispatch() -> usize {
    let mut n = 0;
    xen::clear_upcall_pending();
    for word in 0..64 {
        let (pending, mask) = xen::pending_word(word);
        if pending & !mask == 0 {
            continue;
        }
        for port in pending_in_word(word, pending, mask) {
            xen::clear_pending(port);
            trace::event(Category::Evtchn, Phase::Instant, "event", u64::from(port));
            if !EVENTS.lock().fire(port) {
                log::debug!("evtchn: event on port {port}, which is not ours");
            }
            n += 1;
        }
    }
    n
}

/// After a resume in a new domain (issue 16): every port is forgotten, none closed (Xen closed them all, and their
/// numbers may now be the new xenstore or console ports). Their owners must forget their [`EventChannel`]s
/// (`core::mem::forget`) rather than drop them, and bind anew. Returns how many there were.
pub(crate) fn forget_all() -> usize {
    EPOCH.fetch_add(1, Ordering::Relaxed);
    EVENTS.lock().forget_all()
}

/// Whether `port` is bound to VIRQ_TIMER in this domain (`EVTCHNOP_status`): after a suspend that answered 0, it
/// tells a new domain (where Xen closed it) from the same one (a PVH checkpoint whose return value the toolstack
/// did not set to 1).
pub(crate) fn is_timer_virq(port: u32) -> bool {
    let mut arg = EvtchnStatus { dom: DOMID_SELF as u16, port, ..EvtchnStatus::default() };
    // SAFETY: EvtchnStatus is the struct for EVTCHNOP_status (layout checked in abi.rs).
    let rc = unsafe { evtchn_op(EVTCHNOP_STATUS, &mut arg) };
    rc == 0 && arg.status == EVTCHNSTAT_VIRQ && arg.u[0] == VIRQ_TIMER
}

/// The ports to wake up for.
pub fn ports(buf: &mut [u32]) -> usize {
    let ev = EVENTS.lock();
    let mut n = 0;
    for (slot, p) in buf.iter_mut().zip(ev.ports()) {
        *slot = p;
        n += 1;
    }
    n
}
