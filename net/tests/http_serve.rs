//! `http::serve` over an in-memory stream: the work per request is linear in its size.
mod common;

use common::memstream::{block_on, MemStream};
use sirocco_net::http;

async fn echo_len(req: &http::Request<'_>) -> Vec<u8> {
    let body = format!("{} {} {}", req.method, req.target, req.body.len());
    http::response(200, "OK", "text/plain", body.as_bytes(), req.keep_alive)
}

/// Issue 10, defect 7: a body sent one byte per read made the server re-parse the head on every read (10-18 s of
/// CPU for 1 MiB in the guest). The head must be examined once, however the bytes arrive.
#[test]
fn a_body_sent_one_byte_per_read_does_not_reparse_the_head() {
    let head = b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n";
    let mut s = MemStream::new(head, 65536, b"", 1);
    let budget = http::MemoryBudget::new(1 << 20);
    let served = block_on(http::serve(&mut s, &budget, http::Respond(echo_len))).unwrap();
    assert_eq!(served.requests, 1, "{}", s.text());
    assert!(s.text().ends_with("PUT /k 65536"), "{}", s.text());
    assert!(
        served.head_bytes_scanned <= 2 * head.len() as u64,
        "the parser examined {} bytes for a {}-byte head: it re-scans on every read",
        served.head_bytes_scanned,
        head.len()
    );
}

fn served_with(mut s: MemStream, budget: &http::MemoryBudget) -> (http::Served, MemStream) {
    let served = block_on(http::serve(&mut s, budget, http::Respond(echo_len))).unwrap();
    (served, s)
}

/// The same pipelined requests give the same answers however the bytes are split into reads.
#[test]
fn pipelined_requests_are_answered_the_same_for_every_read_size() {
    let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let budget = http::MemoryBudget::new(1 << 20);
    let (_, whole) = served_with(MemStream::new(input, 0, b"", input.len()), &budget);
    let expected = whole.text();
    assert!(
        expected.contains("GET /a 0") && expected.contains("PUT /b 5") && expected.ends_with("GET /d 0"),
        "{expected}"
    );
    for chunk in 1..input.len() {
        let (served, s) = served_with(MemStream::new(input, 0, b"", chunk), &budget);
        assert_eq!(s.text(), expected, "reads of {chunk} bytes");
        assert_eq!(served.requests, 4);
        assert!(s.closed);
    }
    assert_eq!(budget.used(), 0, "every charge given back");
}

/// An upload the budget cannot hold is answered 503 and the rest of its body read (then closed), so that the
/// client sees the answer, not a reset; the connection's own buffer is not charged twice.
#[test]
fn an_upload_over_the_budget_is_answered_503_and_its_body_drained() {
    let budget = http::MemoryBudget::new(http::CONNECTION_BYTES + 1000);
    let head = b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    let (served, s) = served_with(MemStream::new(head, 100_000, b"", 1500), &budget);
    assert!(s.text().starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{}", s.text());
    assert_eq!(served.bad, Some(http::BadRequest::Overloaded));
    assert_eq!(s.pos, head.len() + 100_000, "the body was read to its end before closing");
    assert!(s.closed);
    assert_eq!(budget.used(), 0);
    // A smaller one fits.
    let head = b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
    let (_, s) = served_with(MemStream::new(head, 1000, b"", 1500), &budget);
    assert!(s.text().ends_with("PUT /k 1000"), "{}", s.text());
}

/// No memory even for a connection's buffer: 503 at once, written without allocating.
#[test]
fn a_connection_over_the_budget_is_answered_503() {
    let budget = http::MemoryBudget::new(100);
    let (served, s) = served_with(MemStream::new(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, b"", 100), &budget);
    assert_eq!(s.output, http::OVERLOADED);
    assert_eq!(served.bad, Some(http::BadRequest::Overloaded));
    assert_eq!(budget.refusals(), 1);
}

/// A body over MAX_BODY: 413, and the body on its way is read (up to MAX_DRAIN) before closing.
#[test]
fn a_body_over_the_limit_is_answered_413_and_drained() {
    let budget = http::MemoryBudget::new(1 << 20);
    let head = format!("PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", http::MAX_BODY + 1);
    let (served, s) = served_with(MemStream::new(head.as_bytes(), http::MAX_BODY + 1, b"", 65536), &budget);
    assert!(s.text().starts_with("HTTP/1.1 413 "), "{}", s.text());
    assert_eq!(served.bad, Some(http::BadRequest::BodyTooLarge));
    assert_eq!(s.pos, head.len() + http::MAX_BODY + 1);
}

/// `Expect: 100-continue`: `100 Continue` when the body is wanted, none when the request is refused.
#[test]
fn expect_100_continue_is_answered() {
    let budget = http::MemoryBudget::new(1 << 20);
    let head = b"PUT /k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let (_, s) = served_with(MemStream::new(head, 4, b"", head.len()), &budget);
    assert!(s.text().starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), "{}", s.text());
    assert!(s.text().ends_with("PUT /k 4"), "{}", s.text());
    let small = http::MemoryBudget::new(http::CONNECTION_BYTES);
    let (_, s) = served_with(MemStream::new(head, 0, b"", head.len()), &small);
    assert!(s.text().starts_with("HTTP/1.1 503 "), "{}", s.text());
}

/// A streamed body reaches the handler whole, in pieces, without being buffered or charged.
#[test]
fn a_streamed_body_reaches_the_handler_in_constant_memory() {
    struct Sum {
        bytes: usize,
        pieces: usize,
    }
    impl http::Handler for Sum {
        fn body_mode(&mut self, _: &http::Request<'_>) -> http::BodyMode {
            http::BodyMode::Stream
        }
        fn body_chunk(&mut self, _: &http::Request<'_>, chunk: &[u8]) {
            assert!(chunk.iter().all(|&b| b == b'x'));
            self.bytes += chunk.len();
            self.pieces += 1;
        }
        async fn respond(&mut self, req: &http::Request<'_>) -> Vec<u8> {
            assert!(req.body.is_empty());
            http::response(200, "OK", "text/plain", format!("{}", self.bytes).as_bytes(), req.keep_alive)
        }
    }
    let budget = http::MemoryBudget::new(http::CONNECTION_BYTES);
    let head = b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
    let mut s = MemStream::new(head, 1 << 20, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000);
    let mut sum = Sum { bytes: 0, pieces: 0 };
    let served = block_on(http::serve(&mut s, &budget, &mut sum)).unwrap();
    assert_eq!(served.requests, 2, "{}", s.text());
    assert_eq!(sum.bytes, 1 << 20, "{}", s.text());
    assert_eq!(budget.peak(), http::CONNECTION_BYTES);
}

/// `Handler::sent` follows each response once it is written, in order, before the next request is read.
#[test]
fn sent_is_called_after_each_response_is_written() {
    struct Log {
        events: Vec<String>,
    }
    impl http::Handler for Log {
        async fn respond(&mut self, req: &http::Request<'_>) -> Vec<u8> {
            self.events.push(format!("respond {}", req.target));
            http::response(200, "OK", "text/plain", b"ok", req.keep_alive)
        }
        fn sent(&mut self, req: &http::Request<'_>) {
            self.events.push(format!("sent {}", req.target));
        }
    }
    let budget = http::MemoryBudget::new(1 << 20);
    let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut s = MemStream::new(input, 0, b"", 7);
    let mut log = Log { events: Vec::new() };
    let served = block_on(http::serve(&mut s, &budget, &mut log)).unwrap();
    assert_eq!(served.requests, 2);
    assert_eq!(log.events, ["respond /a", "sent /a", "respond /b", "sent /b"]);
}
