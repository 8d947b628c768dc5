//! What can go wrong with a block device, said so a person can act on it, and the counters that keep score.
//!
//! Two kinds of trouble. An operation can be refused before it touches the ring, or complete with an error: both
//! are a [`BlkError`] naming the device. A response can be wrong (an id we never issued, a duplicate, the wrong
//! operation, a status blkif.h does not define): that is a [`Fault`], the backend's doing, counted and contained,
//! never acted on; an `rsp_prod` running ahead of our requests is a fault that stops the device.

use core::fmt;

use super::wire::{op_name, status_name};
use crate::frontend::DeviceId;
use crate::ring::RingError;

/// A submitted operation: returned by the `submit_*` calls, named again by its [`Completion`]. Ids are not reused
/// while the operation is pending or its completion is held, and a stale id is refused, not confused with a new
/// operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {}.{}", self.index, self.generation)
    }
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Read whole sectors into the data pages (copied out with [`Blkfront::read_into`](super::Blkfront::read_into)).
    Read,
    /// Write whole sectors.
    Write,
    /// Make completed writes durable: `BLKIF_OP_FLUSH_DISKCACHE` or `BLKIF_OP_WRITE_BARRIER`.
    Flush,
    /// Discard sectors (`BLKIF_OP_DISCARD`).
    Discard,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Flush => "flush",
            OpKind::Discard => "discard",
        })
    }
}

/// Ring slots and pages, needed by an operation or free now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Ring requests.
    pub ring_slots: u32,
    /// Data pages.
    pub data_pages: u32,
    /// Indirect descriptor pages.
    pub indirect_pages: u32,
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ring slots, {} data pages, {} indirect pages",
            self.ring_slots, self.data_pages, self.indirect_pages
        )
    }
}

