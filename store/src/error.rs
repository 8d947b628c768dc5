//! The store's one error type, and the descriptions of damage found on the disk.

use core::fmt;

use crate::disk::DiskError;
use crate::record::MAX_KEY_LEN;

/// What is wrong with the bytes at one place in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Disk byte offset of the damaged record (or of where one was expected).
    pub at: u64,
    /// What was found there.
    pub kind: DamageKind,
}

/// The kinds of [`Damage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// A record header whose checksum fails (torn or corrupted), or that claims what no record written here
    /// can be (a length beyond the log's end).
    BadHeader,
    /// The header is intact but the record's checksum over key and value fails: the rest of the record was torn
    /// (never fully written) or has been corrupted since.
    BadChecksum {
        /// The record's sequence number, from its intact header.
        seq: u64,
    },
    /// No record where one should be: the first sectors of a write never reached the disk, or a batch stops
    /// before its last record.
    Missing,
    /// The index points here but the record found is another one (a bug, or a disk returning wrong data).
    Mismatch,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DamageKind::BadHeader => write!(f, "torn or corrupted record header at byte {}", self.at),
            DamageKind::BadChecksum { seq } => {
                write!(f, "bad checksum in record {seq} at byte {} (header intact, body torn or corrupted)", self.at)
            }
            DamageKind::Missing => write!(f, "record missing at byte {} (write never reached the disk)", self.at),
            DamageKind::Mismatch => write!(f, "record at byte {} is not the one the index expects", self.at),
        }
    }
}

/// Acknowledged data in the middle of the log is damaged: a record written *after* the damaged one was durable
/// proves that the damaged one had been acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The damage.
    pub damage: Damage,
    /// Disk byte offset where the damaged batch starts: the log is cut here if salvaged.
    pub from: u64,
    /// Disk byte offset of the later record that proves the damaged data had been acknowledged.
    pub evidence_at: u64,
    /// That record's sequence number.
    pub evidence_seq: u64,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; record {} at byte {} was written after this data was acknowledged",
            self.damage, self.evidence_seq, self.evidence_at
        )
    }
}

/// Everything that can go wrong in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The disk failed an operation.
    Disk(DiskError),
    /// An earlier write or flush failed, so what is on the disk is uncertain; writes are refused until the store
    /// is opened again (which finds out). Reads still work.
    Poisoned(DiskError),
    /// Keys must not be empty.
    EmptyKey,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    KeyTooLong {
        /// Its length.
        len: usize,
    },
    /// The value is longer than the store allows (set at format time).
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// A batch is larger than one write may be; split it.
    BatchTooLarge {
        /// Bytes the batch would take in the log.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// No room, even after compaction: the live data fills the log. Reads and deletes still work.
    Full {
        /// Log bytes the write needs, including the room kept for compaction.
        needed: u64,
        /// Log bytes free.
        free: u64,
    },
    /// No superblock: the disk was never formatted for this store (or holds something else).
    NotFormatted,
    /// Both superblock copies are damaged. The disk is not formatted over: that would lose the data.
    SuperblockDamaged,
    /// The superblock was written by a newer version of this store.
    UnsupportedVersion(u16),
    /// The superblock passes its checksum but describes a log that does not fit this disk, or the log it
    /// describes holds numbers no store reaches.
    BadSuperblock(&'static str),
    /// The disk reports a sector size the store cannot use (a power of two from 512 to 65536 is needed).
    BadSectorSize(u32),
    /// The store was formatted with another sector size than the disk now reports.
    SectorSizeChanged {
        /// At format time.
        formatted: u32,
        /// Now.
        device: u32,
    },
    /// The disk is too small for the store's limits.
    DiskTooSmall {
        /// Its capacity in bytes.
        capacity: u64,
        /// The least it needs.
        needed: u64,
    },
    /// A format option is out of range.
    BadOption(&'static str),
    /// Acknowledged data in the middle of the log is damaged; the store refuses to open (see
    /// [`OnCorruption`](crate::OnCorruption)).
    CorruptLog(Corruption),
    /// A live record no longer verifies (found by a read or by compaction).
    DamagedRecord(Damage),
}

impl From<DiskError> for Error {
    fn from(e: DiskError) -> Error {
        Error::Disk(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Disk(e) => write!(f, "{e}"),
            Error::Poisoned(e) => write!(f, "store is read-only until reopened: an earlier write failed ({e})"),
            Error::EmptyKey => f.write_str("empty key"),
            Error::KeyTooLong { len } => write!(f, "key of {len} bytes is longer than {MAX_KEY_LEN}"),
            Error::ValueTooLarge { len, max } => write!(f, "value of {len} bytes is larger than {max}"),
            Error::BatchTooLarge { bytes, max } => write!(f, "batch of {bytes} log bytes is larger than {max}"),
            Error::Full { needed, free } => {
                write!(f, "store full: needs {needed} log bytes, {free} free after compaction")
            }
            Error::NotFormatted => f.write_str("disk holds no store (no superblock)"),
            Error::SuperblockDamaged => f.write_str("both superblock copies are damaged"),
            Error::UnsupportedVersion(v) => write!(f, "store format version {v} is not supported"),
            Error::BadSuperblock(why) => write!(f, "superblock inconsistent with the disk: {why}"),
            Error::BadSectorSize(s) => write!(f, "unusable sector size {s}"),
            Error::SectorSizeChanged { formatted, device } => {
                write!(f, "store formatted with {formatted}-byte sectors, disk now has {device}-byte sectors")
            }
            Error::DiskTooSmall { capacity, needed } => {
                write!(f, "disk of {capacity} bytes is too small: {needed} needed")
            }
            Error::BadOption(why) => write!(f, "bad format option: {why}"),
            Error::CorruptLog(c) => write!(f, "log corrupted, refusing to open: {c}"),
            Error::DamagedRecord(d) => write!(f, "{d}"),
        }
    }
}
