//! Request heads (RFC 9112): found incrementally ([`HeadParser`]: every byte is looked at once however the bytes
//! arrive), then parsed once, strictly. What a proxy in front might read differently is refused, not guessed:
//! bare CR or LF, control characters, whitespace before a colon, folded lines, a `Content-Length` that is not
//! plain digits or appears twice, `Transfer-Encoding` (chunked is not implemented: 501; anything else, or with
//! `Content-Length`, or in HTTP/1.0: 400), a missing or repeated `Host` in HTTP/1.1, request targets outside
//! RFC 3986's characters.

use alloc::vec::Vec;
use core::fmt;

use super::{MAX_BODY, MAX_HEAD, MAX_HEADERS};

/// The header fields of a request, in order (at most [`MAX_HEADERS`]; no allocation).
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    fields: [(&'a str, &'a str); MAX_HEADERS],
    len: usize,
}

impl<'a> Headers<'a> {
    const EMPTY: Headers<'static> = Headers { fields: [("", ""); MAX_HEADERS], len: 0 };

    /// The fields as (name, value) pairs; values have their surrounding whitespace removed.
    pub fn as_slice(&self) -> &[(&'a str, &'a str)] {
        &self.fields[..self.len]
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first value of the field `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.as_slice().iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    fn count(&self, name: &str) -> usize {
        self.as_slice().iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }
}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Headers<'_> {}

/// A parsed request; the slices borrow the connection's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The request target (`/stats`).
    pub target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The header fields, in order.
    pub headers: Headers<'a>,
    /// The body's length as declared by `Content-Length` (0 without one).
    pub content_length: usize,
    /// The body, when it was buffered (see [`super::BodyMode`]); empty when it was streamed to the handler.
    pub body: &'a [u8],
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` (it may wait for `100 Continue` before sending the body).
    pub expect_continue: bool,
}

impl Request<'_> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The request in wire form (head, then [`Request::body`]): it parses back to an equal request.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [self.method, " ", self.target, if self.minor == 1 { " HTTP/1.1\r\n" } else { " HTTP/1.0\r\n" }] {
            out.extend_from_slice(part.as_bytes());
        }
        for (name, value) in self.headers.as_slice() {
            for part in [*name, ": ", *value, "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
        out
    }
}

/// Why a request was refused (each maps to a status code); the connection is closed after the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Malformed request line or header, or ambiguous framing: 400.
    Malformed(&'static str),
    /// Head larger than [`MAX_HEAD`] or more than [`MAX_HEADERS`] headers: 431.
    HeadTooLarge,
    /// Body larger than [`MAX_BODY`]: 413.
    BodyTooLarge,
    /// `Expect` other than `100-continue`: 417.
    Expectation,
    /// A feature this server does not implement (chunked request bodies): 501.
    Unsupported(&'static str),
    /// No memory for the request now (the connections' memory budget, or the heap, refused it): 503.
    Overloaded,
    /// Not HTTP/1.0 or 1.1: 505.
    Version,
}

impl BadRequest {
    /// The status code and reason phrase to answer with.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            BadRequest::Malformed(_) => (400, "Bad Request"),
            BadRequest::HeadTooLarge => (431, "Request Header Fields Too Large"),
            BadRequest::BodyTooLarge => (413, "Content Too Large"),
            BadRequest::Expectation => (417, "Expectation Failed"),
            BadRequest::Unsupported(_) => (501, "Not Implemented"),
            BadRequest::Overloaded => (503, "Service Unavailable"),
            BadRequest::Version => (505, "HTTP Version Not Supported"),
        }
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, reason) = self.status();
        match self {
            BadRequest::Malformed(why) | BadRequest::Unsupported(why) => write!(f, "{code} {reason}: {why}"),
            _ => write!(f, "{code} {reason}"),
        }
    }
}

/// Finds the end of a request head as its bytes arrive, looking at each byte once: feed it the connection's
/// unconsumed bytes (the same start, growing between calls) until it returns the head's length, then
/// [`parse_head`] that many bytes. Refuses a bare CR or LF at once, and a head not ended within [`MAX_HEAD`].
#[derive(Clone, Debug, Default)]
pub struct HeadParser {
    /// Bytes of the current head already looked at.
    scanned: usize,
    /// Bytes looked at over the parser's life (finding heads and parsing them): a measure of its work.
    work: u64,
}

