//! What can go wrong talking to xenstored, said so a person can act on it.

use core::fmt;

use super::text::InlineStr;
use super::wire::{Errno, MsgType, PAYLOAD_MAX, RING_SIZE};

/// The longest path kept in an error (its tail is kept).
pub const ERROR_PATH_MAX: usize = 64;

/// A xenstore path as named in an error.
pub type ErrorPath = InlineStr<ERROR_PATH_MAX>;

/// How xenstored broke the ring protocol. The daemon is not trusted: each of these is reported, never acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// `rsp_prod` ran more than the ring size ahead of our `rsp_cons`. Fatal: the ring is unusable.
    RspOverrun {
        /// The daemon's `rsp_prod`.
        rsp_prod: u32,
        /// Our `rsp_cons`.
        rsp_cons: u32,
    },
    /// `req_cons` ran past our `req_prod` (the daemon claims to have read what we never wrote). Fatal.
    ReqOverrun {
        /// Our `req_prod`.
        req_prod: u32,
        /// The daemon's `req_cons`.
        req_cons: u32,
    },
    /// A message header announced more than `XENSTORE_PAYLOAD_MAX` bytes. Fatal: message framing is lost.
    Oversized {
        /// The header's `type`.
        msg_type: u32,
        /// The header's `req_id`.
        req_id: u32,
        /// The header's `len`.
        len: u32,
    },
    /// A reply whose `req_id` matches no request we are waiting for. The message was discarded.
    UnknownReplyId {
        /// The id of the request in flight, if any.
        expected: Option<u32>,
        /// The reply's `req_id`.
        got: u32,
        /// The reply's `type`.
        msg_type: u32,
    },
    /// The reply to our request has neither our request's type nor `XS_ERROR`. The reply was discarded.
    WrongReplyType {
        /// The request's `req_id`.
        req_id: u32,
        /// Our request's type.
        expected: MsgType,
        /// The reply's `type`.
        got: u32,
    },
    /// An `XS_WATCH_EVENT` whose payload is not `path\0token\0` (UTF-8). The event was discarded.
    MalformedWatchEvent {
        /// The payload length.
        len: u32,
    },
    /// A reply with the right type and id whose payload makes no sense for the request.
    MalformedReply {
        /// What was wrong with it.
        what: &'static str,
        /// The start of the payload, as sent.
        payload: InlineStr<16>,
    },
    /// We gave up (timed out) half-way through writing a request; the daemon would read our next request as the
    /// rest of this one, so the ring is unusable. Fatal.
    PartialRequest {
        /// Bytes of the message (header included) that were written.
        written: u32,
        /// Bytes the whole message needed.
        total: u32,
    },
}

impl Violation {
    /// True if the ring cannot be used any more after this (framing or index invariants are lost).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Violation::RspOverrun { .. }
                | Violation::ReqOverrun { .. }
                | Violation::Oversized { .. }
                | Violation::PartialRequest { .. }
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::RspOverrun { rsp_prod, rsp_cons } => write!(
                f,
                "rsp_prod {rsp_prod} is {} bytes ahead of rsp_cons {rsp_cons}, but the response ring holds {RING_SIZE}",
                rsp_prod.wrapping_sub(rsp_cons)
            ),
            Violation::ReqOverrun { req_prod, req_cons } => write!(
                f,
                "req_cons {req_cons} claims {} bytes consumed beyond req_prod {req_prod} (ring holds {RING_SIZE})",
                req_cons.wrapping_sub(req_prod)
            ),
            Violation::Oversized { msg_type, req_id, len } => write!(
                f,
                "message type {} req_id {req_id} announces a {len}-byte payload (XENSTORE_PAYLOAD_MAX is {PAYLOAD_MAX})",
                TypeName(msg_type)
            ),
            Violation::UnknownReplyId { expected: Some(expected), got, msg_type } => write!(
                f,
                "reply type {} carries req_id {got}, but the request in flight is req_id {expected}",
                TypeName(msg_type)
            ),
            Violation::UnknownReplyId { expected: None, got, msg_type } => {
                write!(f, "reply type {} carries req_id {got}, but no request is in flight", TypeName(msg_type))
            }
            Violation::WrongReplyType { req_id, expected, got } => {
                write!(f, "reply to req_id {req_id} has type {}, expected {expected} or XS_ERROR", TypeName(got))
            }
            Violation::MalformedWatchEvent { len } => {
                write!(f, "XS_WATCH_EVENT with a {len}-byte payload that is not UTF-8 \"path\\0token\\0\"")
            }
            Violation::MalformedReply { what, payload } => write!(f, "malformed reply: {what} (payload {payload:?})"),
            Violation::PartialRequest { written, total } => write!(
                f,
                "timed out after writing {written} of {total} bytes of a request; the request stream is now corrupt"
            ),
        }
    }
}

/// A wire type value shown by name when `xs_wire.h` has one.
struct TypeName(u32);

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match MsgType::from_u32(self.0) {
            Some(t) => write!(f, "{t}"),
            None => write!(f, "{}", self.0),
        }
    }
}

