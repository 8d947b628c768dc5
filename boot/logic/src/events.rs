//! Event-channel bookkeeping: which ports are ours, how often each has fired, and who waits on it. The platform
//! finds pending ports in shared_info's 2-level bitmaps (see [`pending_in_word`]), clears them, and calls
//! [`EventRegistry::fire`].

use alloc::collections::BTreeMap;
use core::task::{Poll, Waker};

/// Ports set in word `index` of the pending bitmap that are not masked (2-level ABI: port = index * 64 + bit).
pub fn pending_in_word(index: usize, pending: u64, mask: u64) -> impl Iterator<Item = u32> {
    let mut bits = pending & !mask;
    core::iter::from_fn(move || {
        if bits == 0 {
            return None;
        }
        let b = bits.trailing_zeros();
        bits &= bits - 1;
        Some(index as u32 * 64 + b)
    })
}

#[derive(Default)]
struct PortState {
    fired: u64,
    waker: Option<Waker>,
}

/// Our bound ports.
#[derive(Default)]
pub struct EventRegistry {
    ports: BTreeMap<u32, PortState>,
    unknown: u64,
}

impl EventRegistry {
    /// An empty registry (`const`, so it can sit in a static).
    pub const fn new() -> Self {
        EventRegistry { ports: BTreeMap::new(), unknown: 0 }
    }

    /// Starts tracking `port` (just bound).
    pub fn register(&mut self, port: u32) {
        self.ports.entry(port).or_default();
    }

    /// Stops tracking `port` (closed); wakes its waiter so it notices.
    pub fn unregister(&mut self, port: u32) {
        if let Some(PortState { waker: Some(w), .. }) = self.ports.remove(&port) {
            w.wake();
        }
    }

    /// Forgets every port without closing any (after a resume in a new domain, issue 16: Xen closed them all, and
    /// their numbers may now be the new xenstore or console ports); wakes their waiters so they notice. Returns
    /// how many there were.
    pub fn forget_all(&mut self) -> usize {
        let n = self.ports.len();
        for (_, state) in core::mem::take(&mut self.ports) {
            if let Some(w) = state.waker {
                w.wake();
            }
        }
        n
    }

    /// True if `port` is ours.
    pub fn contains(&self, port: u32) -> bool {
        self.ports.contains_key(&port)
    }

    /// Our ports, ascending.
    pub fn ports(&self) -> impl Iterator<Item = u32> + '_ {
        self.ports.keys().copied()
    }

    /// Records that `port` fired and wakes its waiter. False (and counted) if the port is not ours.
    pub fn fire(&mut self, port: u32) -> bool {
        match self.ports.get_mut(&port) {
            Some(s) => {
                s.fired += 1;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
                true
            }
            None => {
                self.unknown += 1;
                false
            }
        }
    }

    /// How many times `port` has fired (None if not ours).
    pub fn fired(&self, port: u32) -> Option<u64> {
        self.ports.get(&port).map(|s| s.fired)
    }

    /// Events seen on ports that are not ours.
    pub fn unknown(&self) -> u64 {
        self.unknown
    }

    /// Ready when `port` has fired more than `*seen` times (updating `seen`); `Ready(false)` if the port was
    /// closed; otherwise stores the waker.
    pub fn poll_event(&mut self, port: u32, seen: &mut u64, waker: &Waker) -> Poll<bool> {
        let Some(s) = self.ports.get_mut(&port) else { return Poll::Ready(false) };
        if s.fired > *seen {
            *seen = s.fired;
            return Poll::Ready(true);
        }
        s.waker = Some(waker.clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop_waker() -> core::task::Waker {
        core::task::Waker::noop().clone()
    }

    #[test]
    fn pending_bits_become_ports_minus_masked() {
        let ports: alloc::vec::Vec<u32> = pending_in_word(2, 0b1011 | 1 << 63, 0b0010).collect();
        assert_eq!(ports, [128, 131, 191]);
        assert_eq!(pending_in_word(0, 0, 0).count(), 0);
        assert_eq!(pending_in_word(5, u64::MAX, u64::MAX).count(), 0);
    }

    #[test]
    fn firing_counts_and_wakes_once_per_new_event() {
        let mut r = EventRegistry::new();
        r.register(7);
        let w = noop_waker();
        let mut seen = 0;
        assert_eq!(r.poll_event(7, &mut seen, &w), Poll::Pending);
        assert!(r.fire(7));
        assert!(r.fire(7));
        assert_eq!(r.poll_event(7, &mut seen, &w), Poll::Ready(true));
        assert_eq!(seen, 2, "two events coalesce into one wake-up");
        assert_eq!(r.poll_event(7, &mut seen, &w), Poll::Pending);
    }

    #[test]
    fn events_on_foreign_ports_are_counted_not_delivered() {
        let mut r = EventRegistry::new();
        r.register(3);
        assert!(!r.fire(4));
        assert_eq!(r.unknown(), 1);
        assert_eq!(r.fired(3), Some(0));
        assert_eq!(r.fired(4), None);
    }

    #[test]
    fn closing_a_port_releases_its_waiter() {
        let mut r = EventRegistry::new();
        r.register(9);
        let mut seen = 0;
        assert_eq!(r.poll_event(9, &mut seen, &noop_waker()), Poll::Pending);
        r.unregister(9);
        assert_eq!(r.poll_event(9, &mut seen, &noop_waker()), Poll::Ready(false));
        assert!(!r.contains(9));
        assert_eq!(r.ports().count(), 0);
    }

    #[test]
    fn a_resume_forgets_every_port_and_releases_their_waiters() {
        let mut r = EventRegistry::new();
        r.register(3);
        r.register(9);
        let mut seen = 0;
        assert_eq!(r.poll_event(9, &mut seen, &noop_waker()), Poll::Pending);
        assert_eq!(r.forget_all(), 2);
        assert_eq!(r.ports().count(), 0);
        assert_eq!(r.poll_event(9, &mut seen, &noop_waker()), Poll::Ready(false));
        // The new domain's xenstore port may reuse an old number: it is registered afresh.
        r.register(3);
        assert_eq!(r.fired(3), Some(0));
    }
}
