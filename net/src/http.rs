//! A small HTTP/1.1 server core for unikernel apps: an incremental, pipelining-safe request parser (one request at
//! a time out of a byte buffer that may hold several, or half of one) and a response writer. Bounded: a request
//! head over [`MAX_HEAD`] bytes or with more than [`MAX_HEADERS`] headers is refused, never buffered without end.

use alloc::vec::Vec;
use core::fmt::Write;

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8192;
/// Most headers accepted.
pub const MAX_HEADERS: usize = 32;
/// Largest request body accepted (bodies are read and discarded by the simple apps here).
pub const MAX_BODY: usize = 1 << 20;

/// A parsed request head; the slices borrow the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The request target (`/stats`).
    pub target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The headers, in order.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body (Content-Length bytes).
    pub body: &'a [u8],
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

impl Request<'_> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
}

/// Why a request was refused (each maps to a status code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Malformed request line or header: 400.
    Malformed(&'static str),
    /// Head too large or too many headers: 431.
    HeadTooLarge,
    /// Body larger than [`MAX_BODY`]: 413.
    BodyTooLarge,
    /// Transfer-Encoding (chunked) is not supported: 501.
    Unsupported(&'static str),
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
            BadRequest::Unsupported(_) => (501, "Not Implemented"),
            BadRequest::Version => (505, "HTTP Version Not Supported"),
        }
    }
}

/// What [`parse`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole request yet: read more (the buffer holds less than [`MAX_HEAD`] + body).
    Incomplete,
    /// A request, and how many bytes of the buffer it used (the next request starts there).
    Request(Request<'a>, usize),
    /// A request that must be refused; the connection should be closed after the answer.
    Bad(BadRequest),
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Parses one request from the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Parsed::Bad(BadRequest::HeadTooLarge) } else { Parsed::Incomplete };
    };
    if head_end + 4 > MAX_HEAD {
        return Parsed::Bad(BadRequest::HeadTooLarge);
    }
    let Ok(head) = core::str::from_utf8(&buf[..head_end]) else {
        return Parsed::Bad(BadRequest::Malformed("request head is not UTF-8"));
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Bad(BadRequest::Malformed("request line is not METHOD TARGET VERSION"));
    };
    if !is_token(method) {
        return Parsed::Bad(BadRequest::Malformed("bad method"));
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Parsed::Bad(BadRequest::Malformed("bad request target"));
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v if v.starts_with("HTTP/") => return Parsed::Bad(BadRequest::Version),
        _ => return Parsed::Bad(BadRequest::Malformed("bad HTTP version")),
    };
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Parsed::Bad(BadRequest::HeadTooLarge);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Parsed::Bad(BadRequest::Malformed("header line without a colon"));
        };
        if !is_token(name) {
            return Parsed::Bad(BadRequest::Malformed("bad header name"));
        }
        headers.push((name, value.trim_matches([' ', '\t'])));
    }
    let req_hdr = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| *v);
    if req_hdr("transfer-encoding").is_some() {
        return Parsed::Bad(BadRequest::Unsupported("Transfer-Encoding"));
    }
    let mut lengths = headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| *v);
    let body_len = match (lengths.next(), lengths.next()) {
        (None, _) => 0,
        (Some(v), None) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_BODY => n,
            Ok(_) => return Parsed::Bad(BadRequest::BodyTooLarge),
            Err(_) => return Parsed::Bad(BadRequest::Malformed("bad Content-Length")),
        },
        (Some(_), Some(_)) => return Parsed::Bad(BadRequest::Malformed("more than one Content-Length")),
    };
    let start = head_end + 4;
    if buf.len() < start + body_len {
        return Parsed::Incomplete;
    }
    let connection = req_hdr("connection").unwrap_or("");
    let keep_alive = if minor == 1 {
        !connection.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
    } else {
        connection.split(',').any(|t| t.trim().eq_ignore_ascii_case("keep-alive"))
    };
    let req = Request { method, target, minor, headers, body: &buf[start..start + body_len], keep_alive };
    Parsed::Request(req, start + body_len)
}

/// A complete response: status line, `Content-Type`, `Content-Length`, `Connection`, then the body.
pub fn response(status: u16, reason: &str, content_type: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut head = alloc::string::String::new();
    let _ = write!(
        head,
        "HTTP/1.1 {status} {reason}\r\nServer: sirocco\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// How a connection served by [`serve`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// Requests answered by the handler.
    pub requests: u64,
    /// The malformed request that ended the connection, if one did (it was answered with its status).
    pub bad: Option<BadRequest>,
}

/// Serves one HTTP/1.1 connection: requests are parsed as they arrive (pipelined ones answered strictly in
/// order, each before the next is read), each handed to `handler`, whose whole response (see [`response`]) is
/// written back; `HEAD` gets the head of the `GET` answer. A malformed request is answered with its 4xx/5xx and
/// the connection closed. Returns when the peer closes or asks to, or with the socket's error.
pub async fn serve<D: crate::NetDevice>(
    s: &mut crate::TcpStream<D>,
    mut handler: impl AsyncFnMut(&Request<'_>) -> Vec<u8>,
) -> Result<Served, crate::NetError> {
    let mut served = Served { requests: 0, bad: None };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = alloc::vec![0u8; 16384];
    loop {
        // Answer every complete request already buffered, in order, before reading more.
        loop {
            let (reply, used, keep_alive) = match parse(&buf) {
                Parsed::Incomplete => break,
                Parsed::Request(req, used) => {
                    served.requests += 1;
                    let mut reply = handler(&req).await;
                    if req.method == "HEAD" {
                        let head_len = reply.windows(4).position(|w| w == b"\r\n\r\n").map_or(reply.len(), |p| p + 4);
                        reply.truncate(head_len);
                    }
                    (reply, used, req.keep_alive)
                }
                Parsed::Bad(why) => {
                    served.bad = Some(why);
                    let (code, reason) = why.status();
                    let body = alloc::format!("{reason}: {why:?}\n");
                    (response(code, reason, "text/plain", body.as_bytes(), false), buf.len(), false)
                }
            };
            s.write_all(&reply).await?;
            buf.drain(..used);
            if !keep_alive {
                s.close().await?;
                return Ok(served);
            }
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            s.close().await?;
            return Ok(served);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!req(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").0.keep_alive);
        assert!(!req(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(req(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").0.keep_alive);
    }

    #[test]
    fn pipelined_requests_come_out_one_at_a_time_in_order() {
        let buf =
            b"GET /a HTTP/1.1\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\n\r\nGET /d HT";
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
        assert_eq!(parse(b"PUT /k HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345"), Parsed::Incomplete);
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
        assert_eq!(bad(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
        assert_eq!(bad(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"), 413);
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

    #[test]
    fn response_has_length_and_connection() {
        let r = response(200, "OK", "text/plain", b"hi", true);
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Length: 2\r\n") && s.contains("Connection: keep-alive\r\n"));
        assert!(s.ends_with("\r\n\r\nhi"));
    }
}
