//! `http::serve` over an in-memory stream with fuzzer-chosen read sizes, memory budget and handler: the loop ends
//! (in one poll: the stream never waits), every byte it writes is a sequence of well-formed responses (the
//! handler's, in order, one per request; refusals last), the budget is never exceeded and is given back whole.
//!
//! Input: byte 0 = budget choice, byte 1 = body-mode choice (bit i: request i's body streamed instead of
//! buffered), byte 2 = how many read sizes follow (0-7), then those sizes (each 1-256, used in turn; none: 4096),
//! then the bytes the client sends.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use sirocco_net::http::{self, BodyMode, Handler, MemoryBudget, Request, Transport};
use sirocco_net::NetError;

struct Stream<'a> {
    input: &'a [u8],
    pos: usize,
    sizes: Vec<usize>,
    reads: usize,
    output: Vec<u8>,
    closed: bool,
}

impl Transport for Stream<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        assert!(!self.closed, "read after close");
        let size = if self.sizes.is_empty() { 4096 } else { self.sizes[self.reads % self.sizes.len()] };
        self.reads += 1;
        let n = size.min(buf.len()).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError> {
        assert!(!self.closed, "write after close");
        self.output.extend_from_slice(buf);
        Ok(())
    }
    async fn close(&mut self) -> Result<(), NetError> {
        assert!(!self.closed, "closed twice");
        self.closed = true;
        Ok(())
    }
}

/// Answers every request with what it saw; marks HEAD answers (whose bodies `serve` drops).
struct Fake<'b> {
    modes: u8,
    seen: usize,
    streamed: usize,
    budget: &'b MemoryBudget,
}

impl Handler for Fake<'_> {
    fn body_mode(&mut self, _req: &Request<'_>) -> BodyMode {
        if self.modes >> (self.seen % 8) & 1 == 1 {
            BodyMode::Stream
        } else {
            BodyMode::Buffer
        }
    }
    fn body_chunk(&mut self, req: &Request<'_>, chunk: &[u8]) {
        assert!(!chunk.is_empty() && chunk.len() <= req.content_length);
        self.streamed += chunk.len();
    }
    async fn respond(&mut self, req: &Request<'_>) -> Vec<u8> {
        assert!(self.budget.used() <= self.budget.limit());
        let streamed = std::mem::take(&mut self.streamed);
        assert_eq!(req.body.len() + streamed, req.content_length, "the whole body, once");
        self.seen += 1;
        let body = format!("{} {} {}", req.method, req.target, req.content_length);
        let mut r = http::response(200, "OK", "text/plain", body.as_bytes(), req.keep_alive);
        if req.method == "HEAD" {
            let at = r.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            r.splice(at + 2..at + 2, *b"X-Head: 1\r\n");
        }
        r
    }
}

/// One response from the start of `out`: (status, `Connection: close`, bytes used). Panics if malformed.
fn response(out: &[u8]) -> (u16, bool, usize) {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head ends with an empty line");
    let head = std::str::from_utf8(&out[..end]).expect("response head is text");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap();
    let code: u16 = status
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status:?}"));
    assert!((100..600).contains(&code) && status.as_bytes().get(12) == Some(&b' '), "status line {status:?}");
    let (mut length, mut close, mut head_only) = (None, false, false);
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("bad header line {line:?}"));
        assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{line:?}");
        assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line:?}");
        match name {
            "Content-Length" => {
                assert!(length.is_none(), "two Content-Lengths");
                length = Some(value.parse::<usize>().expect("numeric Content-Length"));
            }
            "Connection" => close = value == "close",
            "X-Head" => head_only = true,
            _ => {}
        }
    }
    if code < 200 {
        assert!(length.is_none(), "an interim response has no body");
        return (code, false, end + 4);
    }
    let length = length.expect("a final response has Content-Length");
    let body = if head_only { 0 } else { length };
    assert!(out.len() >= end + 4 + body, "response body cut short");
    (code, close, end + 4 + body)
}

fuzz_target!(|data: &[u8]| {
    let [budget_choice, modes, n, rest @ ..] = data else { return };
    let n = (n % 8) as usize;
    if rest.len() < n {
        return;
    }
    let (sizes, input) = rest.split_at(n);
    let limit = match budget_choice % 4 {
        0 => 100,                                // not even a connection
        1 => http::CONNECTION_BYTES,             // a connection, no buffered body
        2 => http::CONNECTION_BYTES + 300,       // small bodies
        _ => http::CONNECTION_BYTES + (1 << 20), // every body
    };
    let budget = MemoryBudget::new(limit);
    let mut s = Stream {
        input,
        pos: 0,
        sizes: sizes.iter().map(|&s| s as usize + 1).collect(),
        reads: 0,
        output: Vec::new(),
        closed: false,
    };
    let fake = Fake { modes: *modes, seen: 0, streamed: 0, budget: &budget };
    let served = {
        let mut fut = pin!(http::serve(&mut s, &budget, fake));
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r.expect("the in-memory stream never fails"),
            Poll::Pending => panic!("serve waited on a stream that never waits"),
        }
    };
    assert!(s.closed, "the connection was closed");
    assert!(budget.peak() <= limit, "budget exceeded: {budget:?}");
    assert_eq!(budget.used(), 0, "budget not given back: {budget:?}");
    // The output: the handler's answers in order (with 100 Continue before some), then at most one refusal.
    let (mut at, mut answers, mut refusal) = (0, 0, None);
    while at < s.output.len() {
        assert!(refusal.is_none(), "bytes after a refusal");
        let (code, close, used) = response(&s.output[at..]);
        let text = String::from_utf8_lossy(&s.output[at..at + used]);
        if code == 200 {
            answers += 1;
            assert!(!close || at + used == s.output.len(), "bytes after Connection: close: {text}");
        } else if code != 100 {
            assert!(close, "a refusal closes the connection: {text}");
            refusal = Some(code);
        }
        at += used;
    }
    assert_eq!(answers, served.requests, "one answer per request");
    assert_eq!(refusal, served.bad.map(|b| b.status().0), "the refusal written is the one reported");
});
