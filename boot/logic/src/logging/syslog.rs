//! A record as an RFC 5424 syslog message, one per UDP datagram (RFC 5426), for `syslog=10.0.0.1:514`:
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
//! <14>1 2026-12-05T16:42:01.123456Z web-1 httpd 7 sirocco::net - vif0: reconnected
//! ```
//!
//! - PRI = facility × 8 + severity: facility `user` (1) unless `syslog-facility=` names another ([`Facility`]);
//!   severity from the level ([`severity`]: error 3, warn 4, info 6, debug and trace 7).
//! - TIMESTAMP: the wall clock in RFC 3339, UTC, to the microsecond ([`Rfc3339`]); `-` when the guest does not
//!   know the time.
//! - HOSTNAME: the domain's name (xenstore `name`), APP-NAME: the application's package name, PROCID: the domain
//!   id, MSGID: the record's target. Each is cut to the RFC's length (255, 48, 128, 32) and any character outside
//!   printable US-ASCII becomes `_`; an empty one is `-`.
//! - STRUCTURED-DATA: none (`-`).
//! - MSG: the message with each control character written as `#` and three octal digits (`#012` for a line feed,
//!   as rsyslog writes them), so one record stays one line at the collector. Plain ASCII goes as it is; a message
//!   with other characters is UTF-8 and starts with a BOM, as RFC 5424 asks.
//!
//! A message is cut (on a character boundary, never inside an escape) to fit the datagram: [`MAX_DATAGRAM`] bytes
//! by default, the size every IPv6 receiver must accept (RFC 5426 section 3.2) and which no path fragments.

use super::{truncate_str, MessageBuf, Record};
use core::fmt::{self, Write};
use core::net::{IpAddr, SocketAddr};
use log::Level;

/// The syslog port.
pub const DEFAULT_PORT: u16 = 514;
/// The largest datagram sent: RFC 5426's size that every IPv6 receiver must take, below any path's MTU.
pub const MAX_DATAGRAM: usize = 1180;

/// The facility part of PRI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Facility {
    /// `user` (1): user-level messages, the default (what `logger(1)` uses).
    #[default]
    User,
    /// `daemon` (3): system daemons.
    Daemon,
    /// `local0` .. `local7` (16 .. 23): for the site's own use; the number is 0 to 7.
    Local(u8),
}

impl Facility {
    /// The facility a name gives: `user`, `daemon`, `local0` .. `local7`.
    pub fn from_name(name: &str) -> Option<Facility> {
        match name {
            "user" => Some(Facility::User),
            "daemon" => Some(Facility::Daemon),
            _ => match name.strip_prefix("local")?.as_bytes() {
                &[d @ b'0'..=b'7'] => Some(Facility::Local(d - b'0')),
                _ => None,
            },
        }
    }

    /// Its code (RFC 5424 table 1).
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Local(n) => 16 + n.min(7),
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Facility::User => f.write_str("user"),
            Facility::Daemon => f.write_str("daemon"),
            Facility::Local(n) => write!(f, "local{n}"),
        }
    }
}

/// The RFC 5424 severity of a level: error 3 (Error), warn 4 (Warning), info 6 (Informational), debug and trace 7
/// (Debug).
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// PRI: facility × 8 + severity.
pub fn pri(facility: Facility, level: Level) -> u8 {
    facility.code() * 8 + severity(level)
}

/// A `syslog=` value that is not an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CollectorError<'a>(pub &'a str);

impl fmt::Display for CollectorError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a collector's address (10.0.0.1:514, [fd00::1]:514, or an address alone for port 514; \
             host names are not resolved)",
            self.0
        )
    }
}

impl core::error::Error for CollectorError<'_> {}

/// The collector `syslog=` names: `10.0.0.1:514`, `[fd00::1]:514`, or an address alone for port 514.
pub fn parse_collector(s: &str) -> Result<SocketAddr, CollectorError<'_>> {
    let t = s.trim();
    let addr = if let Ok(a) = t.parse::<SocketAddr>() {
        a
    } else {
        let bare = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(t);
        SocketAddr::new(bare.parse::<IpAddr>().map_err(|_| CollectorError(s))?, DEFAULT_PORT)
    };
    if addr.port() == 0 || addr.ip().is_unspecified() {
        return Err(CollectorError(s));
    }
    Ok(addr)
}

