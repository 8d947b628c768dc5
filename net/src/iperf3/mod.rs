//! The server side of iperf3's protocol (ESnet's network throughput tester), so that an unmodified `iperf3 -c`
//! measures a Sirocco guest. Free of I/O: [`Control`] consumes what the client sent on the control connection and
//! says what to send back and what to do next; the app moves the bytes and the test's data.
//!
//! # The protocol, as iperf3 3.x speaks it
//! Everything arrives on one port ([`PORT`], 5201). The client opens the *control connection* and sends its
//! [cookie](Cookie): 36 characters of `[a-z2-7]` and a NUL ([`COOKIE_LEN`] bytes). From then on the server sends
//! one-byte [states](State): `PARAM_EXCHANGE`, to which the client answers with its parameters as JSON (a 4-byte
//! big-endian length, then the text: [`TestParams`]); `CREATE_STREAMS`, on which the client opens its *streams*:
//! for TCP further connections to the same port that each start with the same cookie, for UDP a datagram from
//! each stream's own port ([`udp`]); then `TEST_START` and `TEST_RUNNING`, and the data flows (client to server;
//! server to client with `-R`; both with `--bidir`). The client ends the test: it sends `TEST_END`, the server
//! answers `EXCHANGE_RESULTS`, the client sends its results JSON, the server sends its own ([`ServerResults`]:
//! what each stream moved, as this side counted it) and `DISPLAY_RESULTS`, and the client says `IPERF_DONE`. A
//! server busy with a test answers any other client's connection with the single byte `ACCESS_DENIED`; a server
//! that refuses a test sends `SERVER_ERROR` and two 4-byte big-endian numbers, iperf3's error code (which the
//! client prints as text) and an errno.
//!
//! Stream ids are 1, 3, 4, 5... in the order the streams connected ([`stream_id`]), on both sides; a client
//! refuses results that name a stream it does not have.
//!
//! # Bounds
//! JSON messages longer than [`MAX_JSON_LEN`] are refused from their length alone (nothing is allocated for
//! them); at most [`MAX_STREAMS`] streams, blocks of at most [`MAX_BLOCK_LEN`] bytes and tests of at most
//! [`MAX_DURATION_S`] seconds, as iperf3 itself allows; UDP datagrams of at most [`MAX_UDP_BLOCK_LEN`] bytes (one
//! Ethernet frame). SCTP tests are refused with iperf3's "not implemented" error (the client prints "an option
//! you are trying to set is not implemented yet"), and so is anything else this server cannot do (the reason is
//! in [`Error`], for the guest's log).

use alloc::string::String;
use core::fmt;

mod control;
mod params;
#[cfg(test)]
mod recorded;
mod results;
pub mod udp;

pub use control::{Control, Event, Phase};
pub use params::{Direction, Protocol, TestParams};
pub use results::{ClientResults, ClientStream, CpuUtil, ServerResults, StreamResult};

/// The port an iperf3 server listens on, for the control connection and the streams alike.
pub const PORT: u16 = 5201;
/// Bytes of a cookie on the wire: 36 characters and a NUL.
pub const COOKIE_LEN: usize = 37;
/// Longest JSON message (parameters or results) accepted; a longer one is refused from its length prefix.
pub const MAX_JSON_LEN: u32 = 64 * 1024;
/// Most parallel streams iperf3 allows (`-P`).
pub const MAX_STREAMS: u32 = 128;
/// Largest block iperf3 allows (`-l`).
pub const MAX_BLOCK_LEN: u64 = 1 << 20;
/// Longest test iperf3 allows (`-t`), in seconds.
pub const MAX_DURATION_S: u64 = 86_400;
/// Longest omitted start (`-O`) accepted, in seconds.
pub const MAX_OMIT_S: u64 = 600;
/// The block length of a TCP test whose parameters name none (iperf3's default, 128 KiB).
pub const DEFAULT_BLOCK_LEN: u64 = 128 * 1024;
/// The datagram length of a UDP test whose parameters name none (iperf3's default).
pub const DEFAULT_UDP_BLOCK_LEN: u64 = 1460;
/// Largest UDP datagram payload accepted: one 1500-byte Ethernet frame less the IPv4 and UDP headers (the stack
/// neither sends nor reassembles IP fragments). iperf3's client picks its control connection's MSS, 1448 here.
pub const MAX_UDP_BLOCK_LEN: u64 = 1472;
/// The rate of a UDP test whose parameters name none (iperf3's default, 1 Mbit/s), bits per second.
pub const DEFAULT_UDP_RATE_BPS: u64 = 1 << 20;
/// A test's length when the parameters name none, in seconds (iperf3's default).
pub const DEFAULT_DURATION_S: u64 = 10;