/// What went wrong with an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Refused: the backend is not Connected yet (or we were not told so).
    NotConnected,
    /// Failed or refused: the backend closed the device (state Closing/Closed, or gone) before answering.
    BackendClosed,
    /// Refused, or failed while pending: the device stopped after the backend broke the ring protocol.
    Broken(Fault),
    /// Refused: a zero-length transfer or discard.
    Empty,
    /// Refused: the offset or length is not a multiple of the disk's logical sector size.
    Unaligned {
        /// Byte offset on the disk.
        offset: u64,
        /// Length in bytes.
        len: u64,
        /// The disk's `sector-size`.
        sector_size: u32,
    },
    /// Refused: the range runs past the end of the disk.
    OutOfRange {
        /// Byte offset on the disk.
        offset: u64,
        /// Length in bytes.
        len: u64,
        /// The disk's size in bytes.
        capacity: u64,
    },
    /// Refused: a write or discard on a read-only disk (`mode` "r" or `VDISK_READONLY` in `info`).
    ReadOnly,
    /// Refused: larger than one operation can be with this device's ring and pages; split it.
    TooLarge {
        /// Length in bytes.
        len: u64,
        /// The largest operation, in bytes.
        max: u64,
    },
    /// Refused for now: not enough free ring slots or pages; retry once completions have been polled (and
    /// completed reads collected).
    Busy {
        /// What the operation needs.
        needed: Resources,
        /// What is free.
        free: Resources,
    },
    /// Refused for now: a write or discard whose caller gave up on it ([`Blkfront::abandon`]) is still pending,
    /// and it must be answered first: it is on the same sectors (a read, write or discard), or it may not have
    /// reached the disk yet (a flush). Retry after polling, as for [`ErrorKind::Busy`].
    ///
    /// [`Blkfront::abandon`]: super::Blkfront::abandon
    AfterAbandoned {
        /// The abandoned operation.
        op: OpId,
    },
    /// Refused for now: the domain has just resumed on a new host and the disk is reconnecting (the operations
    /// pending then are kept and sent again). Retry after polling, as for [`ErrorKind::Busy`].
    Resuming,
    /// Refused: the backend offers neither `feature-flush-cache` nor `feature-barrier` (or answered both
    /// `BLKIF_RSP_EOPNOTSUPP`), so it promised no way to make writes durable.
    NoFlush,
    /// Refused: the backend does not offer `feature-discard` (or answered it `BLKIF_RSP_EOPNOTSUPP`).
    NoDiscard,
    /// The id names no operation of this device (never issued, or already collected).
    UnknownOp {
        /// The id.
        op: OpId,
    },
    /// The operation has not completed, or its completion has not been taken, or it is not a successful read.
    NotReadable {
        /// The id.
        op: OpId,
    },
    /// The buffer given for a completed read is shorter than the read.
    BufferTooSmall {
        /// The buffer's length.
        len: usize,
        /// The read's length.
        needed: u64,
    },
    /// The backend answered `BLKIF_RSP_ERROR` (the first failed request of the operation).
    Io {
        /// The request's operation (`BLKIF_OP_*`).
        operation: u8,
        /// Its first 512-byte sector.
        sector: u64,
        /// Its length in 512-byte sectors.
        sectors: u64,
    },
    /// The backend answered `BLKIF_RSP_EOPNOTSUPP`.
    NotSupported {
        /// The request's operation.
        operation: u8,
    },
    /// The backend gave as many responses as we made requests, but none with this request's id (a bad or
    /// duplicate id took its place): it will never be answered. Its pages are withheld from reuse, in case the
    /// backend is still working on it.
    Lost {
        /// The request's operation.
        operation: u8,
        /// Its first 512-byte sector.
        sector: u64,
        /// Its length in 512-byte sectors.
        sectors: u64,
    },
    /// The backend answered with a status blkif.h does not define (also counted as a fault).
    BadStatus {
        /// The request's operation.
        operation: u8,
        /// The status.
        status: i16,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::NotConnected => f.write_str("refused: the backend is not connected yet"),
            ErrorKind::Resuming => f.write_str("refused for now: the domain resumed and the disk is reconnecting"),
            ErrorKind::BackendClosed => f.write_str(
                "the backend closed the device before answering; what it had not answered may not be on disk",
            ),
            ErrorKind::Broken(fault) => write!(f, "the device stopped after {fault}"),
            ErrorKind::Empty => f.write_str("refused: zero length"),
            ErrorKind::Unaligned { offset, len, sector_size } => write!(
                f,
                "refused: offset {offset} and length {len} must both be multiples of the disk's {sector_size}-byte \
                 sector size"
            ),
            ErrorKind::OutOfRange { offset, len, capacity } => {
                write!(f, "refused: {len} bytes at offset {offset} run past the end of the {capacity}-byte disk")
            }
            ErrorKind::ReadOnly => f.write_str("refused: the disk is read-only (mode \"r\" or VDISK_READONLY)"),
            ErrorKind::TooLarge { len, max } => write!(
                f,
                "refused: {len} bytes in one operation, the most this device takes is {max} (data pages and ring); \
                 split it"
            ),
            ErrorKind::Busy { needed, free } => {
                write!(f, "busy: needs {needed}, free {free}; retry after polling completions")
            }
            ErrorKind::AfterAbandoned { op } => write!(
                f,
                "waiting: abandoned write {op} is still pending and must be answered first; retry after polling"
            ),
            ErrorKind::NoFlush => f.write_str(
                "flush refused: the backend offers neither feature-flush-cache nor feature-barrier, so it promises no \
                 way to make writes durable (Linux treats such a disk as having no volatile write cache)",
            ),
            ErrorKind::NoDiscard => f.write_str("discard refused: the backend does not offer feature-discard"),
            ErrorKind::UnknownOp { op } => write!(f, "{op} is not an operation of this device (stale or never issued)"),
            ErrorKind::NotReadable { op } => {
                write!(f, "{op} is not a completed, successful read whose completion was taken")
            }
            ErrorKind::BufferTooSmall { len, needed } => {
                write!(f, "a {len}-byte buffer for a {needed}-byte read")
            }
            ErrorKind::Io { operation, sector, sectors } => write!(
                f,
                "I/O error: the backend answered BLKIF_RSP_ERROR to {} of 512-byte sectors {sector}..{}",
                op_name(operation),
                sector + sectors
            ),
            ErrorKind::NotSupported { operation } => {
                write!(f, "the backend answered BLKIF_RSP_EOPNOTSUPP to {}", op_name(operation))
            }
            ErrorKind::Lost { operation, sector, sectors } => write!(
                f,
                "lost: the backend answered as many requests as we made, but never {} of 512-byte sectors \
                 {sector}..{} (a wrong id took its place); its pages are withheld from reuse",
                op_name(operation),
                sector + sectors
            ),
            ErrorKind::BadStatus { operation, status } => {
                write!(f, "the backend answered {} with status {status}, not a BLKIF_RSP_* value", op_name(operation))
            }
        }
    }
}

