//! Where the guest's time goes: counters the run loop and the network task keep, cheap enough to stay on
//! (a Xen system-time read per phase, which is a TSC read). `make bench` reads them before and after each job
//! (httpd's `/stats`, echo's port 11) to say what share of the vCPU went to the stack, the apps and waiting.
//!
//! An instrumenting profile, not a sampling one: the run loop polls with upcalls masked, so there is no timer
//! interrupt to sample from, and the phases worth naming are few.

use core::sync::atomic::{AtomicU64, Ordering};

static IDLE_NS: AtomicU64 = AtomicU64::new(0);
static WAKEUPS: AtomicU64 = AtomicU64::new(0);
static NET_POLL_NS: AtomicU64 = AtomicU64::new(0);
static NET_POLLS: AtomicU64 = AtomicU64::new(0);
static KICKS: AtomicU64 = AtomicU64::new(0);

/// Counts `ns` spent blocked in the hypervisor (one wake-up).
pub fn add_idle(ns: u64) {
    IDLE_NS.fetch_add(ns, Ordering::Relaxed);
    WAKEUPS.fetch_add(1, Ordering::Relaxed);
}

/// Counts `ns` spent in one network poll.
pub fn add_net_poll(ns: u64) {
    NET_POLL_NS.fetch_add(ns, Ordering::Relaxed);
    NET_POLLS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add_kick() {
    KICKS.fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of the counters since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Profile {
    /// Time since Sirocco started (Xen system time).
    pub uptime_ns: u64,
    /// Time blocked in `SCHEDOP_poll`, waiting for an event or a timer: the vCPU was given back to Xen.
    pub idle_ns: u64,
    /// Times the run loop blocked and was woken.
    pub wakeups: u64,
    /// Time inside the network stacks' polls (netfront RX/TX handling, smoltcp, socket wakes).
    pub net_poll_ns: u64,
    /// Number of those polls.
    pub net_polls: u64,
    /// Event-channel notifications we sent to backends (netfront kicks, and the like).
    pub kicks: u64,
}

impl Profile {
    /// The counters now.
    pub fn now() -> Profile {
        Profile {
            uptime_ns: crate::uptime().as_nanos() as u64,
            idle_ns: IDLE_NS.load(Ordering::Relaxed),
            wakeups: WAKEUPS.load(Ordering::Relaxed),
            net_poll_ns: NET_POLL_NS.load(Ordering::Relaxed),
            net_polls: NET_POLLS.load(Ordering::Relaxed),
            kicks: KICKS.load(Ordering::Relaxed),
        }
    }

    /// Time the vCPU ran (neither idle nor in the stack's polls: apps, the executor, event dispatch).
    pub fn other_ns(&self) -> u64 {
        self.uptime_ns.saturating_sub(self.idle_ns).saturating_sub(self.net_poll_ns)
    }
}