/// The one-byte messages of the control connection (`iperf_api.h`), each sent as a signed char.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Server: the streams are connected, the test starts.
    TestStart,
    /// Server: data flows.
    TestRunning,
    /// Client: the test is over (time, bytes or blocks reached).
    TestEnd,
    /// Server: send your parameters.
    ParamExchange,
    /// Server: open your streams.
    CreateStreams,
    /// Server: the server is going away; the test ends without results.
    ServerTerminate,
    /// Client: the client is going away (interrupted).
    ClientTerminate,
    /// Server: send your results, then read mine.
    ExchangeResults,
    /// Server: results exchanged, show them.
    DisplayResults,
    /// Not sent on the wire by 3.x; listed so that every number has a name.
    IperfStart,
    /// Client: all done, closing.
    IperfDone,
    /// Server: busy with another client's test (or a stream's cookie did not match).
    AccessDenied,
    /// Server: the test is refused; two 4-byte big-endian numbers follow (iperf3's error code, an errno).
    ServerError,
}

impl State {
    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        (match self {
            State::TestStart => 1i8,
            State::TestRunning => 2,
            State::TestEnd => 4,
            State::ParamExchange => 9,
            State::CreateStreams => 10,
            State::ServerTerminate => 11,
            State::ClientTerminate => 12,
            State::ExchangeResults => 13,
            State::DisplayResults => 14,
            State::IperfStart => 15,
            State::IperfDone => 16,
            State::AccessDenied => -1,
            State::ServerError => -2,
        }) as u8
    }

    /// The state a byte names (`None`: no state has that number; 3, 5-8 are defined but never sent).
    pub fn from_byte(b: u8) -> Option<State> {
        const ALL: [State; 13] = [
            State::TestStart,
            State::TestRunning,
            State::TestEnd,
            State::ParamExchange,
            State::CreateStreams,
            State::ServerTerminate,
            State::ClientTerminate,
            State::ExchangeResults,
            State::DisplayResults,
            State::IperfStart,
            State::IperfDone,
            State::AccessDenied,
            State::ServerError,
        ];
        ALL.into_iter().find(|s| s.byte() == b)
    }
}

/// iperf3's error codes (`i_errno`, `iperf_api.h`) that this server sends in a `SERVER_ERROR`; the client prints
/// its own text for each.
pub mod code {
    /// "test duration too long (maximum = 86400 seconds)"
    pub const DURATION: i32 = 5;
    /// "number of parallel streams too large (maximum = 128)"
    pub const NUM_STREAMS: i32 = 6;
    /// "block size too large (maximum = 1048576 bytes)"
    pub const BLOCK_SIZE: i32 = 7;
    /// "bogus value for --omit"
    pub const OMIT: i32 = 12;
    /// "an option you are trying to set is not implemented yet"
    pub const UNIMPLEMENTED: i32 = 13;
    /// "block size invalid (minimum = 16 bytes, maximum = 65507 bytes)" (for UDP)
    pub const UDP_BLOCK_SIZE: i32 = 20;
    /// "cannot be both reverse and bidirectional"
    pub const REVERSE_BIDIR: i32 = 25;
    /// "unable to receive cookie at server"
    pub const RECV_COOKIE: i32 = 106;
    /// "received an unknown control message"
    pub const MESSAGE: i32 = 110;
    /// "unable to receive parameters from client"
    pub const RECV_PARAMS: i32 = 114;
    /// "unable to receive results from client/server"
    pub const RECV_RESULTS: i32 = 117;
    /// "unable to start stream listener"
    pub const STREAM_LISTEN: i32 = 202;
    /// "unable to accept stream connection"
    pub const STREAM_ACCEPT: i32 = 204;
}

/// errno values sent after a code, which the client prints after it for some codes (Linux numbering).
pub mod errno {
    /// "Invalid argument"
    pub const EINVAL: i32 = 22;
    /// "Message too long"
    pub const EMSGSIZE: i32 = 90;
    /// "Connection timed out"
    pub const ETIMEDOUT: i32 = 110;
}

/// A test's cookie: 36 printable ASCII characters (iperf3 draws them from `[a-z2-7]`), NUL-terminated on the
/// wire. The control connection and every stream of a test carry the same one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cookie([u8; COOKIE_LEN - 1]);

