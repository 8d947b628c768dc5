//! The xenstore wire format, mirrored from Xen's `public/io/xs_wire.h`: the shared ring page
//! (`struct xenstore_domain_interface`), the message header (`struct xsd_sockmsg`), the message types
//! (`enum xsd_sockmsg_type`) and the errno names error replies carry (`xsd_errors[]`). Every value here is pinned by
//! a test in `xenstore::tests`.

use core::fmt;
use core::mem::{offset_of, size_of};

use super::text::InlineStr;

/// `XENSTORE_RING_SIZE`: bytes in each of the request and response rings.
pub const RING_SIZE: usize = 1024;
/// `XENSTORE_PAYLOAD_MAX`: the largest payload a message may carry ("violating this is very bad").
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: the longest absolute path xenstored accepts.
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: the longest relative path xenstored accepts.
pub const REL_PATH_MAX: usize = 2048;
/// `sizeof(struct xsd_sockmsg)`.
pub const HEADER_SIZE: usize = size_of::<XsdSockmsg>();

/// `MASK_XENSTORE_IDX(idx)`: the byte a free-running ring index designates.
pub const fn mask_idx(idx: u32) -> usize {
    idx as usize & (RING_SIZE - 1)
}

/// `struct xenstore_domain_interface`: the page shared with xenstored. Only its layout is used here (the offsets in
/// [`offsets`]); the platform maps the real page and implements [`super::XsRing`] over it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct XenstoreDomainInterface {
    /// `char req[XENSTORE_RING_SIZE]`: requests to the daemon.
    pub req: [u8; RING_SIZE],
    /// `char rsp[XENSTORE_RING_SIZE]`: replies and asynchronous watch events.
    pub rsp: [u8; RING_SIZE],
    /// `req_cons`, advanced by the daemon.
    pub req_cons: u32,
    /// `req_prod`, advanced by us.
    pub req_prod: u32,
    /// `rsp_cons`, advanced by us.
    pub rsp_cons: u32,
    /// `rsp_prod`, advanced by the daemon.
    pub rsp_prod: u32,
    /// `server_features`: `XENSTORE_SERVER_FEATURE_*` bits.
    pub server_features: u32,
    /// `connection`: `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `error`: `XENSTORE_ERROR_*`, set by a daemon offering `XENSTORE_SERVER_FEATURE_ERROR`.
    pub error: u32,
}

/// Byte offsets in the xenstore page, derived from [`XenstoreDomainInterface`].
pub mod offsets {
    use super::*;
    /// `req[]`.
    pub const REQ: usize = offset_of!(XenstoreDomainInterface, req);
    /// `rsp[]`.
    pub const RSP: usize = offset_of!(XenstoreDomainInterface, rsp);
    /// `req_cons`.
    pub const REQ_CONS: usize = offset_of!(XenstoreDomainInterface, req_cons);
    /// `req_prod`.
    pub const REQ_PROD: usize = offset_of!(XenstoreDomainInterface, req_prod);
    /// `rsp_cons`.
    pub const RSP_CONS: usize = offset_of!(XenstoreDomainInterface, rsp_cons);
    /// `rsp_prod`.
    pub const RSP_PROD: usize = offset_of!(XenstoreDomainInterface, rsp_prod);
    /// `server_features`.
    pub const SERVER_FEATURES: usize = offset_of!(XenstoreDomainInterface, server_features);
    /// `connection`.
    pub const CONNECTION: usize = offset_of!(XenstoreDomainInterface, connection);
    /// `error`.
    pub const ERROR: usize = offset_of!(XenstoreDomainInterface, error);
}

const _: () = assert!(size_of::<XenstoreDomainInterface>() == 2076);
const _: () = assert!(offsets::REQ == 0 && offsets::RSP == 1024);
const _: () = assert!(offsets::REQ_CONS == 2048 && offsets::REQ_PROD == 2052);
const _: () = assert!(offsets::RSP_CONS == 2056 && offsets::RSP_PROD == 2060);

/// `struct xsd_sockmsg`: the header in front of every message, each field little-endian on x86.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    /// `type`: an [`MsgType`] value.
    pub msg_type: u32,
    /// `req_id`: chosen by the requester, echoed in the daemon's reply (0 in watch events).
    pub req_id: u32,
    /// `tx_id`: the transaction the request belongs to, 0 for none.
    pub tx_id: u32,
    /// `len`: payload bytes following the header, at most [`PAYLOAD_MAX`].
    pub len: u32,
}

