//! The other side for tests and fuzz targets (feature `fake`): an in-memory disk with a volatile write cache
//! that can crash, fail and rot, a tiny executor for it, and [`reseal`], which makes hand-edited disk images
//! pass their checksums.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use crate::disk::{Disk, DiskError, DiskErrorKind, DiskOp};
use crate::record::{self, HEADER_LEN};
use crate::store::Store;
use crate::superblock::{self, SLOTS, SUPERBLOCK_LEN};

/// Runs a future that never waits: every [`MemDisk`] operation completes at once.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a store future waited, but the fake disk never makes it wait"),
    }
}

/// Everything the store holds, read through its interface: every listed key must read back, at the length the
/// index has for it.
pub fn contents<D: Disk>(store: &Store<D>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let keys: Vec<Vec<u8>> = store.keys().map(<[u8]>::to_vec).collect();
    keys.into_iter()
        .map(|key| {
            let value = block_on(store.get(&key)).unwrap_or_else(|e| panic!("get {key:?}: {e}")).expect("listed key");
            assert_eq!(Some(value.len() as u32), store.value_len(&key), "the length of {key:?}'s value");
            (key, value)
        })
        .collect()
}

/// Where a crash's choices come from: a seeded PRNG in the tests, the fuzzer's input in a fuzz target.
pub trait Choices {
    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64;
    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Which unflushed sector writes survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// None of them.
    LoseAll,
    /// All of them.
    KeepAll,
    /// The first n, in the order written (n chosen at random).
    Prefix,
    /// Any subset.
    Subset,
    /// Any subset, and each surviving sector possibly only partly written (a sector that tears).
    TearSectors,
}

/// Every kind of [`Crash`].
pub const CRASHES: [Crash; 5] = [Crash::LoseAll, Crash::KeepAll, Crash::Prefix, Crash::Subset, Crash::TearSectors];

/// A disk in memory with a write cache: writes are visible at once but durable only after a flush, and a
/// [`MemDisk::crash`] keeps any chosen part of what was not flushed.
pub struct MemDisk {
    sector: u32,
    /// What survives a crash with nothing of the cache.
    durable: RefCell<Vec<u8>>,
    /// What reads see.
    current: RefCell<Vec<u8>>,
    /// Sector writes since the last flush, in order: (offset, bytes).
    pending: RefCell<Vec<(u64, Vec<u8>)>>,
    /// Writes and flushes left before the disk dies (then every operation fails); `None`: never.
    life: Cell<Option<u64>>,
    /// Fail the next operation of this kind once, changing nothing.
    fail_next: Cell<Option<DiskOp>>,
    /// Reads so far.
    pub reads: Cell<u64>,
    /// Bytes read so far.
    pub read_bytes: Cell<u64>,
    /// Writes so far.
    pub writes: Cell<u64>,
    /// Flushes so far.
    pub flushes: Cell<u64>,
}

impl MemDisk {
    /// A zeroed disk.
    pub fn new(sector: u32, capacity: u64) -> MemDisk {
        MemDisk::from_image(sector, vec![0; capacity as usize])
    }

    /// A disk holding `image`, all of it durable.
    pub fn from_image(sector: u32, image: Vec<u8>) -> MemDisk {
        MemDisk {
            sector,
            durable: RefCell::new(image.clone()),
            current: RefCell::new(image),
            pending: RefCell::new(Vec::new()),
            life: Cell::new(None),
            fail_next: Cell::new(None),
            reads: Cell::new(0),
            read_bytes: Cell::new(0),
            writes: Cell::new(0),
            flushes: Cell::new(0),
        }
    }

    /// After `ops` more writes and flushes, every operation fails (`Disconnected`); the write that dies is still
    /// in the cache, as if it had been sent.
    pub fn die_after(&self, ops: u64) {
        self.life.set(Some(ops));
    }

    /// The next operation of kind `op` fails with an I/O error and changes nothing.
    pub fn fail_next(&self, op: DiskOp) {
        self.fail_next.set(Some(op));
    }

    /// Writes and flushes so far.
    pub fn mutations(&self) -> u64 {
        self.writes.get() + self.flushes.get()
    }

    /// Unflushed sector writes.
    pub fn unflushed(&self) -> usize {
        self.pending.borrow().len()
    }