/// An error from the xenstore client. Each names the request (`op`, the xenstore type) and the path it was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// xenstored answered `XS_ERROR`.
    Daemon {
        /// The request.
        op: MsgType,
        /// The path (or token) it was about.
        path: ErrorPath,
        /// What the daemon said.
        errno: Errno,
    },
    /// No reply before the per-call deadline. The reply, if it ever comes, will be recognised and dropped.
    Timeout {
        /// The request.
        op: MsgType,
        /// The path it was about.
        path: ErrorPath,
        /// How long we waited, in nanoseconds.
        waited_ns: u64,
    },
    /// xenstored broke the protocol while we were doing `op` (`None`: while polling for watch events).
    Protocol {
        /// The request in flight.
        op: Option<MsgType>,
        /// The path it was about.
        path: ErrorPath,
        /// What the daemon did.
        violation: Violation,
    },
    /// An earlier fatal violation left the ring unusable; nothing was sent.
    RingBroken {
        /// The request refused.
        op: Option<MsgType>,
        /// The path it was about.
        path: ErrorPath,
        /// The violation that broke the ring.
        violation: Violation,
    },
    /// The request payload would exceed `XENSTORE_PAYLOAD_MAX`; nothing was sent.
    TooLong {
        /// The request.
        op: MsgType,
        /// The path it was about.
        path: ErrorPath,
        /// The payload length it would have had.
        len: usize,
    },
    /// An argument cannot be sent as asked (a path or token containing NUL); nothing was sent.
    BadArgument {
        /// The request.
        op: MsgType,
        /// The path it was about.
        path: ErrorPath,
        /// What is wrong.
        what: &'static str,
    },
    /// A value or listing that should be text is not UTF-8.
    NotUtf8 {
        /// The request.
        op: MsgType,
        /// The path it was about.
        path: ErrorPath,
    },
    /// Every attempt of a transaction was answered `EAGAIN` at commit.
    TransactionRetriesExhausted {
        /// How many times the transaction was run.
        attempts: u32,
    },
    /// Too many requests are in flight (`MAX_IN_FLIGHT`); nothing was sent. Wait for one to end and start again.
    Busy {
        /// The request refused.
        op: MsgType,
        /// The path it was about.
        path: ErrorPath,
    },
    /// The request is not the one in flight: it already ended (replied, failed or given up).
    NotInFlight {
        /// The request.
        op: MsgType,
        /// The path it was about.
        path: ErrorPath,
    },
}

impl XsError {
    /// The errno the daemon answered, if that is what this error is.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            XsError::Daemon { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// True if the daemon said the node does not exist.
    pub fn is_enoent(&self) -> bool {
        self.errno() == Some(Errno::ENOENT)
    }
}

/// What the client was doing, for messages.
struct Doing(Option<MsgType>, ErrorPath);

impl fmt::Display for Doing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(op) => write!(f, "xenstore {op} {}", self.1),
            None => f.write_str("xenstore (polling for watch events)"),
        }
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            XsError::Daemon { op, path, errno } => {
                write!(f, "{}: xenstored answered {errno}", Doing(Some(op), path))?;
                match errno {
                    Errno::ENOENT => f.write_str(" (no such node)"),
                    Errno::EACCES => f.write_str(" (the node's permissions do not allow this domain)"),
                    Errno::EAGAIN if op == MsgType::TransactionEnd => {
                        f.write_str(" (another domain changed what the transaction touched; redo it)")
                    }
                    _ => Ok(()),
                }
            }
            XsError::Timeout { op, path, waited_ns } => {
                write!(f, "{}: no reply from xenstored after {} ms", Doing(Some(op), path), waited_ns / 1_000_000)
            }
            XsError::Protocol { op, path, violation } => {
                write!(f, "{}: xenstored broke the protocol: {violation}", Doing(op, path))
            }
            XsError::RingBroken { op, path, violation } => {
                write!(f, "{}: not sent, the xenstore ring is unusable since: {violation}", Doing(op, path))
            }
            XsError::TooLong { op, path, len } => write!(
                f,
                "{}: not sent, the payload would be {len} bytes (XENSTORE_PAYLOAD_MAX is {PAYLOAD_MAX})",
                Doing(Some(op), path)
            ),
            XsError::BadArgument { op, path, what } => write!(f, "{}: not sent, {what}", Doing(Some(op), path)),
            XsError::NotUtf8 { op, path } => write!(f, "{}: the answer is not UTF-8 text", Doing(Some(op), path)),
            XsError::Busy { op, path } => {
                write!(f, "{}: not sent, too many xenstore requests in flight", Doing(Some(op), path))
            }
            XsError::NotInFlight { op, path } => {
                write!(f, "{}: this request already ended (replied, failed or given up)", Doing(Some(op), path))
            }
            XsError::TransactionRetriesExhausted { attempts } => write!(
                f,
                "xenstore transaction: the commit answered EAGAIN on all {attempts} attempts (other domains keep \
                 changing the nodes it touches); giving up"
            ),
        }
    }
}

impl core::error::Error for XsError {}
