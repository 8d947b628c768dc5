//! The PV console ring (`io/console.h`, `struct xencons_interface`), output side. xenconsoled in dom0 consumes
//! it; `xl console` and the console log show what we write.

use core::fmt;
use core::mem::{offset_of, size_of};

/// The console page (`struct xencons_interface`, `xen/io/console.h`), for the platform to address its fields by
/// name. xenconsoled may write any of it at any time: access the indices only atomically and the buffers only
/// volatile, never through a reference.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct XenconsInterface {
    /// `char in[1024]`: input from xenconsoled.
    pub input: [u8; 1024],
    /// `char out[2048]`: our output.
    pub out: [u8; 2048],
    /// `XENCONS_RING_IDX in_cons`.
    pub in_cons: u32,
    /// `in_prod`.
    pub in_prod: u32,
    /// `out_cons` (advanced by xenconsoled).
    pub out_cons: u32,
    /// `out_prod` (advanced by us).
    pub out_prod: u32,
}

// sizeof(struct xencons_interface) = 3088 and the offsets of xen/io/console.h (x86_64).
const _: () = {
    assert!(size_of::<XenconsInterface>() == 3088);
    assert!(offset_of!(XenconsInterface, input) == 0);
    assert!(offset_of!(XenconsInterface, out) == 1024);
    assert!(offset_of!(XenconsInterface, in_cons) == 3072);
    assert!(offset_of!(XenconsInterface, in_prod) == 3076);
    assert!(offset_of!(XenconsInterface, out_cons) == 3080);
    assert!(offset_of!(XenconsInterface, out_prod) == 3084);
};

/// Byte offsets in the console page, from [`XenconsInterface`].
pub mod offsets {
    use super::XenconsInterface;
    use core::mem::offset_of;

    /// `char in[1024]`.
    pub const IN: usize = offset_of!(XenconsInterface, input);
    /// Size of `in`.
    pub const IN_SIZE: usize = 1024;
    /// `char out[2048]`.
    pub const OUT: usize = offset_of!(XenconsInterface, out);
    /// Size of `out`.
    pub const OUT_SIZE: usize = 2048;
    /// `XENCONS_RING_IDX in_cons`.
    pub const IN_CONS: usize = offset_of!(XenconsInterface, in_cons);
    /// `in_prod`.
    pub const IN_PROD: usize = offset_of!(XenconsInterface, in_prod);
    /// `out_cons` (advanced by xenconsoled).
    pub const OUT_CONS: usize = offset_of!(XenconsInterface, out_cons);
    /// `out_prod` (advanced by us).
    pub const OUT_PROD: usize = offset_of!(XenconsInterface, out_prod);
}

/// Access to the shared console page, which xenconsoled may write at any time. The platform implements it with
/// atomics for the indices (orderings as named) and volatile stores for the bytes, never a reference to the page.
pub trait ConsoleRing {
    /// `out_cons`, loaded atomically with acquire ordering (the backend's progress: it has read the bytes before
    /// it).
    fn load_out_cons_acquire(&self) -> u32;
    /// `out_prod`, loaded atomically. Only we should write it, but the page is the backend's too: the driver reads
    /// it once per decision and checks it against `out_cons`.
    fn load_out_prod(&self) -> u32;
    /// Stores `byte` at `out[index]` (`index < OUT_SIZE`), volatile.
    fn write_out(&mut self, index: usize, byte: u8);
    /// Stores `out_prod` atomically with release ordering: the bytes written before are visible first.
    fn store_out_prod_release(&mut self, prod: u32);
}

/// The backend broke the ring's invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingCorrupt {
    /// Our producer index.
    pub prod: u32,
    /// The consumer index the backend left.
    pub cons: u32,
}

impl fmt::Display for RingCorrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "console ring corrupt: out_prod {} out_cons {} (more than {} apart)",
            self.prod,
            self.cons,
            offsets::OUT_SIZE
        )
    }
}

/// Free bytes in the output ring.
pub fn free_space(ring: &impl ConsoleRing) -> Result<usize, RingCorrupt> {
    snapshot(ring).map(|(_, free)| free)
}