    /// The disk after a power cut now: the durable image plus the unflushed writes `how` keeps.
    pub fn crash(&self, choices: &mut impl Choices, how: Crash) -> MemDisk {
        let mut image = self.durable.borrow().clone();
        let pending = self.pending.borrow();
        let keep_prefix = choices.below(pending.len() as u64 + 1) as usize;
        for (i, (offset, bytes)) in pending.iter().enumerate() {
            let keep = match how {
                Crash::LoseAll => false,
                Crash::KeepAll => true,
                Crash::Prefix => i < keep_prefix,
                Crash::Subset | Crash::TearSectors => choices.chance(50),
            };
            if !keep {
                continue;
            }
            let full = bytes.len() as u64;
            // Torn sectors keep a prefix, often a short one: records are packed at the start of a batch's sectors.
            let len = match (how, choices.below(4)) {
                (Crash::TearSectors, 0) => choices.below(64),
                (Crash::TearSectors, 1) => choices.below(full.min(1024)),
                (Crash::TearSectors, 2) => choices.below(full),
                _ => full,
            };
            let at = *offset as usize;
            image[at..at + len as usize].copy_from_slice(&bytes[..len as usize]);
        }
        MemDisk::from_image(self.sector, image)
    }

    /// The disk as it is now, everything flushed (a clean shutdown).
    pub fn clone_flushed(&self) -> MemDisk {
        MemDisk::from_image(self.sector, self.current.borrow().clone())
    }

    /// Flips bits of the byte at `offset`, durably (bit rot).
    pub fn corrupt(&self, offset: u64, xor: u8) {
        self.durable.borrow_mut()[offset as usize] ^= xor;
        self.current.borrow_mut()[offset as usize] ^= xor;
    }

    /// Reads bytes at any offset, bypassing the disk interface.
    pub fn peek(&self, offset: u64, len: usize) -> Vec<u8> {
        self.current.borrow()[offset as usize..offset as usize + len].to_vec()
    }

    /// The whole disk as reads see it.
    pub fn image(&self) -> Vec<u8> {
        self.current.borrow().clone()
    }

    fn check(&self, op: DiskOp, offset: u64, len: usize) -> Result<(), DiskError> {
        let error = |kind| Err(DiskError { op, offset, kind });
        if self.fail_next.get() == Some(op) {
            self.fail_next.set(None);
            return error(DiskErrorKind::Io);
        }
        if self.life.get() == Some(0) {
            return error(DiskErrorKind::Disconnected);
        }
        let sector = u64::from(self.sector);
        if !offset.is_multiple_of(sector) || !(len as u64).is_multiple_of(sector) {
            return error(DiskErrorKind::Misaligned);
        }
        if offset.checked_add(len as u64).is_none_or(|end| end > self.capacity()) {
            return error(DiskErrorKind::OutOfRange);
        }
        Ok(())
    }

    /// Counts down the disk's life; returns whether this operation is the one it dies on.
    fn age(&self) -> bool {
        match self.life.get() {
            Some(n) => {
                self.life.set(Some(n - 1));
                n == 1
            }
            None => false,
        }
    }
}

impl Disk for MemDisk {
    fn sector_size(&self) -> u32 {
        self.sector
    }

    fn capacity(&self) -> u64 {
        self.current.borrow().len() as u64
    }

    async fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check(DiskOp::Read, offset, buf.len())?;
        self.reads.set(self.reads.get() + 1);
        self.read_bytes.set(self.read_bytes.get() + buf.len() as u64);
        buf.copy_from_slice(&self.current.borrow()[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }

    async fn write(&self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.check(DiskOp::Write, offset, buf.len())?;
        self.writes.set(self.writes.get() + 1);
        self.current.borrow_mut()[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        let mut pending = self.pending.borrow_mut();
        for (i, chunk) in buf.chunks(self.sector as usize).enumerate() {
            pending.push((offset + (i * self.sector as usize) as u64, chunk.to_vec()));
        }
        if self.age() {
            return Err(DiskError { op: DiskOp::Write, offset, kind: DiskErrorKind::Disconnected });
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), DiskError> {
        self.check(DiskOp::Flush, 0, 0)?;
        if self.age() {
            return Err(DiskError { op: DiskOp::Flush, offset: 0, kind: DiskErrorKind::Disconnected });
        }
        self.flushes.set(self.flushes.get() + 1);
        self.durable.borrow_mut().copy_from_slice(&self.current.borrow());
        self.pending.borrow_mut().clear();
        Ok(())
    }
}

/// Recomputes the checksums of everything in `image` that carries a magic: the superblock copies in their slots,
/// and every record header (and, where the record it describes lies within the image unwrapped, its record
/// checksum) anywhere past them. So a fuzzer, or a test, can change any field of a store's disk image and have
/// the store judge the value itself rather than stop at a checksum. Records are resealed from the last to the
/// first, so that a record holding another one in its value is sealed over the inner one's new checksums.
pub fn reseal(image: &mut [u8], sector: usize) {
    let slots = (SLOTS as usize * sector).min(image.len());
    for slot in image[..slots].chunks_exact_mut(sector) {
        superblock::reseal(&mut slot[..SUPERBLOCK_LEN]);
    }
    let magics: Vec<usize> =
        (slots..image.len().saturating_sub(HEADER_LEN - 1)).filter(|&at| record::has_magic(&image[at..])).collect();
    for at in magics.into_iter().rev() {
        record::reseal(&mut image[at..]);
    }
}