const _: () = assert!(size_of::<XsdSockmsg>() == 16);

/// Byte ranges of the header fields.
mod field {
    use core::ops::Range;
    pub const TYPE: Range<usize> = 0..4;
    pub const REQ_ID: Range<usize> = 4..8;
    pub const TX_ID: Range<usize> = 8..12;
    pub const LEN: Range<usize> = 12..16;
}

impl XsdSockmsg {
    /// Reads a header from its 16 wire bytes.
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Self {
        let word = |r: core::ops::Range<usize>| {
            u32::from_le_bytes([bytes[r.start], bytes[r.start + 1], bytes[r.start + 2], bytes[r.start + 3]])
        };
        XsdSockmsg {
            msg_type: word(field::TYPE),
            req_id: word(field::REQ_ID),
            tx_id: word(field::TX_ID),
            len: word(field::LEN),
        }
    }

    /// The header's 16 wire bytes.
    pub fn emit(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0; HEADER_SIZE];
        out[field::TYPE].copy_from_slice(&self.msg_type.to_le_bytes());
        out[field::REQ_ID].copy_from_slice(&self.req_id.to_le_bytes());
        out[field::TX_ID].copy_from_slice(&self.tx_id.to_le_bytes());
        out[field::LEN].copy_from_slice(&self.len.to_le_bytes());
        out
    }
}