/// A wall-clock time (ns since the Unix epoch) in RFC 3339, UTC, to the microsecond:
/// `2026-12-05T16:42:01.123456Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub u64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let micros = self.0 % 1_000_000_000 / 1000;
        let (y, m, d) = civil_from_days(secs / 86_400);
        let s = secs % 86_400;
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", s / 3600, s / 60 % 60, s % 60)
    }
}

/// Year, month, day of a day number counted from 1970-01-01 (the proleptic Gregorian calendar; Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The fields of the header that are the same for every record of a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The facility.
    pub facility: Facility,
    /// HOSTNAME: the domain's name.
    pub hostname: &'a str,
    /// APP-NAME: the application's package name.
    pub app_name: &'a str,
    /// PROCID: the domain id, if known.
    pub procid: Option<u32>,
}

/// Writes into a fixed buffer; a piece that does not fit whole is refused, and everything after it.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> bool {
        if self.full || self.len + bytes.len() > self.buf.len() {
            self.full = true;
            return false;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        true
    }

    /// A header field: printable US-ASCII only (others become `_`), at most `max` bytes, `-` when empty.
    fn field(&mut self, s: &str, max: usize) {
        if s.is_empty() {
            self.put(b"-");
        }
        for c in s.chars().take(max) {
            let b = if c.is_ascii_graphic() { c as u8 } else { b'_' };
            self.put(&[b]);
        }
    }
}

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.put(s.as_bytes()) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// UTF-8's byte order mark, which starts a MSG that is UTF-8 (RFC 5424 section 6.4).
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes `r` as one RFC 5424 message into `out` (its length is the datagram's limit, normally
/// [`MAX_DATAGRAM`]); returns the length. The message is cut to fit; a buffer too small for the header (under
/// about 500 bytes with the longest fields) gets as much of the header as fits.
pub fn encode(out: &mut [u8], header: &Header<'_>, r: &Record<'_>) -> usize {
    let mut o = Out { buf: out, len: 0, full: false };
    let _ = write!(o, "<{}>1 ", pri(header.facility, r.level));
    match r.wall_ns {
        Some(ns) => {
            // Formatted aside first, so that it goes in whole or not at all.
            let mut stamp = MessageBuf::<32>::new();
            let _ = write!(stamp, "{}", Rfc3339(ns));
            o.put(stamp.as_str().as_bytes());
        }
        None => {
            o.put(b"-");
        }
    }
    o.put(b" ");
    o.field(header.hostname, 255);
    o.put(b" ");
    o.field(header.app_name, 48);
    match header.procid {
        Some(id) => {
            let _ = write!(o, " {id} ");
        }
        None => {
            o.put(b" - ");
        }
    }
    o.field(r.target, 32);
    o.put(b" -");
    if !r.message.is_empty() {
        o.put(b" ");
        if !r.message.is_ascii() {
            o.put(BOM);
        }
        message(&mut o, r.message);
    }
    o.len
}

/// The message, control characters escaped, up to what fits.
fn message(o: &mut Out<'_>, msg: &str) {
    let mut rest = msg;
    while !rest.is_empty() {
        // Runs of characters that need no escape go in one piece, cut to the room left.
        let run = rest.find(|c: char| c.is_ascii_control()).unwrap_or(rest.len());
        if run > 0 {
            let room = o.buf.len() - o.len;
            let piece = truncate_str(&rest[..run], room);
            o.put(piece.as_bytes());
            if piece.len() < run {
                return;
            }
            rest = &rest[run..];
            continue;
        }
        let c = rest.as_bytes()[0];
        let escaped = [b'#', b'0' + (c >> 6), b'0' + (c >> 3 & 7), b'0' + (c & 7)];
        if !o.put(&escaped) {
            return;
        }
        rest = &rest[1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: Header<'static> =
        Header { facility: Facility::User, hostname: "web-1", app_name: "httpd", procid: Some(7) };
    // 2026-12-05T16:42:01.123456789Z
    const WALL: u64 = 1_796_488_921_123_456_789;

    fn rec<'a>(level: Level, target: &'a str, message: &'a str) -> Record<'a> {
        Record { uptime_ns: 0, wall_ns: Some(WALL), level, target, message }
    }

    fn encoded(h: &Header<'_>, r: &Record<'_>, max: usize) -> Vec<u8> {
        let mut buf = vec![0u8; max];
        let n = encode(&mut buf, h, r);
        buf.truncate(n);
        buf
    }

    fn text(h: &Header<'_>, r: &Record<'_>) -> String {
        String::from_utf8(encoded(h, r, MAX_DATAGRAM)).unwrap()
    }

    #[test]
    fn a_record_as_rfc5424() {
        assert_eq!(
            text(&HDR, &rec(Level::Info, "sirocco::net", "vif0: reconnected")),
            "<14>1 2026-12-05T16:42:01.123456Z web-1 httpd 7 sirocco::net - vif0: reconnected"
        );
    }

    #[test]
    fn pri_from_facility_and_level() {
        let cases = [(Level::Error, 11), (Level::Warn, 12), (Level::Info, 14), (Level::Debug, 15), (Level::Trace, 15)];
        for (level, want) in cases {
            assert_eq!(pri(Facility::User, level), want, "{level}");
            assert!(text(&HDR, &rec(level, "t", "m")).starts_with(&format!("<{want}>1 ")));
        }
        assert_eq!(pri(Facility::Local(0), Level::Error), 131);
        assert_eq!(pri(Facility::Local(7), Level::Debug), 191);
        assert_eq!(pri(Facility::Daemon, Level::Warn), 28);
        let local0 = Header { facility: Facility::Local(0), ..HDR };
        assert!(text(&local0, &rec(Level::Warn, "t", "m")).starts_with("<132>1 "));
    }

    #[test]
    fn facility_names() {
        assert_eq!(Facility::from_name("user"), Some(Facility::User));
        assert_eq!(Facility::from_name("daemon"), Some(Facility::Daemon));
        assert_eq!(Facility::from_name("local0"), Some(Facility::Local(0)));
        assert_eq!(Facility::from_name("local7"), Some(Facility::Local(7)));
        assert_eq!(Facility::from_name("local8"), None);
        assert_eq!(Facility::from_name("local"), None);
        assert_eq!(Facility::from_name("kern"), None);
        assert_eq!(Facility::Local(3).to_string(), "local3");
        assert_eq!(Facility::default(), Facility::User);
    }

    #[test]
    fn timestamps() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1_700_000_000_000_000_000, "2023-11-14T22:13:20.000000Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00.000000Z"),
            (951_868_800_000_000_000, "2000-03-01T00:00:00.000000Z"),
            (1_709_164_800_999_999_999, "2024-02-29T00:00:00.999999Z"),
            (4_102_444_800_000_000_000, "2100-01-01T00:00:00.000000Z"),
            (18_446_744_073_709_551_615, "2554-07-21T23:34:33.709551Z"),
            (WALL, "2026-12-05T16:42:01.123456Z"),
        ];
        for (ns, want) in cases {
            assert_eq!(Rfc3339(ns).to_string(), want);
        }
    }

    #[test]
    fn an_unknown_time_and_empty_fields_are_nil() {
        let h = Header { facility: Facility::User, hostname: "", app_name: "", procid: None };
        let r = Record { wall_ns: None, ..rec(Level::Warn, "", "") };
        assert_eq!(text(&h, &r), "<12>1 - - - - - -");
    }

    #[test]
    fn header_fields_are_printable_ascii_and_cut_to_their_limits() {
        let long_target = "sirocco_drivers::netfront::something::deeper";
        let h = Header { hostname: "my host\u{e9}", app_name: &"a".repeat(60), ..HDR };
        let t = text(&h, &rec(Level::Info, long_target, "m"));
        let fields: Vec<&str> = t.split(' ').collect();
        assert_eq!(fields[2], "my_host_");
        assert_eq!(fields[3], "a".repeat(48));
        assert_eq!(fields[5], &long_target[..32]);
        assert_eq!(fields[5].len(), 32);
        let h = Header { hostname: &"h".repeat(300), ..HDR };
        assert_eq!(text(&h, &rec(Level::Info, "t", "m")).split(' ').nth(2).unwrap().len(), 255);
    }

    #[test]
    fn control_characters_in_the_message_are_escaped() {
        let t = text(&HDR, &rec(Level::Info, "t", "two\nlines\tand\r\x1b[0m\x7f end"));
        assert!(t.ends_with(" - two#012lines#011and#015#033[0m#177 end"), "{t}");
        // '#' itself and quotes, brackets and backslashes go as they are.
        let t = text(&HDR, &rec(Level::Info, "t", r#"#1 "q" [x] \ ]"#));
        assert!(t.ends_with(r#" - #1 "q" [x] \ ]"#), "{t}");
    }

    #[test]
    fn a_message_that_is_not_ascii_starts_with_a_bom() {
        let bytes = encoded(&HDR, &rec(Level::Info, "t", "café"), MAX_DATAGRAM);
        let want = [&b"<14>1 2026-12-05T16:42:01.123456Z web-1 httpd 7 t - "[..], BOM, "café".as_bytes()].concat();
        assert_eq!(bytes, want);
        assert!(!text(&HDR, &rec(Level::Info, "t", "plain")).contains('\u{feff}'));
    }

    #[test]
    fn the_message_is_cut_to_the_datagram() {
        let head = "<14>1 2026-12-05T16:42:01.123456Z web-1 httpd 7 t - ";
        let long = "x".repeat(2000);
        let bytes = encoded(&HDR, &rec(Level::Info, "t", &long), MAX_DATAGRAM);
        assert_eq!(bytes.len(), MAX_DATAGRAM);
        assert_eq!(bytes, [head.as_bytes(), &long.as_bytes()[..MAX_DATAGRAM - head.len()]].concat());
        // Never inside a character...
        let bytes = encoded(&HDR, &rec(Level::Info, "t", "éééé"), head.len() + BOM.len() + 5);
        assert_eq!(&bytes[head.len() + BOM.len()..], "éé".as_bytes());
        // ...nor inside an escape.
        let bytes = encoded(&HDR, &rec(Level::Info, "t", "ab\ncd"), head.len() + 4);
        assert_eq!(&bytes[head.len()..], b"ab");
        let bytes = encoded(&HDR, &rec(Level::Info, "t", "ab\ncd"), head.len() + 6);
        assert_eq!(&bytes[head.len()..], b"ab#012");
        // A buffer too small for the header holds a cut header, never more than the buffer.
        assert_eq!(encoded(&HDR, &rec(Level::Info, "t", "m"), 10), b"<14>1 ");
        assert_eq!(encoded(&HDR, &rec(Level::Info, "t", "m"), 0), b"");
    }

    #[test]
    fn collectors() {
        assert_eq!(parse_collector("10.0.0.1:514"), Ok("10.0.0.1:514".parse().unwrap()));
        assert_eq!(parse_collector("10.0.0.1:5140"), Ok("10.0.0.1:5140".parse().unwrap()));
        assert_eq!(parse_collector("10.0.0.1"), Ok("10.0.0.1:514".parse().unwrap()));
        assert_eq!(parse_collector("[fd00::1]:514"), Ok("[fd00::1]:514".parse().unwrap()));
        assert_eq!(parse_collector("[fd00::1]"), Ok("[fd00::1]:514".parse().unwrap()));
        assert_eq!(parse_collector("fd00::1"), Ok("[fd00::1]:514".parse().unwrap()));
        for bad in ["logs.example:514", "10.0.0.1:0", "0.0.0.0:514", "10.0.0.1:99999", "", "[fd00::1]:"] {
            assert_eq!(parse_collector(bad), Err(CollectorError(bad)), "{bad}");
        }
        let e = CollectorError("logs.example").to_string();
        assert!(e.contains("\"logs.example\"") && e.contains("not resolved"), "{e}");
    }
}
