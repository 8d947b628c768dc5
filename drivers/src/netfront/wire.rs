//! The netif ring ABI, mirrored from Xen's `public/io/netif.h` (x86, little-endian). Each struct is `repr(C)` with
//! its size and field offsets asserted at compile time; requests and responses travel as byte copies
//! (`emit`/`parse`), never as references into the shared page. Every value is also pinned by a test in
//! `netfront::tests`.

use core::mem::{offset_of, size_of};

/// `XEN_PAGE_SIZE`: the size of a granted buffer page; no slot may cross its end.
pub const PAGE_SIZE: usize = 4096;

/// `XEN_NETIF_MAX_TX_SIZE`: the largest packet a TX request chain can carry (the first slot's `size` is a `u16`).
pub const MAX_TX_SIZE: usize = 0xFFFF;

/// `XEN_NETIF_NR_SLOTS_MIN`: the most slots per packet every backend must accept.
pub const NR_SLOTS_MIN: usize = 18;

/// `NETTXF_csum_blank`: the transport checksum is blank (the backend or the receiver fills it in).
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: the packet data has been validated against its checksum.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: extra info slots follow this request.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`: the backend validated the data (the pair with csum_blank is swapped relative to TX).
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`: the transport checksum is blank (a packet from a local sender with checksum offload).
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`: the packet continues in the next response.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`: extra info slots follow this response.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`: a GSO prefix descriptor (only with `feature-gso-tcpv4-prefix`, which we never request).
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// `NETIF_RSP_DROPPED`.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: the response to an extra info slot (no request id of its own).
pub const NETIF_RSP_NULL: i16 = 1;

/// `XEN_NETIF_EXTRA_TYPE_NONE`: never used (invalid).
pub const EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`.
pub const EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`.
pub const EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`.
pub const EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`.
pub const EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`: valid types are below it.
pub const EXTRA_TYPE_MAX: u8 = 5;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra info slot follows.
pub const EXTRA_FLAG_MORE: u8 = 1 << 0;

/// `XEN_NETIF_GSO_TYPE_TCPV4`.
pub const GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`.
pub const GSO_TYPE_TCPV6: u8 = 2;

/// Bytes per TX ring entry: `union netif_tx_sring_entry` of a 12-byte request and a 4-byte response.
pub const TX_ENTRY_SIZE: usize = 12;
/// Bytes per RX ring entry: `union netif_rx_sring_entry` of an 8-byte request and an 8-byte response.
pub const RX_ENTRY_SIZE: usize = 8;

/// `struct netif_tx_request`: one slot of a packet we send.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxRequest {
    /// `grant_ref_t gref`: the buffer page.
    pub gref: u32,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response (our TX buffer index).
    pub id: u16,
    /// The whole packet's size in the first slot, this slot's own size in the others.
    pub size: u16,
}

const _: () = assert!(size_of::<NetifTxRequest>() == 12);
const _: () = assert!(offset_of!(NetifTxRequest, gref) == 0 && offset_of!(NetifTxRequest, offset) == 4);
const _: () = assert!(offset_of!(NetifTxRequest, flags) == 6 && offset_of!(NetifTxRequest, id) == 8);
const _: () = assert!(offset_of!(NetifTxRequest, size) == 10);

impl NetifTxRequest {
    /// The wire bytes.
    pub fn emit(&self) -> [u8; 12] {
        let mut b = [0; 12];
        b[0..4].copy_from_slice(&self.gref.to_le_bytes());
        b[4..6].copy_from_slice(&self.offset.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..10].copy_from_slice(&self.id.to_le_bytes());
        b[10..12].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    /// From the wire bytes.
    pub fn parse(b: &[u8; 12]) -> Self {
        NetifTxRequest {
            gref: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            offset: u16_at(b, 4),
            flags: u16_at(b, 6),
            id: u16_at(b, 8),
            size: u16_at(b, 10),
        }
    }
}

/// `struct netif_tx_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxResponse {
    /// The request's id.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

const _: () = assert!(size_of::<NetifTxResponse>() == 4);
const _: () = assert!(offset_of!(NetifTxResponse, id) == 0 && offset_of!(NetifTxResponse, status) == 2);

impl NetifTxResponse {
    /// The wire bytes.
    pub fn emit(&self) -> [u8; 4] {
        let (id, status) = (self.id.to_le_bytes(), self.status.to_le_bytes());
        [id[0], id[1], status[0], status[1]]
    }

    /// From the wire bytes.
    pub fn parse(b: &[u8; 4]) -> Self {
        NetifTxResponse { id: u16_at(b, 0), status: i16::from_le_bytes([b[2], b[3]]) }
    }
}

/// `struct netif_rx_request`: a buffer we lend the backend for a received packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxRequest {
    /// Echoed in the response (our RX buffer index).
    pub id: u16,
    /// Padding.
    pub pad: u16,
    /// `grant_ref_t gref`: the buffer page.
    pub gref: u32,
}

