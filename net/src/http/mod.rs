//! A small HTTP/1.1 server core for unikernel apps, safe to put behind a proxy and bounded in what a client can
//! make it spend:
//!
//! - [`request`]: a strict request-head parser (RFC 9112): [`HeadParser`] finds a head incrementally, looking at
//!   each byte once however the bytes arrive; [`parse_head`] parses it once. Whatever a proxy might read
//!   differently (bare CR or LF, control characters, `Content-Length: +5`, duplicate lengths, Transfer-Encoding,
//!   folded lines...) is refused, not guessed at.
//! - [`serve`]: one connection over any [`Transport`]: pipelined requests answered in order, bodies buffered
//!   (exactly, charged to a [`MemoryBudget`] shared by all connections) or streamed to the [`Handler`]; what the
//!   budget or the heap cannot hold is answered 503, never allowed to exhaust memory and crash the domain.
//! - [`response`]: a whole response.
//!
//! Bounds: a head over [`MAX_HEAD`] bytes or with more than [`MAX_HEADERS`] headers is refused (431), a body over
//! [`MAX_BODY`] bytes too (413); chunked request bodies are not implemented (501).

use alloc::vec::Vec;
use core::fmt::Write;

mod budget;
pub mod request;
mod serve;

pub use budget::{Charge, MemoryBudget};
pub use request::{parse, parse_head, BadRequest, HeadParser, Headers, Parsed, Request};
pub use serve::{
    serve, BodyMode, Handler, Respond, Served, Transport, CONNECTION_BYTES, MAX_DRAIN, OVERLOADED, READ_CHUNK,
};

/// Largest request head (request line + headers, with the empty line) accepted.
pub const MAX_HEAD: usize = 8192;
/// Most headers accepted.
pub const MAX_HEADERS: usize = 32;
/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_has_length_and_connection() {
        let r = response(200, "OK", "text/plain", b"hi", true);
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Length: 2\r\n") && s.contains("Connection: keep-alive\r\n"));
        assert!(s.ends_with("\r\n\r\nhi"));
    }

    #[test]
    fn the_overloaded_answer_has_the_right_length() {
        let s = core::str::from_utf8(OVERLOADED).unwrap();
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())), "{s}");
    }
}