impl HeadParser {
    /// A parser at the start of a request.
    pub const fn new() -> HeadParser {
        HeadParser { scanned: 0, work: 0 }
    }

    /// Continues looking for the end of the head at the start of `buf`: `Ok(Some(len))` once the head (`len`
    /// bytes, ending with the empty line) is there; then the parser is ready for the next request.
    pub fn find_head(&mut self, buf: &[u8]) -> Result<Option<usize>, BadRequest> {
        let limit = buf.len().min(MAX_HEAD);
        for i in self.scanned..limit {
            self.work += 1;
            let prev = if i > 0 { buf[i - 1] } else { 0 };
            match buf[i] {
                b'\n' if prev != b'\r' => return Err(BadRequest::Malformed("bare LF (line ends must be CRLF)")),
                b'\n' if i >= 3 && &buf[i - 3..i] == b"\r\n\r" => {
                    self.scanned = 0;
                    self.work += (i + 1) as u64; // parse_head reads it once more
                    return Ok(Some(i + 1));
                }
                b'\n' => {}
                _ if prev == b'\r' => return Err(BadRequest::Malformed("bare CR (line ends must be CRLF)")),
                _ => {}
            }
        }
        self.scanned = limit;
        if limit == MAX_HEAD {
            Err(BadRequest::HeadTooLarge)
        } else {
            Ok(None)
        }
    }

    /// Bytes looked at so far, over every head found (each head is counted twice: found, then parsed).
    pub fn work(&self) -> u64 {
        self.work
    }
}

/// RFC 9110 5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// RFC 3986 characters of a path and query (`pchar`, `/`, `?`), with `%` only as a `%XX` escape.
fn is_origin_form(t: &str) -> bool {
    let b = t.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if !(b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 2;
            }
            c if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&c) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// `http://host[:port]/path?query` (RFC 9112 3.2.2): a scheme, an authority of plain characters (no userinfo: RFC
/// 9110 4.2.4 asks recipients to treat it as an error), then an origin-form path (or nothing).
fn is_absolute_form(t: &str) -> bool {
    let Some((scheme, rest)) = t.split_once("://") else { return false };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    !authority.is_empty()
        && authority.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]".contains(&c))
        && (path.is_empty() || is_origin_form(path))
}

/// A field value's byte (RFC 9110 5.5): visible ASCII, space, tab, or non-ASCII (obs-text).
fn is_field_byte(b: u8) -> bool {
    b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b) || b >= 0x80
}

/// The lines of a head (without its final empty line), each of which but the last must end with CRLF. A stray CR
/// inside a line is left for the callers' character checks to refuse.
struct CrlfLines<'a>(Option<&'a [u8]>);

impl<'a> Iterator for CrlfLines<'a> {
    type Item = Result<&'a [u8], BadRequest>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.0?;
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            self.0 = None;
            return Some(Ok(rest));
        };
        self.0 = Some(&rest[lf + 1..]);
        Some(rest[..lf].strip_suffix(b"\r").ok_or(BadRequest::Malformed("bare LF (line ends must be CRLF)")))
    }
}

