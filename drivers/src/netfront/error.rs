//! What can go wrong sending and receiving, and the counters that keep score. Faults are the backend's doing and
//! are reported, counted and contained (the slot's buffer is recycled, the packet dropped), never acted on.

use core::fmt;

use super::wire::{NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, PAGE_SIZE};
use crate::ring::RingError;

/// Which ring a fault was seen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The transmit ring (our packets out).
    Tx,
    /// The receive ring (packets in).
    Rx,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Tx => "tx",
            Direction::Rx => "rx",
        })
    }
}

/// What was wrong with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The id is not one of our outstanding requests (unknown, already answered, or, on RX, not the request the
    /// backend consumed to make this slot: netif.h requires each RX response in its request's slot).
    BadId {
        /// The response's id.
        id: u16,
        /// On RX, the id of the request in that slot.
        expected: Option<u16>,
    },
    /// The backend reports an error (`NETIF_RSP_ERROR`/`DROPPED`) or a status that makes no sense (an RX length
    /// of 0, an unknown TX status).
    Status {
        /// The response's status.
        status: i16,
    },
    /// The data would run past the end of the granted page.
    OutsidePage {
        /// The response's offset.
        offset: u16,
        /// Its length.
        len: u16,
    },
    /// Flags we did not negotiate (`NETRXF_gso_prefix`).
    BadFlags {
        /// The response's flags.
        flags: u16,
    },
    /// An extra info slot of a type netif.h does not define.
    BadExtra {
        /// Its type.
        ty: u8,
    },
    /// A GSO extra info slot we did not ask for (no large receive), of a GSO type we did not ask for, or with a
    /// segment size of 0.
    BadGso {
        /// Its `u.gso.type`.
        gso_type: u8,
        /// Its `u.gso.size`.
        size: u16,
        /// Whether we asked for large receive (`feature-gso-tcpv4`).
        asked: bool,
    },
    /// The chained slots add up to more than a packet can hold.
    TooBig {
        /// Bytes so far.
        len: usize,
    },
    /// The ring's indices are broken ([`RingError::Overrun`]: `rsp_prod` ran ahead of the requests we
    /// published): the ring is unusable and the device stopped.
    Ring(RingError),
}

/// A response the backend got wrong, where it was, and what was wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The ring.
    pub dir: Direction,
    /// The response's ring index (for a dropped RX packet, that of the first bad slot).
    pub index: u32,
    /// What was wrong.
    pub kind: FaultKind,
}

/// Why a received packet was dropped: the first fault among its slots.
pub type RxDrop = Fault;

/// `NETIF_RSP_*` by name.
pub(crate) fn status_name(status: i16) -> &'static str {
    match status {
        NETIF_RSP_OKAY => "NETIF_RSP_OKAY",
        NETIF_RSP_ERROR => "NETIF_RSP_ERROR",
        NETIF_RSP_DROPPED => "NETIF_RSP_DROPPED",
        NETIF_RSP_NULL => "NETIF_RSP_NULL",
        _ => "not a NETIF_RSP_* value",
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} response at ring index {}: ", self.dir, self.index)?;
        match self.kind {
            FaultKind::BadId { id, expected: Some(expected) } => {
                write!(f, "id {id}, but the request in that slot has id {expected}")
            }
            FaultKind::BadId { id, expected: None } => write!(f, "id {id} is not an outstanding request"),
            FaultKind::Status { status } if status > 0 => write!(f, "status {status} makes no sense here"),
            FaultKind::Status { status } => write!(f, "status {status} ({})", status_name(status)),
            FaultKind::OutsidePage { offset, len } => {
                write!(f, "offset {offset} + length {len} runs past the {PAGE_SIZE}-byte page")
            }
            FaultKind::BadFlags { flags } => write!(f, "flags {flags:#06x} include one we did not negotiate"),
            FaultKind::BadExtra { ty } => write!(f, "extra info slot of unknown type {ty}"),
            FaultKind::BadGso { asked: false, .. } => {
                f.write_str("a GSO extra info slot, but we never asked for large receive")
            }
            FaultKind::BadGso { gso_type, size, .. } => {
                write!(f, "GSO extra info of type {gso_type}, size {size}: not a type we asked for, or no segment size")
            }
            FaultKind::TooBig { len } => write!(f, "the chained slots hold {len} bytes, more than 65535"),
            FaultKind::Ring(e) => write!(f, "{e}; the device is stopped"),
        }
    }
}

