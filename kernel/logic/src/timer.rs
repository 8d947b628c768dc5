//! Timer deadlines (absolute Xen system time, ns) and the wakers waiting on them. The platform programs the
//! earliest deadline with `set_timer_op` and calls [`TimerQueue::expire`] when VIRQ_TIMER fires.

use alloc::collections::{BTreeMap, BinaryHeap};
use core::cmp::Reverse;
use core::task::Waker;

/// Identifies a registered timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerId(u64);

/// Pending timers.
#[derive(Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    wakers: BTreeMap<u64, Waker>,
    next: u64,
}

impl TimerQueue {
    /// An empty queue (`const`, so it can sit in a static).
    pub const fn new() -> Self {
        TimerQueue { heap: BinaryHeap::new(), wakers: BTreeMap::new(), next: 0 }
    }

    /// Wakes `waker` at `deadline_ns`.
    pub fn insert(&mut self, deadline_ns: u64, waker: Waker) -> TimerId {
        self.next += 1;
        self.heap.push(Reverse((deadline_ns, self.next)));
        self.wakers.insert(self.next, waker);
        TimerId(self.next)
    }

    /// Replaces the waker of a pending timer (a future polled from another task); false if it already fired.
    pub fn update(&mut self, id: TimerId, waker: &Waker) -> bool {
        match self.wakers.get_mut(&id.0) {
            Some(w) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    /// Forgets a timer (a dropped sleep).
    pub fn cancel(&mut self, id: TimerId) {
        self.wakers.remove(&id.0);
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(Reverse((deadline, id))) = self.heap.peek().copied() {
            if self.wakers.contains_key(&id) {
                return Some(deadline);
            }
            self.heap.pop(); // cancelled
        }
        None
    }

    /// Wakes every timer due at `now_ns`; returns how many fired.
    pub fn expire(&mut self, now_ns: u64) -> usize {
        let mut fired = 0;
        while let Some(Reverse((deadline, id))) = self.heap.peek().copied() {
            if deadline > now_ns {
                break;
            }
            self.heap.pop();
            if let Some(w) = self.wakers.remove(&id) {
                w.wake();
                fired += 1;
            }
        }
        fired
    }

    /// Live timers.
    pub fn len(&self) -> usize {
        self.wakers.len()
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.wakers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let mut q = TimerQueue::new();
        let (a, wa) = counter();
        let (b, wb) = counter();
        q.insert(300, wa);
        q.insert(100, wb);
        assert_eq!(q.next_deadline(), Some(100));
        assert_eq!(q.expire(99), 0);
        assert_eq!(q.expire(100), 1);
        assert_eq!((a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)), (0, 1));
        assert_eq!(q.next_deadline(), Some(300));
        assert_eq!(q.expire(1_000), 1);
        assert_eq!(q.next_deadline(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn cancelled_timers_never_fire_nor_count_as_deadlines() {
        let mut q = TimerQueue::new();
        let (a, wa) = counter();
        let (_, wb) = counter();
        let id = q.insert(50, wa);
        q.insert(80, wb);
        q.cancel(id);
        assert_eq!(q.next_deadline(), Some(80));
        assert_eq!(q.expire(60), 0);
        assert_eq!(a.0.load(Ordering::SeqCst), 0);
        assert!(!q.update(id, &counter().1));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn same_deadline_all_fire() {
        let mut q = TimerQueue::new();
        let (a, w) = counter();
        for _ in 0..5 {
            q.insert(10, w.clone());
        }
        assert_eq!(q.expire(10), 5);
        assert_eq!(a.0.load(Ordering::SeqCst), 5);
    }
}