impl Cookie {
    /// The cookie in `wire` (exactly [`COOKIE_LEN`] bytes): [`Error::BadCookie`] unless 36 printable ASCII
    /// characters (no spaces) and a NUL.
    pub fn parse(wire: &[u8]) -> Result<Cookie, Error> {
        let (text, nul) = match wire {
            [text @ .., nul] if wire.len() == COOKIE_LEN => (text, *nul),
            _ => return Err(Error::BadCookie),
        };
        if nul != 0 || !text.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadCookie);
        }
        let mut c = [0u8; COOKIE_LEN - 1];
        c.copy_from_slice(text);
        Ok(Cookie(c))
    }

    /// Whether a stream's first [`COOKIE_LEN`] bytes are this cookie.
    pub fn matches(&self, wire: &[u8]) -> bool {
        Cookie::parse(wire).is_ok_and(|c| c == *self)
    }

    /// The 36 characters.
    pub fn as_str(&self) -> &str {
        // Checked to be ASCII by `parse`.
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie({})", self.as_str())
    }
}

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which JSON message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// The client's test parameters.
    Params,
    /// The client's results.
    Results,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Message::Params => "parameters",
            Message::Results => "results",
        })
    }
}

/// Why a test failed or was refused, for the guest's log; [`Error::server_error`] is what the client is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The control connection did not start with a cookie (not an iperf3 client?).
    BadCookie,
    /// A JSON message announced as longer than [`MAX_JSON_LEN`] (refused from its length; nothing allocated).
    JsonTooLong {
        /// Which message.
        what: Message,
        /// The length it announced.
        len: u32,
    },
    /// A JSON message that does not parse, or lacks a field it must have.
    BadJson {
        /// Which message.
        what: Message,
        /// What is wrong with it.
        detail: String,
    },
    /// Parameters this server does not accept: something it does not implement (UDP...) or a value out of
    /// iperf3's range.
    Refused {
        /// iperf3's error code sent to the client ([`code`]).
        code: i32,
        /// What and why, for the guest's log.
        reason: String,
    },
    /// A state byte that is not a state, or not one the client may send now.
    UnexpectedState {
        /// The byte.
        byte: u8,
        /// Where the test was.
        phase: Phase,
    },
    /// The client sent `CLIENT_TERMINATE` (it was interrupted).
    ClientTerminated {
        /// Where the test was.
        phase: Phase,
    },
    /// The client closed the control connection before the test was over.
    ClientGone {
        /// Where the test was.
        phase: Phase,
    },
    /// The client sent nothing, and no data moved, for longer than the app waits.
    TimedOut {
        /// Where the test was.
        phase: Phase,
    },
    /// Not all streams connected in time (the app's deadline).
    StreamsMissing {
        /// Streams that connected.
        connected: u32,
        /// Streams the parameters asked for.
        wanted: u32,
    },
    /// The server is shutting down ([`Control::abort`] with it sends `SERVER_TERMINATE`).
    ServerTerminated,
}

impl Error {
    /// The `SERVER_ERROR` numbers the client is sent for this error (iperf3's code, an errno), or `None` when
    /// nothing is sent (the client left, or was sent something else).
    pub fn server_error(&self) -> Option<(i32, i32)> {
        match self {
            Error::BadCookie => Some((code::RECV_COOKIE, errno::EINVAL)),
            Error::JsonTooLong { what: Message::Params, .. } => Some((code::RECV_PARAMS, errno::EMSGSIZE)),
            Error::JsonTooLong { what: Message::Results, .. } => Some((code::RECV_RESULTS, errno::EMSGSIZE)),
            Error::BadJson { what: Message::Params, .. } => Some((code::RECV_PARAMS, errno::EINVAL)),
            Error::BadJson { what: Message::Results, .. } => Some((code::RECV_RESULTS, errno::EINVAL)),
            Error::Refused { code, .. } => Some((*code, 0)),
            Error::UnexpectedState { .. } => Some((code::MESSAGE, 0)),
            Error::StreamsMissing { .. } => Some((code::STREAM_ACCEPT, errno::ETIMEDOUT)),
            Error::ClientTerminated { .. }
            | Error::ClientGone { .. }
            | Error::TimedOut { .. }
            | Error::ServerTerminated => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadCookie => {
                f.write_str("the connection did not start with an iperf3 cookie (36 characters and a NUL)")
            }
            Error::JsonTooLong { what, len } => {
                write!(f, "the client's {what} announced {len} bytes of JSON, more than the {MAX_JSON_LEN} accepted")
            }
            Error::BadJson { what, detail } => write!(f, "the client's {what} are not usable JSON: {detail}"),
            Error::Refused { reason, .. } => write!(f, "test refused: {reason}"),
            Error::UnexpectedState { byte, phase } => {
                write!(f, "unexpected control message {} during {phase}", *byte as i8)
            }
            Error::ClientTerminated { phase } => write!(f, "the client terminated the test during {phase}"),
            Error::ClientGone { phase } => write!(f, "the client closed the control connection during {phase}"),
            Error::TimedOut { phase } => write!(f, "the client went silent during {phase}"),
            Error::StreamsMissing { connected, wanted } => {
                write!(f, "only {connected} of {wanted} streams connected in time")
            }
            Error::ServerTerminated => f.write_str("the server is shutting down"),
        }
    }
}

impl core::error::Error for Error {}