/// Parses a request head: `head` is exactly what [`HeadParser::find_head`] found (ending with the empty line).
/// The body is not looked at; [`Request::body`] is empty and [`Request::content_length`] says how much follows.
pub fn parse_head(head: &[u8]) -> Result<Request<'_>, BadRequest> {
    use BadRequest::Malformed;
    let Some(head) = head.strip_suffix(b"\r\n\r\n".as_slice()) else {
        return Err(Malformed("head does not end with an empty line"));
    };
    let mut lines = CrlfLines(Some(head));
    let request_line = lines.next().unwrap_or(Ok(b""))?;
    if request_line.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(Malformed("request line has a byte other than visible ASCII and space"));
    }
    // Visible ASCII and spaces only, so UTF-8.
    let request_line = core::str::from_utf8(request_line).map_err(|_| Malformed("request line is not ASCII"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed("request line is not METHOD TARGET VERSION"));
    };
    if !is_token(method) {
        return Err(Malformed("bad method"));
    }
    let target_ok = is_origin_form(target) || is_absolute_form(target) || (target == "*" && method == "OPTIONS");
    if !target_ok {
        return Err(Malformed("bad request target"));
    }
    let minor = match version.as_bytes() {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            return Err(BadRequest::Version)
        }
        _ => return Err(Malformed("bad HTTP version")),
    };
    let mut headers = Headers::EMPTY;
    for line in lines {
        let line = line?;
        if headers.len == MAX_HEADERS {
            return Err(BadRequest::HeadTooLarge);
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Err(Malformed("folded header line (obs-fold)"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Malformed("header line without a colon"));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let name = core::str::from_utf8(name).ok().filter(|n| is_token(n)).ok_or(Malformed("bad header name"))?;
        if !value.iter().all(|&b| is_field_byte(b)) {
            return Err(Malformed("control character in a header value"));
        }
        let value = core::str::from_utf8(value).map_err(|_| Malformed("header value is not UTF-8"))?;
        headers.fields[headers.len] = (name, value.trim_matches([' ', '\t']));
        headers.len += 1;
    }
    if headers.count("transfer-encoding") > 0 {
        if minor == 0 {
            return Err(Malformed("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if headers.count("content-length") > 0 {
            return Err(Malformed("both Transfer-Encoding and Content-Length"));
        }
        let mut codings = headers
            .as_slice()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .flat_map(|(_, v)| v.split(','))
            .map(|c| c.trim_matches([' ', '\t']));
        if codings.clone().any(|c| !is_token(c)) {
            return Err(Malformed("bad Transfer-Encoding"));
        }
        return match codings.next_back() {
            Some(last) if last.eq_ignore_ascii_case("chunked") => {
                Err(BadRequest::Unsupported("chunked request bodies (send Content-Length)"))
            }
            _ => Err(Malformed("Transfer-Encoding whose final coding is not chunked")),
        };
    }
    let content_length = match headers.count("content-length") {
        0 => 0,
        1 => {
            let v = headers.get("content-length").unwrap_or("");
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Malformed("Content-Length is not a decimal number"));
            }
            let n = v.bytes().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
            match n {
                None => return Err(Malformed("Content-Length overflows")),
                Some(n) if n > MAX_BODY as u64 => return Err(BadRequest::BodyTooLarge),
                Some(n) => n as usize,
            }
        }
        _ => return Err(Malformed("more than one Content-Length")),
    };
    match (minor, headers.count("host")) {
        (1, 0) => return Err(Malformed("HTTP/1.1 request without Host")),
        (_, 0 | 1) => {}
        _ => return Err(Malformed("more than one Host")),
    }
    let expect_continue = match headers.get("expect") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("100-continue") && headers.count("expect") == 1 => true,
        Some(_) => return Err(BadRequest::Expectation),
    };
    let has_token = |name: &str, token: &str| {
        headers
            .as_slice()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
    };
    let keep_alive = if minor == 1 { !has_token("connection", "close") } else { has_token("connection", "keep-alive") };
    Ok(Request { method, target, minor, headers, content_length, body: &[], keep_alive, expect_continue })
}

/// What [`parse`] found at the start of the buffer.
// A request (its headers inline, about 1 KiB) is returned by value on purpose: parsing never allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole request yet: read more (the buffer holds less than [`MAX_HEAD`] + body).
    Incomplete,
    /// A request, and how many bytes of the buffer it used (the next request starts there).
    Request(Request<'a>, usize),
    /// A request that must be refused; the connection should be closed after the answer.
    Bad(BadRequest),
}

