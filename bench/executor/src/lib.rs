//! The workload both executors run, written once so the comparison is fair: a single-slot signal, a yield, and
//! the task bodies (a token passed around a ring, a task woken from outside, a trivial task for spawn cost).
//! Nothing here knows which executor polls it; only `core::task::Waker` connects the two.
#![no_std]

extern crate alloc;

pub mod sirocco_executor;

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use core::task::{Context, Poll, Waker};

/// A single-slot, level-triggered signal: `signal` sets a flag and wakes the one registered waiter; `wait`
/// completes once the flag is set and clears it. `Sync`, so tasks holding `&'static Signal` are `Send`.
pub struct Signal {
    set: AtomicBool,
    waker: spin::Mutex<Option<Waker>>,
}

impl Signal {
    /// An unset signal with no waiter.
    pub const fn new() -> Self {
        Signal { set: AtomicBool::new(false), waker: spin::Mutex::new(None) }
    }

    /// Sets the flag and wakes the waiter, if any (one wake per call).
    pub fn signal(&self) {
        self.set.store(true, Release);
        let w = self.waker.lock().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Completes when the flag is (or becomes) set.
    pub fn wait(&self) -> Wait<'_> {
        Wait(self)
    }
}

impl Default for Signal {
    fn default() -> Self {
        Self::new()
    }
}

/// The future of [`Signal::wait`].
pub struct Wait<'a>(&'a Signal);

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let s = self.0;
        if s.set.swap(false, Acquire) {
            return Poll::Ready(());
        }
        {
            let mut slot = s.waker.lock();
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // A signal between the first check and the registration found no waker: look again.
        if s.set.swap(false, Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Returns `Pending` once after waking its own task, so the task goes to the back of the ready queue.
pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// The future of [`yield_now`].
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Hops made so far and the number to stop at (single-threaded use: plain load/store, no read-modify-write).
pub static HOPS: AtomicU64 = AtomicU64::new(0);
/// Hop count at which the ring stops.
pub static LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);
/// Tasks that have returned.
pub static DONE: AtomicU64 = AtomicU64::new(0);

fn bump(c: &AtomicU64) -> u64 {
    let v = c.load(Relaxed);
    c.store(v + 1, Relaxed);
    v
}

/// Resets the counters before a run.
pub fn reset(limit: u64) {
    HOPS.store(0, Relaxed);
    DONE.store(0, Relaxed);
    LIMIT.store(limit, Relaxed);
    STOP.store(false, Relaxed);
}

/// One member of the ring: waits for its signal, then passes the token to `next` (one wake + one poll per hop).
/// When the limit is reached each member passes the token on once more and returns, so all of them finish.
pub async fn ring_node(me: &'static Signal, next: &'static Signal, yield_each_hop: bool) {
    loop {
        me.wait().await;
        if yield_each_hop {
            yield_now().await;
        }
        let h = bump(&HOPS);
        next.signal();
        if h >= LIMIT.load(Relaxed) {
            break;
        }
    }
    bump(&DONE);
}

/// A task woken from outside the executor (as by an event-channel upcall or a timer): counts its wakes and
/// returns after `LIMIT` of them.
pub async fn external_waiter(me: &'static Signal) {
    loop {
        me.wait().await;
        if bump(&HOPS) + 1 >= LIMIT.load(Relaxed) {
            break;
        }
    }
    bump(&DONE);
}

/// Set to make [`fan_member`] tasks return on their next wake.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// One of many tasks woken together by one outside event (a burst: all of them ready at once).
pub async fn fan_member(me: &'static Signal) {
    loop {
        me.wait().await;
        if STOP.load(Relaxed) {
            break;
        }
        bump(&HOPS);
    }
    bump(&DONE);
}

/// A task that is never woken until `stop` is signalled: makes the executor hold many idle tasks.
pub async fn parked(stop: &'static Signal) {
    stop.wait().await;
    bump(&DONE);
}

/// A task that finishes on its first poll (measures spawn + first poll + completion).
pub async fn trivial() {
    bump(&DONE);
}
