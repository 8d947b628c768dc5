//! The logger's logic: which records are kept ([`filter`]: `log=info,sirocco_net=debug` on the command line), the
//! in-memory ring of the last records ([`ring`]: `logring=BYTES`), and their RFC 5424 form for a syslog collector
//! ([`syslog`]: `syslog=10.0.0.1:514`).
//!
//! The platform's logger (`sirocco-boot`'s `logger.rs`) stamps each record, writes it to the console, keeps it in
//! the ring and hands it to the runtime, which queues it for the collector (`sirocco::logs`); everything those steps
//! compute is here, tested on the host. It lives beside the command line because the logger starts with it, before
//! the heap exists (so the filter does not allocate), and because none of it is network code: the runtime only
//! sends the bytes [`syslog::encode`] makes.

pub mod filter;
pub mod ring;
pub mod syslog;

use alloc::string::String;
use core::fmt;

/// One log record as the logger keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Time since boot, ns.
    pub uptime_ns: u64,
    /// Wall-clock time, ns since the Unix epoch, when the guest knows it ([`wall_clock_known`]).
    pub wall_ns: Option<u64>,
    /// Its level.
    pub level: log::Level,
    /// Its target (by default the module path of the code that logged it).
    pub target: &'a str,
    /// The formatted message.
    pub message: &'a str,
}

/// A [`Record`] that owns its text (taken out of a ring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Time since boot, ns.
    pub uptime_ns: u64,
    /// Wall-clock time, ns since the Unix epoch, when known.
    pub wall_ns: Option<u64>,
    /// Its level.
    pub level: log::Level,
    /// Its target.
    pub target: String,
    /// The formatted message.
    pub message: String,
}

impl OwnedRecord {
    /// The record, borrowed.
    pub fn as_record(&self) -> Record<'_> {
        Record {
            uptime_ns: self.uptime_ns,
            wall_ns: self.wall_ns,
            level: self.level,
            target: &self.target,
            message: &self.message,
        }
    }
}

/// The earliest wall-clock time taken as known: 2000-01-01T00:00:00Z. Xen's wall clock reads from 1970 when
/// nobody set it, and a stamp from 1970 would be worse than none.
pub const EARLIEST_WALL_NS: u64 = 946_684_800 * 1_000_000_000;

/// `ns` (Xen's wall clock) if it can be a real time ([`EARLIEST_WALL_NS`] or later).
pub fn wall_clock_known(ns: Option<u64>) -> Option<u64> {
    ns.filter(|&ns| ns >= EARLIEST_WALL_NS)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A message formatted into `N` bytes on the stack: what does not fit is cut at a character boundary and the
/// text ends with `...`. The logger formats each record once into one, for the ring and the collector.
pub struct MessageBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> Default for MessageBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MessageBuf<N> {
    const MARK: &'static str = "...";

    /// An empty buffer.
    pub const fn new() -> Self {
        MessageBuf { buf: [0; N], len: 0, truncated: false }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so this cannot fail.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Whether something did not fit (the text then ends with `...`).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn append(&mut self, s: &str) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
    }
}

impl<const N: usize> fmt::Write for MessageBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        if self.len + s.len() <= N {
            self.append(s);
            return Ok(());
        }
        self.truncated = true;
        // Room for the mark: cut what is there and what comes to N - 3 bytes in all, on a character boundary.
        let room = N.saturating_sub(Self::MARK.len());
        if self.len > room {
            let kept = truncate_str(self.as_str(), room).len();
            self.len = kept;
        } else {
            let part = truncate_str(s, room - self.len);
            self.append(part);
        }
        let mark = truncate_str(Self::MARK, N - self.len);
        self.append(mark);
        Ok(())
    }
}

/// Why a `logring=` size cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeError<'a>(pub &'a str);

impl fmt::Display for SizeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a size (bytes, or with K or M for KiB or MiB: 65536, 64K, 1M)", self.0)
    }
}

impl core::error::Error for SizeError<'_> {}

/// A byte count as the command line writes one: `65536`, `64K` / `64k` / `64KiB`, `1M` / `1MiB`.
pub fn parse_size(s: &str) -> Result<usize, SizeError<'_>> {
    let t = s.trim();
    let (digits, shift) = match t.find(|c: char| !c.is_ascii_digit()) {
        None => (t, 0),
        Some(i) => match &t[i..] {
            "K" | "k" | "KiB" => (&t[..i], 10),
            "M" | "m" | "MiB" => (&t[..i], 20),
            _ => return Err(SizeError(s)),
        },
    };
    let n: usize = digits.parse().map_err(|_| SizeError(s))?;
    n.checked_mul(1 << shift).ok_or(SizeError(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn a_message_that_fits_is_kept_whole() {
        let mut b = MessageBuf::<16>::new();
        write!(b, "{} + {}", 2, 40).unwrap();
        assert_eq!((b.as_str(), b.truncated()), ("2 + 40", false));
        let mut b = MessageBuf::<6>::new();
        b.write_str("abcdef").unwrap();
        assert_eq!((b.as_str(), b.truncated()), ("abcdef", false));
    }

    #[test]
    fn a_long_message_is_cut_on_a_character_boundary_and_marked() {
        let mut b = MessageBuf::<10>::new();
        let long = "abcdefghijklmnop";
        write!(b, "{long}").unwrap();
        assert_eq!((b.as_str(), b.truncated()), ("abcdefg...", true));
        write!(b, "more").unwrap();
        assert_eq!(b.as_str(), "abcdefg...");
        // In pieces: what was there already is cut back to make room for the mark.
        let mut b = MessageBuf::<10>::new();
        for piece in ["abcd", "efghi", "jk"] {
            b.write_str(piece).unwrap();
        }
        assert_eq!(b.as_str(), "abcdefg...");
        // "é" is two bytes: never split.
        let mut b = MessageBuf::<7>::new();
        b.write_str("aéééé").unwrap();
        assert_eq!(b.as_str(), "aé...");
        let mut b = MessageBuf::<2>::new();
        b.write_str("abc").unwrap();
        assert_eq!(b.as_str(), "..");
    }

    #[test]
    fn wall_clock_before_2000_is_unknown() {
        assert_eq!(wall_clock_known(None), None);
        assert_eq!(wall_clock_known(Some(5_000_000_000)), None);
        assert_eq!(wall_clock_known(Some(EARLIEST_WALL_NS)), Some(EARLIEST_WALL_NS));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("lots"), Err(SizeError("lots")));
        assert_eq!(parse_size("64KB"), Err(SizeError("64KB")));
        assert_eq!(parse_size(""), Err(SizeError("")));
        assert_eq!(parse_size("99999999999999999999M"), Err(SizeError("99999999999999999999M")));
        assert!(SizeError("x").to_string().contains("64K"));
    }
}