const _: () = assert!(size_of::<NetifRxRequest>() == 8);
const _: () = assert!(offset_of!(NetifRxRequest, id) == 0 && offset_of!(NetifRxRequest, gref) == 4);

impl NetifRxRequest {
    /// The wire bytes (padding zero).
    pub fn emit(&self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.pad.to_le_bytes());
        b[4..8].copy_from_slice(&self.gref.to_le_bytes());
        b
    }

    /// From the wire bytes.
    pub fn parse(b: &[u8; 8]) -> Self {
        NetifRxRequest { id: u16_at(b, 0), pad: u16_at(b, 2), gref: u32::from_le_bytes([b[4], b[5], b[6], b[7]]) }
    }
}

/// `struct netif_rx_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxResponse {
    /// The request's id.
    pub id: u16,
    /// Where the data starts in the page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Positive: this slot's data length; negative: `NETIF_RSP_*`.
    pub status: i16,
}

const _: () = assert!(size_of::<NetifRxResponse>() == 8);
const _: () = assert!(offset_of!(NetifRxResponse, id) == 0 && offset_of!(NetifRxResponse, offset) == 2);
const _: () = assert!(offset_of!(NetifRxResponse, flags) == 4 && offset_of!(NetifRxResponse, status) == 6);

impl NetifRxResponse {
    /// The wire bytes.
    pub fn emit(&self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.offset.to_le_bytes());
        b[4..6].copy_from_slice(&self.flags.to_le_bytes());
        b[6..8].copy_from_slice(&self.status.to_le_bytes());
        b
    }

    /// From the wire bytes.
    pub fn parse(b: &[u8; 8]) -> Self {
        NetifRxResponse {
            id: u16_at(b, 0),
            offset: u16_at(b, 2),
            flags: u16_at(b, 4),
            status: i16::from_le_bytes([b[6], b[7]]),
        }
    }
}

/// `struct netif_extra_info`: overlays a request or response slot (8 bytes; a TX slot pads it to 12). It carries
/// no id: it belongs to the slot it occupies.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub ty: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The type-specific union (`gso`, `mcast`, `hash`), as bytes.
    pub data: [u8; 6],
}

const _: () = assert!(size_of::<NetifExtraInfo>() == 8);
const _: () = assert!(offset_of!(NetifExtraInfo, flags) == 1 && offset_of!(NetifExtraInfo, data) == 2);

impl NetifExtraInfo {
    /// The wire bytes.
    pub fn emit(&self) -> [u8; 8] {
        let d = self.data;
        [self.ty, self.flags, d[0], d[1], d[2], d[3], d[4], d[5]]
    }

    /// From the wire bytes.
    pub fn parse(b: &[u8; 8]) -> Self {
        NetifExtraInfo { ty: b[0], flags: b[1], data: [b[2], b[3], b[4], b[5], b[6], b[7]] }
    }

    /// A type this version of `netif.h` defines (`NONE` is never valid).
    pub fn type_is_valid(&self) -> bool {
        (EXTRA_TYPE_GSO..EXTRA_TYPE_MAX).contains(&self.ty)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