/// An operation's failure or refusal, on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkError {
    /// The device.
    pub device: DeviceId,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl BlkError {
    /// A transient refusal ([`ErrorKind::Busy`], [`ErrorKind::AfterAbandoned`], [`ErrorKind::Resuming`]): retry
    /// after the next poll.
    pub fn is_busy(&self) -> bool {
        matches!(self.kind, ErrorKind::Busy { .. } | ErrorKind::AfterAbandoned { .. } | ErrorKind::Resuming)
    }
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.device, self.kind)
    }
}

impl core::error::Error for BlkError {}

/// What was wrong with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The id is not one we issued (slot out of range, or a generation not issued yet). Ignored; the request it
    /// displaced is [`ErrorKind::Lost`] once every response is in.
    UnknownId {
        /// The response's id.
        id: u64,
    },
    /// The id names a request already answered (a duplicate or late response). Ignored: it cannot complete the
    /// request now in that slot, whose id carries a newer generation.
    Duplicate {
        /// The response's id.
        id: u64,
    },
    /// The id is pending, but the operation is not the request's. Ignored: the request stays pending (and is
    /// [`ErrorKind::Lost`] once every response is in).
    WrongOperation {
        /// The response's id.
        id: u64,
        /// The request's operation.
        expected: u8,
        /// The response's.
        got: u8,
    },
    /// The response matches a pending request but its status is not a `BLKIF_RSP_*` value: the request is
    /// answered, and fails with [`ErrorKind::BadStatus`].
    BadStatus {
        /// The response's id.
        id: u64,
        /// The status.
        status: i16,
    },
    /// The ring's indices are broken ([`RingError::Overrun`]): the device stopped and every pending operation
    /// failed.
    Ring(RingError),
}

/// A response the backend got wrong: where it was and what was wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The response's ring index (for a ring fault, our `rsp_cons`).
    pub index: u32,
    /// What was wrong.
    pub kind: FaultKind,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response at ring index {}: ", self.index)?;
        match self.kind {
            FaultKind::UnknownId { id } => write!(f, "id {id:#x} was never issued"),
            FaultKind::Duplicate { id } => write!(f, "id {id:#x} was already answered"),
            FaultKind::WrongOperation { id, expected, got } => write!(
                f,
                "id {id:#x} is a {} request, but the response says {} ({got})",
                op_name(expected),
                op_name(got)
            ),
            FaultKind::BadStatus { id, status } => write!(f, "id {id:#x}: status {status} ({})", status_name(status)),
            FaultKind::Ring(e) => write!(f, "{e}; the device is stopped"),
        }
    }
}

/// What [`Blkfront::poll`](super::Blkfront::poll) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Responses taken off the ring.
    pub responses: u32,
    /// Operations that completed (all their requests answered, or the device broke): take them with
    /// [`Blkfront::next_completion`](super::Blkfront::next_completion).
    pub completed: u32,
    /// Bad responses (each also counted in [`Counters`]).
    pub faults: u32,
    /// The first of them, to log.
    pub first_fault: Option<Fault>,
}

/// A completed operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Its id.
    pub op: OpId,
    /// What it did.
    pub kind: OpKind,
    /// Bytes transferred (or discarded; 0 for a flush), or the first error among its requests. A successful read's
    /// data waits in the data pages for [`Blkfront::read_into`](super::Blkfront::read_into).
    pub result: Result<u64, BlkError>,
}