macro_rules! msg_types {
    ($($(#[$doc:meta])* $name:ident = $value:literal => $wire:literal,)*) => {
        /// `enum xsd_sockmsg_type`: what a message asks for or answers.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u32)]
        pub enum MsgType {
            $($(#[$doc])* $name = $value,)*
        }

        impl MsgType {
            /// Every type in `xs_wire.h`, in numeric order.
            pub const ALL: &'static [MsgType] = &[$(MsgType::$name,)*];

            /// The type with this wire value, if `xs_wire.h` defines one.
            pub fn from_u32(value: u32) -> Option<Self> {
                match value {
                    $($value => Some(MsgType::$name),)*
                    _ => None,
                }
            }

            /// The name `xs_wire.h` gives the type (`XS_READ`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $(MsgType::$name => $wire,)*
                }
            }
        }
    };
}

msg_types! {
    /// `XS_CONTROL` (alias `XS_DEBUG`).
    Control = 0 => "XS_CONTROL",
    /// `XS_DIRECTORY`: list a node's children.
    Directory = 1 => "XS_DIRECTORY",
    /// `XS_READ`: a node's value.
    Read = 2 => "XS_READ",
    /// `XS_GET_PERMS`.
    GetPerms = 3 => "XS_GET_PERMS",
    /// `XS_WATCH`: register `path\0token\0`.
    Watch = 4 => "XS_WATCH",
    /// `XS_UNWATCH`: remove `path\0token\0`.
    Unwatch = 5 => "XS_UNWATCH",
    /// `XS_TRANSACTION_START`: answers the new transaction id in decimal.
    TransactionStart = 6 => "XS_TRANSACTION_START",
    /// `XS_TRANSACTION_END`: `T\0` commits, `F\0` aborts.
    TransactionEnd = 7 => "XS_TRANSACTION_END",
    /// `XS_INTRODUCE` (dom0 only).
    Introduce = 8 => "XS_INTRODUCE",
    /// `XS_RELEASE` (dom0 only).
    Release = 9 => "XS_RELEASE",
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10 => "XS_GET_DOMAIN_PATH",
    /// `XS_WRITE`: `path\0value`, no NUL after the value.
    Write = 11 => "XS_WRITE",
    /// `XS_MKDIR`.
    Mkdir = 12 => "XS_MKDIR",
    /// `XS_RM`: remove a node and everything below it.
    Rm = 13 => "XS_RM",
    /// `XS_SET_PERMS`.
    SetPerms = 14 => "XS_SET_PERMS",
    /// `XS_WATCH_EVENT`: sent by the daemon at any time, `path\0token\0`.
    WatchEvent = 15 => "XS_WATCH_EVENT",
    /// `XS_ERROR`: the reply to a failed request, carrying an errno name.
    Error = 16 => "XS_ERROR",
    /// `XS_IS_DOMAIN_INTRODUCED`.
    IsDomainIntroduced = 17 => "XS_IS_DOMAIN_INTRODUCED",
    /// `XS_RESUME`.
    Resume = 18 => "XS_RESUME",
    /// `XS_SET_TARGET`.
    SetTarget = 19 => "XS_SET_TARGET",
    /// `XS_RESET_WATCHES` (`XS_SET_TARGET + 2`; 20 was `XS_RESTRICT`, removed).
    ResetWatches = 21 => "XS_RESET_WATCHES",
    /// `XS_DIRECTORY_PART`.
    DirectoryPart = 22 => "XS_DIRECTORY_PART",
}

/// `XS_INVALID`: guaranteed never to be a valid type.
pub const XS_INVALID: u32 = 0xffff;

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The longest errno name kept from an error reply this crate does not recognise.
pub const ERRNO_NAME_MAX: usize = 16;

/// The errno name an `XS_ERROR` reply carries (`xsd_errors[]` in `xs_wire.h`, plus oxenstored's `EQUOTA`).
/// Variants keep the names exactly as they appear on the wire.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// Invalid argument (bad path, malformed request).
    EINVAL,
    /// Permission denied: the node's permissions do not let this domain do that.
    EACCES,
    /// The node already exists.
    EEXIST,
    /// Is a directory.
    EISDIR,
    /// No such node (or no such transaction / watch).
    ENOENT,
    /// The daemon ran out of memory.
    ENOMEM,
    /// No space (a quota was reached, for cxenstored).
    ENOSPC,
    /// I/O error inside the daemon.
    EIO,
    /// Directory not empty.
    ENOTEMPTY,
    /// The daemon does not implement this request.
    ENOSYS,
    /// Read-only.
    EROFS,
    /// Busy.
    EBUSY,
    /// Try again: for `XS_TRANSACTION_END`, another domain changed what the transaction touched; redo it.
    EAGAIN,
    /// Already connected (the watch is already registered).
    EISCONN,
    /// The request or its answer is too big.
    E2BIG,
    /// Operation not permitted.
    EPERM,
    /// A per-domain quota was reached (oxenstored).
    EQUOTA,
    /// Any other name, kept (truncated to [`ERRNO_NAME_MAX`] bytes) for the error message.
    Other(InlineStr<ERRNO_NAME_MAX>),
}

impl Errno {
    /// The names this crate recognises, in `xsd_errors[]` order (then `EQUOTA`).
    pub const KNOWN: &'static [Errno] = &[
        Errno::EINVAL,
        Errno::EACCES,
        Errno::EEXIST,
        Errno::EISDIR,
        Errno::ENOENT,
        Errno::ENOMEM,
        Errno::ENOSPC,
        Errno::EIO,
        Errno::ENOTEMPTY,
        Errno::ENOSYS,
        Errno::EROFS,
        Errno::EBUSY,
        Errno::EAGAIN,
        Errno::EISCONN,
        Errno::E2BIG,
        Errno::EPERM,
        Errno::EQUOTA,
    ];

    /// The payload of an `XS_ERROR` reply: the name, NUL-terminated (a missing NUL is tolerated).
    pub fn parse(payload: &[u8]) -> Errno {
        let name = match payload.iter().position(|&b| b == 0) {
            Some(end) => &payload[..end],
            None => payload,
        };
        Errno::KNOWN
            .iter()
            .copied()
            .find(|e| e.name().as_bytes() == name)
            .unwrap_or_else(|| Errno::Other(InlineStr::from_bytes(name)))
    }

    /// The name as on the wire.
    pub fn name(&self) -> &str {
        match self {
            Errno::EINVAL => "EINVAL",
            Errno::EACCES => "EACCES",
            Errno::EEXIST => "EEXIST",
            Errno::EISDIR => "EISDIR",
            Errno::ENOENT => "ENOENT",
            Errno::ENOMEM => "ENOMEM",
            Errno::ENOSPC => "ENOSPC",
            Errno::EIO => "EIO",
            Errno::ENOTEMPTY => "ENOTEMPTY",
            Errno::ENOSYS => "ENOSYS",
            Errno::EROFS => "EROFS",
            Errno::EBUSY => "EBUSY",
            Errno::EAGAIN => "EAGAIN",
            Errno::EISCONN => "EISCONN",
            Errno::E2BIG => "E2BIG",
            Errno::EPERM => "EPERM",
            Errno::EQUOTA => "EQUOTA",
            Errno::Other(name) => name.as_str(),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Errno::Other(name) => write!(f, "{name}"),
            known => f.write_str(known.name()),
        }
    }
}
