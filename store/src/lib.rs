//! Sirocco's key-value store: a crash-safe log of records on a raw block device, with an in-memory index.
//! Free of `unsafe` and of any platform code; the device is a [`Disk`] (blkfront in the guest, heap memory with
//! a crash simulator in the tests).
//!
//! # Use
//! ```ignore
//! let options = FormatOptions { volume_nonce: now_ns, ..Default::default() };
//! let mut store = Store::open_or_format(&blkfront, options).await?;
//! log::info!("store: {}", store.recovery());            // what open found, including anything dropped
//! store.put(b"greeting", b"hello").await?;               // durable when it returns Ok
//! let value = store.get(b"greeting").await?;            // Some(b"hello".to_vec())
//! store.delete(b"greeting").await?;                      // a durable tombstone
//! let mut batch = Batch::new();                          // group commit: one write, one flush
//! batch.put(b"a", b"1").put(b"b", b"2");
//! store.write_batch(&batch).await?;
//! ```
//!
//! # On the disk
//! - Sectors 0 and 1: two copies of the superblock (`superblock.rs`; checksummed, with a generation), written
//!   alternately, and only by format and compaction. They say where the log area is and where its live part
//!   starts (the head).
//! - The rest: the log area, used as a circular log addressed by ever-growing log positions (`log.rs`). Records
//!   (`record.rs`) are appended at the tail in *batches*: one or more records packed together, the last one
//!   flagged, padded to a sector, written with one write and made durable with one flush. Every record carries
//!   a header checksum and a checksum over header, key and value (CRC-32C), the id of the format that wrote it,
//!   its own log position, a sequence number, and where its batch began.
//! - Nothing records where the log ends: open replays from the head until the records stop (`recovery.rs`).
//!
//! # Why a crash loses nothing acknowledged
//! - **Nothing acknowledged is ever overwritten while live.** Every batch starts on a fresh sector, so an append
//!   never rewrites a sector holding an earlier record (the partial last sector of a batch is left as padding
//!   rather than shared: it costs up to a sector per single put, and batches and compaction pack records
//!   together). The space behind the head is reused only after a superblock moving the head past it is durable,
//!   and compaction (`compaction.rs`) moves the head only after the live records there have been copied and
//!   flushed. So a torn write (any subset of its sectors, or even part of a sector, reaching the disk) can only
//!   damage the write in flight, which was not acknowledged.
//! - **Acknowledged means flushed.** `put`, `delete` and `write_batch` return `Ok` only after the batch's write
//!   and a flush have completed; the index changes only then.
//! - **Replay accepts only whole batches of this log in order**: checksums hold, the position in the record is
//!   the position read, the sequence number grows, and the batch's last record is there. A torn batch is
//!   dropped as a whole, so a batch is all-or-nothing.
//! - **A torn tail cannot come back**: it is zeroed at open (the whole reach of one write), and open sweeps the
//!   whole free part of the log, so the next sequence number is set past any record of this log on the disk:
//!   leftovers of an unacknowledged write can never be read as the continuation of the log.
//! - **Damage is reported, and refused where the format can prove it**: damage to acknowledged data followed by
//!   any later batch is detected (the later batch proves the damaged one had been acknowledged: no batch is
//!   written before the one before it is durable) and open refuses with [`Error::CorruptLog`] unless asked to
//!   [salvage](OnCorruption::Salvage). Damage at the *end* of the log, to the last batch (or to the last few,
//!   with no intact record header after them), cannot be told from a write torn by a crash: nothing written
//!   after it vouches for it, and telling them apart would take a second write and flush per commit. The log is
//!   cut at the damage and what is dropped is reported as [`Tail::Torn`], with the damage found: a crash costs
//!   at most the write in flight, damage to the last batch costs that batch, and neither goes unreported. A
//!   read that finds a record damaged fails with [`Error::DamagedRecord`].
//! - **No atomic sector writes assumed**: every byte relied on is under a checksum, the superblock included
//!   (two copies: a torn write damages only the copy being replaced). The design stays correct if the device
//!   tears inside a sector; a 512-byte sector write being atomic is not needed.
//!
//! After a disk error on a write or flush the store refuses writes ([`Error::Poisoned`]) until it is opened
//! again: what reached the disk is then unknown, and replay is what settles it. A write that returned an error
//! may or may not be there after that.
//!
//! # Limits
//! Keys are 1 to 255 bytes (any bytes; what is printable or URL-safe is the caller's business). Values are up
//! to the limit set at format time (1 MiB by default). One batch takes at most one *batch limit* of log (the
//! largest record, padded). Puts keep two batch limits of the log free and deletes one, so that compaction
//! always has room to work and deletes still work when the store is [full](Error::Full).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod batch;
mod compaction;
mod disk;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod index;
mod log;
mod open;
mod record;
mod recovery;
mod scan;
mod store;
mod superblock;

pub use batch::Batch;
pub use disk::{Disk, DiskError, DiskErrorKind, DiskOp};
pub use error::{Corruption, Damage, DamageKind, Error};
pub use open::{FormatOptions, OpenOptions, DEFAULT_MAX_VALUE_LEN, MAX_VALUE_LEN_LIMIT};
pub use record::{HEADER_LEN, MAX_KEY_LEN};
pub use recovery::{Dropped, OnCorruption, Recovery, Tail};
pub use store::{Stats, Store};