/// Operations, bytes and faults, since the device was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Reads submitted.
    pub reads: u64,
    /// Writes submitted.
    pub writes: u64,
    /// Flushes submitted.
    pub flushes: u64,
    /// Discards submitted.
    pub discards: u64,
    /// Bytes read (successful reads, abandoned ones not counted).
    pub bytes_read: u64,
    /// Bytes written (successful writes, abandoned ones not counted: nobody was told they were done).
    pub bytes_written: u64,
    /// Bytes discarded (successful discards).
    pub bytes_discarded: u64,
    /// Ring requests pushed.
    pub requests: u64,
    /// Of which indirect.
    pub indirect_requests: u64,
    /// Events sent to the backend.
    pub notifies: u64,

    /// Operations completed successfully.
    pub ops_ok: u64,
    /// Operations completed with an error (any [`ErrorKind`], including the device breaking).
    pub ops_failed: u64,
    /// Requests answered `BLKIF_RSP_ERROR`.
    pub rsp_error: u64,
    /// Requests answered `BLKIF_RSP_EOPNOTSUPP`.
    pub rsp_not_supported: u64,

    /// Requests never answered because bad responses took their place ([`ErrorKind::Lost`]).
    pub lost_requests: u64,
    /// Data and indirect pages withheld from reuse (a lost request's).
    pub quarantined_pages: u64,

    /// Submissions refused for now ([`ErrorKind::Busy`], [`ErrorKind::AfterAbandoned`], [`ErrorKind::Resuming`]).
    pub busy: u64,
    /// Submissions refused outright (every other refusal).
    pub refused: u64,
    /// Operations their caller gave up on ([`Blkfront::abandon`](super::Blkfront::abandon)): never reported
    /// done, nor counted in `ops_ok`, `ops_failed` or the byte counts.
    pub abandoned: u64,
    /// Times the device was reset for a new backend ([`Blkfront::reset`](super::Blkfront::reset)).
    pub resets: u64,
    /// Resumes in a new domain ([`Blkfront::resume`](super::Blkfront::resume)).
    pub resumes: u64,
    /// Requests sent again to the new backend after a resume.
    pub replayed: u64,
    /// Operations (or parts of one) failed at a resume instead: the disk changed, or the new backend takes fewer
    /// indirect segments.
    pub replay_failed: u64,

    /// Responses with an id never issued (ignored).
    pub bad_id: u64,
    /// Responses to requests already answered (ignored).
    pub duplicate: u64,
    /// Responses with the wrong operation (ignored).
    pub wrong_operation: u64,
    /// Responses with a status that is not `BLKIF_RSP_*` (the request fails).
    pub bad_status: u64,
    /// Times the backend's `rsp_prod` ran ahead of our requests (the device stops at the first).
    pub ring_overruns: u64,
}

impl Counters {
    /// Every fault counted: bad responses and ring overruns.
    pub fn faults(&self) -> u64 {
        self.bad_id + self.duplicate + self.wrong_operation + self.bad_status + self.ring_overruns
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self;
        write!(
            f,
            "reads {} ({} B) writes {} ({} B) flushes {} discards {} ({} B); requests {} (indirect {}), notifies {}; \
             ops ok {} failed {} (BLKIF_RSP_ERROR {}, EOPNOTSUPP {}, lost {}; pages quarantined {}); refused {} busy \
             {}; abandoned {}, resets {}, resumes {} (replayed {}, failed {}); faults: bad id {}, duplicate {}, wrong operation {}, bad status {}, ring overruns {}",
            c.reads,
            c.bytes_read,
            c.writes,
            c.bytes_written,
            c.flushes,
            c.discards,
            c.bytes_discarded,
            c.requests,
            c.indirect_requests,
            c.notifies,
            c.ops_ok,
            c.ops_failed,
            c.rsp_error,
            c.rsp_not_supported,
            c.lost_requests,
            c.quarantined_pages,
            c.refused,
            c.busy,
            c.abandoned,
            c.resets,
            c.resumes,
            c.replayed,
            c.replay_failed,
            c.bad_id,
            c.duplicate,
            c.wrong_operation,
            c.bad_status,
            c.ring_overruns
        )
    }
}