/// Why [`Netfront::transmit`](super::Netfront::transmit) refused a packet. Nothing was queued; the caller still
/// holds the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// The backend is not Connected yet (or we have not been told so): packets sent now would be lost.
    NotConnected,
    /// The device stopped after the backend broke the ring protocol.
    Broken(Fault),
    /// An empty packet.
    Empty,
    /// Larger than the protocol (65535 bytes) or our buffers allow.
    TooBig {
        /// The packet length.
        len: usize,
        /// The largest packet we can send.
        max: usize,
    },
    /// The packet needs more than one slot but `feature-sg` was not negotiated.
    NeedsScatterGather {
        /// The packet length.
        len: usize,
        /// Slots it needs.
        slots: usize,
    },
    /// The packet's checksum was left blank, but checksum offload is off for this device.
    ChecksumOffloadOff,
    /// A segment for the backend to cut up, but TCP/IPv4 segmentation offload was not negotiated (or the MSS is 0).
    GsoOff,
    /// Not enough free ring slots or TX buffers now: call `poll_tx` and retry.
    RingFull {
        /// Slots the packet needs.
        needed: usize,
        /// Free ring slots.
        free_slots: u32,
        /// Free TX buffers.
        free_buffers: usize,
    },
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TxError::NotConnected => f.write_str("not sent: the backend is not connected yet"),
            TxError::Broken(fault) => write!(f, "not sent: the device stopped after {fault}"),
            TxError::Empty => f.write_str("not sent: empty packet"),
            TxError::TooBig { len, max } => write!(f, "not sent: {len} bytes, the largest packet is {max}"),
            TxError::NeedsScatterGather { len, slots } => write!(
                f,
                "not sent: {len} bytes need {slots} slots, but the backend did not offer feature-sg (or we did not \
                 ask for it)"
            ),
            TxError::ChecksumOffloadOff => {
                f.write_str("not sent: checksum left blank, but checksum offload is off for this device")
            }
            TxError::GsoOff => f.write_str("not sent: segmentation offload is off for this device (or MSS 0)"),
            TxError::RingFull { needed, free_slots, free_buffers } => write!(
                f,
                "not sent: {needed} slots needed, {free_slots} ring slots and {free_buffers} buffers free; retry \
                 after poll_tx"
            ),
        }
    }
}

impl core::error::Error for TxError {}

/// Packets and faults, since the device was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets queued for transmission.
    pub tx_packets: u64,
    /// Of those, segments handed to the backend to cut up (TSO, a GSO extra info slot each).
    pub tx_gso_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Packets received and delivered.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Events sent to the backend.
    pub notifies: u64,

    /// Transmits refused: not enough free ring slots.
    pub tx_ring_full: u64,
    /// Transmits refused: not enough free TX buffers.
    pub tx_no_buffer: u64,
    /// Transmits refused: too big (or empty).
    pub tx_too_big: u64,
    /// Transmits refused: several slots needed without `feature-sg`.
    pub tx_needs_sg: u64,
    /// Transmits refused: blank checksum with offload off.
    pub tx_csum_refused: u64,
    /// Transmits refused: a GSO segment without segmentation offload.
    pub tx_gso_refused: u64,
    /// Transmits refused: not connected (or stopped).
    pub tx_not_connected: u64,

    /// TX responses with an id that is not outstanding (ignored).
    pub tx_bad_id: u64,
    /// TX responses `NETIF_RSP_ERROR`.
    pub tx_error: u64,
    /// TX responses `NETIF_RSP_DROPPED`.
    pub tx_dropped: u64,
    /// TX responses with any other status than OKAY (including a `NETIF_RSP_NULL` we never asked for).
    pub tx_bad_status: u64,

    /// Received packets dropped (each counted once, whatever its faults).
    pub rx_dropped: u64,
    /// RX responses with a bad id.
    pub rx_bad_id: u64,
    /// RX responses with an error status or a zero length.
    pub rx_bad_status: u64,
    /// RX responses whose offset + length ran past the page.
    pub rx_bad_offset: u64,
    /// RX responses with flags we did not negotiate.
    pub rx_bad_flags: u64,
    /// RX extra info slots of an unknown type, and GSO ones we cannot take.
    pub rx_bad_extra: u64,
    /// RX packets over 65535 bytes.
    pub rx_too_big: u64,
    /// Extra info slots skipped (valid ones we have no use for).
    pub rx_extra_skipped: u64,
    /// Large segments received (a GSO extra info slot with them).
    pub rx_gso_packets: u64,

    /// Times the backend's `rsp_prod` ran ahead of our requests (the device stops at the first).
    pub ring_overruns: u64,

    /// Times the device started over after its backend went away ([`Netfront::reset`](super::Netfront::reset)).
    pub resets: u64,
    /// TX slots in flight that those resets dropped.
    pub tx_dropped_in_reset: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self;
        write!(
            f,
            "tx {} pkts ({} gso) {} B (refused: ring full {}, no buffer {}, too big {}, needs sg {}, csum {}, gso {}, \
             not connected {}; responses: bad id {}, error {}, dropped {}, bad status {}); rx {} pkts ({} gso) {} B (dropped {}: bad id {}, \
             bad status {}, bad offset {}, bad flags {}, bad extra {}, too big {}; extras skipped {}); ring overruns \
             {}; resets {} (tx slots dropped {}); notifies {}",
            c.tx_packets,
            c.tx_gso_packets,
            c.tx_bytes,
            c.tx_ring_full,
            c.tx_no_buffer,
            c.tx_too_big,
            c.tx_needs_sg,
            c.tx_csum_refused,
            c.tx_gso_refused,
            c.tx_not_connected,
            c.tx_bad_id,
            c.tx_error,
            c.tx_dropped,
            c.tx_bad_status,
            c.rx_packets,
            c.rx_gso_packets,
            c.rx_bytes,
            c.rx_dropped,
            c.rx_bad_id,
            c.rx_bad_status,
            c.rx_bad_offset,
            c.rx_bad_flags,
            c.rx_bad_extra,
            c.rx_too_big,
            c.rx_extra_skipped,
            c.ring_overruns,
            c.resets,
            c.tx_dropped_in_reset,
            c.notifies
        )
    }
}