/// Parses one whole request (head and `Content-Length` body) from the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let head_len = match HeadParser::new().find_head(buf) {
        Ok(Some(n)) => n,
        Ok(None) => return Parsed::Incomplete,
        Err(e) => return Parsed::Bad(e),
    };
    match parse_head(&buf[..head_len]) {
        Ok(mut req) => match buf.get(head_len..head_len + req.content_length) {
            Some(body) => {
                req.body = body;
                let used = head_len + body.len();
                Parsed::Request(req, used)
            }
            None => Parsed::Incomplete,
        },
        Err(e) => Parsed::Bad(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{MAX_HEAD, MAX_HEADERS};

    fn req(buf: &[u8]) -> (Request<'_>, usize) {
        match parse(buf) {
            Parsed::Request(r, n) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn simple_get_keeps_alive_on_1_1() {
        let buf = b"GET /stats HTTP/1.1\r\nHost: x\r\nUser-Agent: curl\r\n\r\nNEXT";
        let (r, n) = req(buf);
        assert_eq!((r.method, r.target, r.minor, r.keep_alive), ("GET", "/stats", 1, true));
        assert_eq!(r.header("host"), Some("x"));
        assert_eq!(&buf[n..], b"NEXT", "consumed exactly the request");
    }

    #[test]
    fn connection_close_and_1_0_defaults() {
        assert!(!req(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").0.keep_alive);
        assert!(!req(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(req(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").0.keep_alive);
    }

    #[test]
    fn pipelined_requests_come_out_one_at_a_time_in_order() {
        let buf =
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HT";
        let mut at = 0;
        let mut seen = vec![];
        while let Parsed::Request(r, n) = parse(&buf[at..]) {
            seen.push((r.target.to_string(), r.body.to_vec()));
            at += n;
        }
        assert_eq!(seen, [("/a".into(), vec![]), ("/b".into(), b"xyz".to_vec()), ("/c".into(), vec![])]);
        assert_eq!(parse(&buf[at..]), Parsed::Incomplete);
    }

    #[test]
    fn a_body_not_yet_arrived_is_incomplete() {
        assert_eq!(parse(b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"), Parsed::Incomplete);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Incomplete);
    }

    #[test]
    fn malformed_requests_are_refused_with_the_right_status() {
        let bad = |b: &[u8]| match parse(b) {
            Parsed::Bad(e) => e.status().0,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(bad(b"GET / HTTP/1.1 extra\r\n\r\n"), 400);
        assert_eq!(bad(b"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n"), 400);
        assert_eq!(bad(b"G(T / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(bad(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(bad(b"GET / FTP/1.0\r\n\r\n"), 400);
        assert_eq!(bad(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(bad(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
        assert_eq!(bad(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
        assert_eq!(bad(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"), 413);
        assert_eq!(bad(b"GET /\xff HTTP/1.1\r\n\r\n"), 400);
    }

    #[test]
    fn oversized_heads_are_refused_not_buffered_forever() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(vec![b'a'; MAX_HEAD]);
        assert_eq!(parse(&big), Parsed::Bad(BadRequest::HeadTooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend(format!("H{i}: v\r\n").bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(parse(&many), Parsed::Bad(BadRequest::HeadTooLarge));
    }

    fn status_of(b: &[u8]) -> u16 {
        match parse(b) {
            Parsed::Bad(e) => e.status().0,
            Parsed::Request(r, _) => panic!("accepted {:?}: {r:?}", String::from_utf8_lossy(b)),
            Parsed::Incomplete => panic!("incomplete: {:?}", String::from_utf8_lossy(b)),
        }
    }

    /// Issue 10, defect 7: `Content-Length: +5` was read as 5 (a proxy in front may read it differently).
    #[test]
    fn content_length_is_digits_only() {
        for v in ["+5", "-5", " 5 5", "5,5", "0x5", "5 ;", "", "18446744073709551616"] {
            let req = format!("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {v}\r\n\r\nhello");
            assert_eq!(status_of(req.as_bytes()), 400, "Content-Length: {v:?}");
        }
        let dup = b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(status_of(dup), 400, "duplicate Content-Length");
    }

    /// Issue 10, defect 7: a bare LF inside a header value hid the next header from this parser (a proxy that
    /// takes LF as a line end sees it).
    #[test]
    fn bare_lf_and_bare_cr_are_refused() {
        assert_eq!(status_of(b"PUT / HTTP/1.1\r\nHost: x\r\nX: a\nContent-Length: 5\r\n\r\nhello"), 400);
        assert_eq!(status_of(b"PUT / HTTP/1.1\r\nHost: x\r\nX: a\rContent-Length: 5\r\n\r\nhello"), 400);
        assert_eq!(status_of(b"GET / HTTP/1.1\nHost: x\n\n"), 400);
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: x\n\r\n"), 400);
        // parse_head alone (without HeadParser in front) refuses them too.
        for head in [&b"GET / HTTP/1.1\nHost: x\r\n\r\n"[..], b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n"] {
            assert!(matches!(parse_head(head), Err(BadRequest::Malformed(_))), "{head:?}");
        }
    }

    /// Issue 10, defect 7: NUL and other control characters were accepted in header values.
    #[test]
    fn control_characters_are_refused() {
        for c in [0u8, 1, 0x08, 0x0b, 0x1f, 0x7f] {
            let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nX: a".to_vec();
            req.push(c);
            req.extend(b"b\r\n\r\n");
            assert_eq!(status_of(&req), 400, "byte {c:#x} in a header value");
        }
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: x\r\nX\x00: a\r\n\r\n"), 400);
        // A tab inside a value is field content, not a control character.
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\tb\r\n\r\n"), Parsed::Request(..)));
    }

    /// RFC 9112 5.1, 5.2: no whitespace between a field name and the colon, no line folding.
    #[test]
    fn whitespace_before_the_colon_and_obs_fold_are_refused() {
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"), 400);
        assert_eq!(status_of(b"GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400);
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb: c\r\n\r\n"), 400);
    }

    /// RFC 9112 6.1, 6.3: Transfer-Encoding with Content-Length, a final coding other than chunked, or in an
    /// HTTP/1.0 request is a framing error (400); chunked itself is not implemented (501).
    #[test]
    fn transfer_encoding_is_refused_clearly() {
        let te = |v: &str, extra: &str| {
            let r = format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {v}\r\n{extra}\r\n");
            status_of(r.as_bytes())
        };
        assert_eq!(te("chunked", ""), 501);
        assert_eq!(te("gzip, chunked", ""), 501);
        assert_eq!(te("chunked", "Content-Length: 5\r\n"), 400);
        assert_eq!(te("gzip", ""), 400);
        assert_eq!(te("chunked, gzip", ""), 400);
        assert_eq!(te("", ""), 400);
        assert_eq!(status_of(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    }

    /// RFC 9112 3.2: an HTTP/1.1 request has exactly one Host.
    #[test]
    fn host_is_required_once_in_http_1_1() {
        assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert!(matches!(parse(b"GET / HTTP/1.0\r\n\r\n"), Parsed::Request(..)));
    }

    /// RFC 9112 3.2, RFC 3986: origin-form (or `*` for OPTIONS, or absolute-form); no fragment, no bad escapes.
    #[test]
    fn request_targets_are_checked() {
        for t in ["a", "/a#b", "http://user@host/", "/%zz", "/%4", "/a\"b", "/<x>", "*", "/a{b}", "/a|b", "/^"] {
            let r = format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(status_of(r.as_bytes()), 400, "target {t:?}");
        }
        for t in ["/", "/a/b?c=d&e=%41", "/~x-y_z.w!$'()*+,;=:@", "http://x/y"] {
            let r = format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(matches!(parse(r.as_bytes()), Parsed::Request(..)), "target {t:?}");
        }
        assert!(matches!(parse(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), Parsed::Request(..)));
        assert_eq!(status_of(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    }

    /// Issue 10, defect 7: the head is looked at once however it arrives (it was re-parsed on every read).
    #[test]
    fn the_head_parser_looks_at_each_byte_once_however_the_bytes_arrive() {
        let req = b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
        let head_len = req.len() - 3;
        let mut p = HeadParser::new();
        for end in 0..head_len {
            assert_eq!(p.find_head(&req[..end]), Ok(None));
        }
        assert_eq!(p.find_head(&req[..head_len]), Ok(Some(head_len)));
        assert_eq!(p.work(), 2 * head_len as u64, "found once, parsed once");
    }

    #[test]
    fn a_request_re_serializes_to_itself() {
        let buf =
            b"PUT /k?a=b HTTP/1.0\r\nHost:  x \r\nX-Empty:\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
        let (r, _) = req(buf);
        let again = r.to_bytes();
        assert_eq!(parse(&again), Parsed::Request(req(buf).0, again.len()));
    }

    /// RFC 9110 10.1.1: an expectation other than 100-continue gets 417.
    #[test]
    fn unknown_expectations_are_refused() {
        assert_eq!(status_of(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx"), 417);
    }
}