/// One read of each index (the page is writable by the peer: a second read may differ from the first), checked:
/// `(out_prod, free bytes)`.
fn snapshot(ring: &impl ConsoleRing) -> Result<(u32, usize), RingCorrupt> {
    let (prod, cons) = (ring.load_out_prod(), ring.load_out_cons_acquire());
    let used = prod.wrapping_sub(cons) as usize;
    if used > offsets::OUT_SIZE {
        return Err(RingCorrupt { prod, cons });
    }
    Ok((prod, offsets::OUT_SIZE - used))
}

/// True when the backend has consumed everything we wrote.
pub fn drained(ring: &impl ConsoleRing) -> bool {
    matches!(snapshot(ring), Ok((_, offsets::OUT_SIZE)))
}

/// Writes as much of `bytes` as fits, turning each `\n` into `\r\n` (a terminal on `xl console` needs both), and
/// publishes it. A `\n` is written only when both its bytes fit. Returns how many input bytes were consumed: the
/// caller notifies the backend and retries the rest once it has made room.
pub fn write(ring: &mut impl ConsoleRing, bytes: &[u8]) -> Result<usize, RingCorrupt> {
    // One snapshot: the free space and where the bytes go come from the same read of `out_prod` (issue 10.8).
    let (mut prod, mut free) = snapshot(ring)?;
    let mut consumed = 0;
    for &b in bytes {
        let need = if b == b'\n' { 2 } else { 1 };
        if free < need {
            break;
        }
        if b == b'\n' {
            ring.write_out(prod as usize % offsets::OUT_SIZE, b'\r');
            prod = prod.wrapping_add(1);
        }
        ring.write_out(prod as usize % offsets::OUT_SIZE, b);
        prod = prod.wrapping_add(1);
        free -= need;
        consumed += 1;
    }
    if consumed > 0 {
        ring.store_out_prod_release(prod);
    }
    Ok(consumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A console page on the heap, with the backend's consumer under the test's control.
    struct FakePage {
        page: Vec<u8>,
        published: Vec<u32>,
    }

    impl FakePage {
        fn new(start: u32) -> Self {
            let mut p = FakePage { page: vec![0; 4096], published: vec![] };
            p.set(offsets::OUT_PROD, start);
            p.set(offsets::OUT_CONS, start);
            p
        }
        fn get(&self, at: usize) -> u32 {
            u32::from_le_bytes(self.page[at..at + 4].try_into().unwrap())
        }
        fn set(&mut self, at: usize, v: u32) {
            self.page[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        /// xenconsoled: consume everything published.
        fn consume(&mut self) -> Vec<u8> {
            let (mut cons, prod) = (self.get(offsets::OUT_CONS), self.get(offsets::OUT_PROD));
            let mut out = vec![];
            while cons != prod {
                out.push(self.page[offsets::OUT + cons as usize % offsets::OUT_SIZE]);
                cons = cons.wrapping_add(1);
            }
            self.set(offsets::OUT_CONS, cons);
            out
        }
    }

    impl ConsoleRing for FakePage {
        fn load_out_cons_acquire(&self) -> u32 {
            self.get(offsets::OUT_CONS)
        }
        fn load_out_prod(&self) -> u32 {
            self.get(offsets::OUT_PROD)
        }
        fn write_out(&mut self, index: usize, byte: u8) {
            assert!(index < offsets::OUT_SIZE);
            self.page[offsets::OUT + index] = byte;
        }
        fn store_out_prod_release(&mut self, prod: u32) {
            self.published.push(prod);
            self.set(offsets::OUT_PROD, prod);
        }
    }

    #[test]
    fn layout_matches_the_header() {
        // sizeof(struct xencons_interface) = 3088, offsets from xen/io/console.h (x86_64).
        assert_eq!(offsets::IN + offsets::IN_SIZE, offsets::OUT);
        assert_eq!(offsets::OUT + offsets::OUT_SIZE, offsets::IN_CONS);
        assert_eq!((offsets::IN_PROD, offsets::OUT_CONS, offsets::OUT_PROD), (3076, 3080, 3084));
        assert_eq!(offsets::OUT_PROD + 4, 3088);
    }

    #[test]
    fn writes_with_crlf_and_publishes_once() {
        let mut p = FakePage::new(0);
        assert_eq!(write(&mut p, b"hi\nthere\n").unwrap(), 9);
        assert_eq!(p.published, vec![11]);
        assert_eq!(p.consume(), b"hi\r\nthere\r\n");
        assert!(drained(&p));
    }

    #[test]
    fn fills_the_ring_then_continues_after_the_backend_consumes() {
        let mut p = FakePage::new(0);
        let data: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let first = write(&mut p, &data).unwrap();
        assert_eq!(first, offsets::OUT_SIZE);
        assert_eq!(write(&mut p, &data[first..]).unwrap(), 0, "full ring takes nothing");
        let mut seen = p.consume();
        let mut at = first;
        while at < data.len() {
            at += write(&mut p, &data[at..]).unwrap();
            seen.extend(p.consume());
        }
        assert_eq!(seen, data);
    }

    #[test]
    fn indices_wrap_around_u32() {
        let mut p = FakePage::new(u32::MAX - 3);
        assert_eq!(write(&mut p, b"abcdefgh").unwrap(), 8);
        assert_eq!(p.load_out_prod(), 4);
        assert_eq!(p.consume(), b"abcdefgh");
    }

    #[test]
    fn newline_is_not_split_across_a_full_ring() {
        let mut p = FakePage::new(0);
        let fill = vec![b'x'; offsets::OUT_SIZE - 1];
        assert_eq!(write(&mut p, &fill).unwrap(), fill.len());
        assert_eq!(write(&mut p, b"\n").unwrap(), 0);
        p.consume();
        assert_eq!(write(&mut p, b"\n").unwrap(), 1);
        assert_eq!(p.consume(), b"\r\n");
    }

    /// A peer that rewrites `out_prod` under us (it is on a page the backend can write): each read of `out_prod`
    /// returns the next scripted value; writes go to a heap page.
    struct ScriptedPeer {
        page: FakePage,
        out_prod_reads: Vec<u32>,
        reads: std::cell::Cell<usize>,
    }

    impl ConsoleRing for ScriptedPeer {
        fn load_out_cons_acquire(&self) -> u32 {
            self.page.load_out_cons_acquire()
        }
        fn load_out_prod(&self) -> u32 {
            let i = self.reads.get();
            self.reads.set(i + 1);
            self.out_prod_reads[i.min(self.out_prod_reads.len() - 1)]
        }
        fn write_out(&mut self, index: usize, byte: u8) {
            self.page.write_out(index, byte);
        }
        fn store_out_prod_release(&mut self, prod: u32) {
            self.page.store_out_prod_release(prod);
        }
    }

    #[test]
    fn out_prod_is_read_once_per_write() {
        // Issue 10.8: free space was computed from one read of out_prod and the bytes placed from another. A peer
        // that moves out_prod between the two reads made us publish an index more than a ring ahead of out_cons.
        let mut p = ScriptedPeer { page: FakePage::new(0), out_prod_reads: vec![0, 2000], reads: 0.into() };
        let n = write(&mut p, &[b'x'; 2048]).unwrap();
        let published = *p.page.published.last().unwrap();
        let cons = p.page.load_out_cons_acquire();
        assert!(
            published.wrapping_sub(cons) as usize <= offsets::OUT_SIZE,
            "published out_prod {published} with out_cons {cons}: {n} bytes written over unread ones"
        );
        assert_eq!(p.reads.get(), 1, "out_prod read {} times in one write", p.reads.get());
        assert_eq!((n, published), (2048, 2048), "the whole ring, from the one out_prod read");
    }

    #[test]
    fn a_backend_running_ahead_is_reported() {
        let mut p = FakePage::new(100);
        p.set(offsets::OUT_CONS, 101);
        assert_eq!(write(&mut p, b"x"), Err(RingCorrupt { prod: 100, cons: 101 }));
        p.set(offsets::OUT_CONS, 100u32.wrapping_sub(offsets::OUT_SIZE as u32 + 1));
        assert!(free_space(&p).is_err());
        p.set(offsets::OUT_CONS, 100u32.wrapping_sub(offsets::OUT_SIZE as u32));
        assert_eq!(free_space(&p), Ok(0));
    }
}
