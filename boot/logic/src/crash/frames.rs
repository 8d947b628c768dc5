//! The backtrace: return addresses found by following the frame-pointer chain (the target is built with frame
//! pointers forced on, `x86_64-xen.json`). Each frame is `[rbp] = the caller's rbp`, `[rbp + 8] = the return
//! address`; the entry code sets rbp to 0, which ends the chain.
//!
//! The walk trusts nothing it reads: a frame pointer outside the stack, misaligned, or not above the previous one
//! (a cycle, or a corrupt frame) ends it, and so does a depth limit. It reads only 8-byte words inside the stack's
//! bounds, through a function the caller gives, so a corrupt chain can never make the report fault again.

use core::ops::Range;

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// The chain ended where the entry code starts it (a frame pointer or return address of 0).
    Bottom,
    /// The depth limit was reached.
    Depth,
    /// A frame pointer outside the stack.
    OutOfStack(u64),
    /// A frame pointer not 8-byte aligned.
    Misaligned(u64),
    /// A frame pointer not above the one before it: a cycle or a corrupt frame.
    NotAscending(u64),
}

impl core::fmt::Display for WalkEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            WalkEnd::Bottom => f.write_str("end of the chain"),
            WalkEnd::Depth => f.write_str("stopped at the depth limit"),
            WalkEnd::OutOfStack(p) => write!(f, "stopped: frame pointer {p:#x} is outside the stack"),
            WalkEnd::Misaligned(p) => write!(f, "stopped: frame pointer {p:#x} is misaligned"),
            WalkEnd::NotAscending(p) => write!(f, "stopped: frame pointer {p:#x} is not above the previous frame"),
        }
    }
}

/// Follows the chain from `rbp` (the faulting or panicking function's frame pointer) within `stack`, calling
/// `visit` with each return address, at most `max` of them. `read` is called only with 8-byte-aligned addresses
/// `a` such that `a..a + 8` lies inside `stack`.
pub fn walk(
    rbp: u64,
    stack: Range<u64>,
    max: usize,
    mut read: impl FnMut(u64) -> u64,
    mut visit: impl FnMut(u64),
) -> WalkEnd {
    let mut frame = rbp;
    for _ in 0..max {
        if frame == 0 {
            return WalkEnd::Bottom;
        }
        if !frame.is_multiple_of(8) {
            return WalkEnd::Misaligned(frame);
        }
        // Both words of the frame (saved rbp, return address) must be inside the stack.
        if frame < stack.start || frame.checked_add(16).is_none_or(|end| end > stack.end) {
            return WalkEnd::OutOfStack(frame);
        }
        let ret = read(frame + 8);
        if ret == 0 {
            return WalkEnd::Bottom;
        }
        visit(ret);
        let caller = read(frame);
        if caller == 0 {
            return WalkEnd::Bottom;
        }
        if caller <= frame {
            return WalkEnd::NotAscending(caller);
        }
        frame = caller;
    }
    WalkEnd::Depth
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    const STACK: Range<u64> = 0x20_0000..0x20_1000;

    /// A fabricated stack: word address -> value; reads outside it (or unaligned) fail the test.
    struct Mem {
        words: BTreeMap<u64, u64>,
        reads: RefCell<Vec<u64>>,
    }

    impl Mem {
        fn new(frames: &[(u64, u64, u64)]) -> Mem {
            let mut words = BTreeMap::new();
            for &(at, saved_rbp, ret) in frames {
                words.insert(at, saved_rbp);
                words.insert(at + 8, ret);
            }
            Mem { words, reads: RefCell::new(Vec::new()) }
        }

        fn walk(&self, rbp: u64, max: usize) -> (Vec<u64>, WalkEnd) {
            let mut seen = Vec::new();
            let end = walk(
                rbp,
                STACK,
                max,
                |a| {
                    assert!(a % 8 == 0 && a >= STACK.start && a + 8 <= STACK.end, "read outside the stack: {a:#x}");
                    self.reads.borrow_mut().push(a);
                    self.words.get(&a).copied().unwrap_or(0xbad)
                },
                |r| seen.push(r),
            );
            (seen, end)
        }
    }

    #[test]
    fn a_good_chain_is_walked_to_its_bottom() {
        let mem = Mem::new(&[
            (0x20_0100, 0x20_0200, 0x10_1111),
            (0x20_0200, 0x20_0f00, 0x10_2222),
            (0x20_0f00, 0, 0x10_3333),
        ]);
        assert_eq!(mem.walk(0x20_0100, 64), (vec![0x10_1111, 0x10_2222, 0x10_3333], WalkEnd::Bottom));
        assert_eq!(mem.walk(0, 64), (vec![], WalkEnd::Bottom), "no frame pointer at all");
    }

    #[test]
    fn a_cycle_ends_the_walk() {
        let mem = Mem::new(&[(0x20_0100, 0x20_0200, 0x10_1111), (0x20_0200, 0x20_0100, 0x10_2222)]);
        assert_eq!(mem.walk(0x20_0100, 64), (vec![0x10_1111, 0x10_2222], WalkEnd::NotAscending(0x20_0100)));
        let mem = Mem::new(&[(0x20_0100, 0x20_0100, 0x10_1111)]);
        assert_eq!(mem.walk(0x20_0100, 64), (vec![0x10_1111], WalkEnd::NotAscending(0x20_0100)), "a frame to itself");
    }

    #[test]
    fn a_pointer_out_of_the_stack_ends_the_walk_without_reading_it() {
        let mem = Mem::new(&[(0x20_0100, 0x30_0000, 0x10_1111)]);
        assert_eq!(mem.walk(0x20_0100, 64), (vec![0x10_1111], WalkEnd::OutOfStack(0x30_0000)));
        // The last frame's return address would lie past the top.
        let mem = Mem::new(&[(0x20_0100, 0x20_0ff8, 0x10_1111)]);
        assert_eq!(mem.walk(0x20_0100, 64).1, WalkEnd::OutOfStack(0x20_0ff8));
        // Below the stack (the guard page), and an address that would overflow.
        assert_eq!(Mem::new(&[]).walk(0x1f_fff0, 64), (vec![], WalkEnd::OutOfStack(0x1f_fff0)));
        assert_eq!(Mem::new(&[]).walk(u64::MAX - 7, 64), (vec![], WalkEnd::OutOfStack(u64::MAX - 7)));
        let mem = Mem::new(&[]);
        mem.walk(0x30_0000, 64);
        assert!(mem.reads.borrow().is_empty(), "nothing outside the stack is read");
    }

    #[test]
    fn a_misaligned_pointer_ends_the_walk() {
        let mem = Mem::new(&[(0x20_0100, 0x20_0203, 0x10_1111)]);
        assert_eq!(mem.walk(0x20_0100, 64), (vec![0x10_1111], WalkEnd::Misaligned(0x20_0203)));
    }

    #[test]
    fn the_depth_is_bounded() {
        let frames: Vec<(u64, u64, u64)> =
            (0..100u64).map(|i| (0x20_0000 + i * 32, 0x20_0000 + (i + 1) * 32, 0x10_0000 + i)).collect();
        let mem = Mem::new(&frames);
        let (seen, end) = mem.walk(0x20_0000, 8);
        assert_eq!((seen.len(), end), (8, WalkEnd::Depth));
    }

    #[test]
    fn a_zero_return_address_is_the_bottom() {
        let mem = Mem::new(&[(0x20_0100, 0x20_0200, 0)]);
        assert_eq!(mem.walk(0x20_0100, 64), (vec![], WalkEnd::Bottom));
    }
}