/// The id of the stream that connected `index`th (from 0): 1, 3, 4, 5... (iperf3 skips 2, on both sides).
pub const fn stream_id(index: u32) -> u32 {
    if index == 0 {
        1
    } else {
        index + 2
    }
}

/// How long a sender paced at `rate_bps` bits per second (iperf3's `-b`; 0: not paced) waits before writing more,
/// having written `sent` bytes in `elapsed_ns`: 0 while it is at or under the rate, else until the rate is back
/// down to it.
pub fn pacing_delay_ns(sent: u64, rate_bps: u64, elapsed_ns: u64) -> u64 {
    if rate_bps == 0 {
        return 0;
    }
    let due_ns = (sent as u128 * 8 * 1_000_000_000) / rate_bps as u128;
    (due_ns.saturating_sub(elapsed_ns as u128)).min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bytes_are_iperf3s() {
        let wire: [(State, u8); 13] = [
            (State::TestStart, 1),
            (State::TestRunning, 2),
            (State::TestEnd, 4),
            (State::ParamExchange, 9),
            (State::CreateStreams, 10),
            (State::ServerTerminate, 11),
            (State::ClientTerminate, 12),
            (State::ExchangeResults, 13),
            (State::DisplayResults, 14),
            (State::IperfStart, 15),
            (State::IperfDone, 16),
            (State::AccessDenied, 0xff),
            (State::ServerError, 0xfe),
        ];
        for (s, b) in wire {
            assert_eq!(s.byte(), b, "{s:?}");
            assert_eq!(State::from_byte(b), Some(s));
        }
        for unused in [0u8, 3, 5, 6, 7, 8, 17, 0x80, 0xfd] {
            assert_eq!(State::from_byte(unused), None, "{unused}");
        }
    }

    #[test]
    fn cookie_is_36_printable_characters_and_a_nul() {
        let wire = b"abcdefghijklmnopqrstuvwxyz234567abcd\0";
        let c = Cookie::parse(wire).unwrap();
        assert_eq!(c.as_str(), "abcdefghijklmnopqrstuvwxyz234567abcd");
        assert!(c.matches(wire));
        assert!(!c.matches(b"abcdefghijklmnopqrstuvwxyz234567abce\0"));
        assert!(!c.matches(&wire[..36]));
    }

    #[test]
    fn bad_cookies_are_refused() {
        let mut no_nul = *b"abcdefghijklmnopqrstuvwxyz234567abcd\0";
        no_nul[36] = b'x';
        let mut space = *b"abcdefghijklmnopqrstuvwxyz234567abcd\0";
        space[3] = b' ';
        let http = b"GET / HTTP/1.1\r\nHost: 10.0.0.7\r\n\r\nxyz";
        for bad in [&no_nul[..], &space[..], &http[..37], &[0u8; 37][..], &b"short\0"[..], &[b'a'; 38][..]] {
            assert_eq!(Cookie::parse(bad), Err(Error::BadCookie), "{bad:?}");
        }
    }

    #[test]
    fn stream_ids_skip_two() {
        let ids: Vec<u32> = (0..5).map(stream_id).collect();
        assert_eq!(ids, [1, 3, 4, 5, 6]);
    }

    #[test]
    fn pacing_waits_only_when_ahead_of_the_rate() {
        // 1 Mbit/s = 125,000 bytes per second.
        assert_eq!(pacing_delay_ns(125_000, 1_000_000, 1_000_000_000), 0);
        assert_eq!(pacing_delay_ns(125_000, 1_000_000, 2_000_000_000), 0);
        assert_eq!(pacing_delay_ns(250_000, 1_000_000, 1_000_000_000), 1_000_000_000);
        assert_eq!(pacing_delay_ns(u64::MAX, 1, 0), u64::MAX);
        assert_eq!(pacing_delay_ns(u64::MAX, 0, 0), 0, "0: not paced");
    }

    #[test]
    fn errors_say_what_the_client_is_sent() {
        assert_eq!(Error::BadCookie.server_error(), Some((106, 22)));
        let long = Error::JsonTooLong { what: Message::Params, len: u32::MAX };
        assert_eq!(long.server_error(), Some((114, 90)));
        assert!(long.to_string().contains("4294967295"), "{long}");
        let refused = Error::Refused { code: code::UNIMPLEMENTED, reason: "UDP tests are not supported".into() };
        assert_eq!(refused.server_error(), Some((13, 0)));
        assert_eq!(refused.to_string(), "test refused: UDP tests are not supported");
        assert_eq!(Error::ClientGone { phase: Phase::Running }.server_error(), None);
        let odd = Error::UnexpectedState { byte: 0xfb, phase: Phase::Running };
        assert_eq!(odd.to_string(), "unexpected control message -5 during the test");
    }
}
