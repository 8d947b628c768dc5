//! [`MemoryBudget`]: the bytes every connection of a server may hold at once, shared by all of them.

use core::sync::atomic::{AtomicUsize, Ordering};

/// A limit on the memory all connections of a server hold together (their buffers and the request bodies they
/// keep). A connection charges the budget before it allocates; when the charge is refused it answers 503 instead
/// of allocating, so a burst of large uploads is turned away rather than exhausting the heap (which would crash the
/// domain). Usually a `static`, its limit set at start from the heap's size.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: AtomicUsize,
    used: AtomicUsize,
    peak: AtomicUsize,
    refused: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub const fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        }
    }

    /// Changes the limit (charges already held stay).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes ever charged at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Charges refused so far.
    pub fn refusals(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Charges `bytes` if they fit under the limit; the charge is given back when the [`Charge`] is dropped.
    pub fn try_charge(&self, bytes: usize) -> Option<Charge<'_>> {
        let limit = self.limit();
        let charged = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(bytes).filter(|&total| total <= limit)
        });
        match charged {
            Ok(before) => {
                self.peak.fetch_max(before + bytes, Ordering::Relaxed);
                Some(Charge { budget: self, bytes })
            }
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Charges `bytes` and reserves room for them in `buf` (`try_reserve_exact`): both or neither, so a heap
    /// that says no after the budget said yes gives the charge back.
    pub fn try_charge_reserved(&self, buf: &mut alloc::vec::Vec<u8>, bytes: usize) -> Option<Charge<'_>> {
        self.try_charge(bytes).filter(|_| buf.try_reserve_exact(bytes).is_ok())
    }
}

/// Bytes held against a [`MemoryBudget`]; given back on drop.
#[derive(Debug)]
#[must_use = "the charge is given back as soon as it is dropped"]
pub struct Charge<'a> {
    budget: &'a MemoryBudget,
    bytes: usize,
}

impl Charge<'_> {
    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fit_under_the_limit_and_are_given_back_on_drop() {
        let b = MemoryBudget::new(100);
        let a = b.try_charge(60).unwrap();
        assert!(b.try_charge(41).is_none());
        let c = b.try_charge(40).unwrap();
        assert_eq!((b.used(), b.peak(), b.refusals()), (100, 100, 1));
        drop(a);
        drop(c);
        assert_eq!(b.used(), 0);
        assert!(b.try_charge(usize::MAX).is_none(), "no overflow");
    }
}
