//! The HTTP request parser against itself: the same bytes give the same requests and refusals whether parsed
//! whole (`http::parse`) or as they arrive in fuzzer-chosen pieces (`HeadParser` + `parse_head`, as `serve` uses
//! them); every accepted request re-serializes to bytes that parse to the same request; nothing panics.
//!
//! Input: byte 0 = how many chunk sizes follow (0-7), then those sizes (each 1-256, used in turn), then the
//! bytes a client sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sirocco_net::http::{self, BadRequest, HeadParser, Parsed, Request};

/// A request, owned, for comparing.
#[derive(Debug, PartialEq)]
struct Owned {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
    expect_continue: bool,
}

impl Owned {
    fn of(r: &Request<'_>, body: &[u8]) -> Owned {
        Owned {
            method: r.method.into(),
            target: r.target.into(),
            minor: r.minor,
            headers: r.headers.as_slice().iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.to_vec(),
            keep_alive: r.keep_alive,
            expect_continue: r.expect_continue,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Request(Owned),
    Bad(BadRequest),
    /// The input ended inside a request.
    Incomplete,
}

/// Whole: `parse` on what is left, request after request.
fn whole(input: &[u8]) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        match http::parse(&input[at..]) {
            Parsed::Request(r, used) => {
                assert!(used > 0 && at + used <= input.len());
                assert_eq!(r.body.len(), r.content_length);
                // Re-serialized, it parses to the same request, using every byte.
                let again = r.to_bytes();
                match http::parse(&again) {
                    Parsed::Request(r2, used2) => {
                        assert_eq!(r2, r, "re-serialized: {:?}", String::from_utf8_lossy(&again));
                        assert_eq!(used2, again.len());
                    }
                    other => panic!("re-serialized {:?} parsed as {other:?}", String::from_utf8_lossy(&again)),
                }
                out.push(Outcome::Request(Owned::of(&r, r.body)));
                at += used;
            }
            Parsed::Bad(e) => {
                out.push(Outcome::Bad(e));
                return out;
            }
            Parsed::Incomplete => {
                out.push(Outcome::Incomplete);
                return out;
            }
        }
    }
    out
}

/// In pieces: a growing window per request, as the server keeps it; the body counted as it arrives.
fn pieces(input: &[u8], sizes: &[usize]) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut next_size = sizes.iter().cycle();
    let (mut start, mut end) = (0, 0);
    let mut parser = HeadParser::new();
    let mut work_before = 0;
    while start < input.len() {
        // Find the head, reading piece by piece.
        let head_len = loop {
            match parser.find_head(&input[start..end]) {
                Ok(Some(n)) => break n,
                Ok(None) if end == input.len() => {
                    out.push(Outcome::Incomplete);
                    return out;
                }
                Ok(None) => end = (end + next_size.next().copied().unwrap_or(usize::MAX)).min(input.len()),
                Err(e) => {
                    out.push(Outcome::Bad(e));
                    return out;
                }
            }
        };
        // Each head byte looked at twice at most (found, parsed), however it arrived.
        assert!(parser.work() - work_before <= 2 * (end - start) as u64);
        work_before = parser.work();
        let req = match http::parse_head(&input[start..start + head_len]) {
            Ok(r) => r,
            Err(e) => {
                out.push(Outcome::Bad(e));
                return out;
            }
        };
        let body_start = start + head_len;
        while end < body_start + req.content_length && end < input.len() {
            end = (end + next_size.next().copied().unwrap_or(usize::MAX)).min(input.len());
        }
        if end < body_start + req.content_length {
            out.push(Outcome::Incomplete);
            return out;
        }
        out.push(Outcome::Request(Owned::of(&req, &input[body_start..body_start + req.content_length])));
        start = body_start + req.content_length;
        end = end.max(start);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n % 8) as usize;
    if rest.len() < n {
        return;
    }
    let (sizes, input) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&s| s as usize + 1).collect();
    let whole = whole(input);
    let pieces = pieces(input, if sizes.is_empty() { &[1] } else { &sizes });
    assert_eq!(whole, pieces, "input {:?}", String::from_utf8_lossy(input));
});
