//! The xenstore client against a hostile xenstored whose every move the fuzzer chooses: well-formed replies with
//! wrong request ids or types, error replies, garbage, oversized headers, torn ring indices, floods of watch
//! events. The same input drives the client's calls (read, write, watch, unwatch, transactions, polls, waits),
//! blocking ones and non-blocking ones (`start` / `poll_request` / `give_up`, several in flight) mixed.
//!
//! Oracles (a panic is a finding):
//! - the client never touches the page outside `req[]`/`rsp[]` (indices `< RING_SIZE`);
//! - the indices it writes stay consistent: `req_prod` never runs more than a ring ahead of the daemon's
//!   `req_cons`, nor backwards; `rsp_cons` never passes the `rsp_prod` it was shown, nor goes backwards;
//! - it never holds more than `WATCH_EVENTS_MAX` watch events;
//! - every call ends (reply, error or timeout) by its deadline (plus the one step of daemon time that overran it);
//!   every non-blocking request ends by reply, error or `give_up`, and an ended one is never answered again;
//! - never more than `MAX_IN_FLIGHT` requests in flight;
//! - it never panics.
#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use sirocco_drivers::xenstore::{
    mask_idx, MsgType, Pending, Request, Tx, Xenstore, XsError, XsPlatform, XsRing, XsdSockmsg, HEADER_SIZE,
    MAX_IN_FLIGHT, RING_SIZE, WATCH_EVENTS_MAX,
};
use std::task::Poll;

/// The per-call timeout the client is given.
const TIMEOUT_NS: u64 = 50_000_000;
/// The most daemon time one `wait` may take (the slack the deadline oracle allows).
const MAX_STEP_NS: u64 = 4_000_000;

/// The fuzzer's bytes, read front to back by both the client's driver and the daemon.
struct Input {
    bytes: Vec<u8>,
    at: usize,
}

impl Input {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        let mut v = [0u8; 4];
        for b in &mut v {
            *b = self.byte()?;
        }
        Some(u32::from_le_bytes(v))
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        let end = (self.at + n).min(self.bytes.len());
        let out = self.bytes[self.at..end].to_vec();
        self.at = end;
        out
    }
}

struct Daemon {
    input: Input,
    req: [u8; RING_SIZE],
    rsp: [u8; RING_SIZE],
    req_cons: u32,
    req_prod: u32,
    rsp_cons: u32,
    rsp_prod: u32,
    /// The daemon lied about `req_cons` or `rsp_prod`: index oracles that depend on them are off.
    torn: bool,
    now: u64,
    /// Request bytes consumed, not yet a whole message.
    inbuf: Vec<u8>,
    /// Requests received, not answered: `(type, req_id, tx_id)`.
    requests: Vec<(u32, u32, u32)>,
    /// Tokens seen in XS_WATCH requests (flood material).
    tokens: Vec<String>,
}

impl Daemon {
    fn rsp_room(&self) -> usize {
        RING_SIZE.saturating_sub(self.rsp_prod.wrapping_sub(self.rsp_cons) as usize)
    }

    /// Writes `bytes` (as much as fits) into the response ring.
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.rsp_room());
        for (i, &b) in bytes[..n].iter().enumerate() {
            self.rsp[mask_idx(self.rsp_prod.wrapping_add(i as u32))] = b;
        }
        self.rsp_prod = self.rsp_prod.wrapping_add(n as u32);
    }

    fn message(&mut self, msg_type: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
        let mut bytes = XsdSockmsg { msg_type, req_id, tx_id, len: payload.len() as u32 }.emit().to_vec();
        bytes.extend_from_slice(payload);
        self.put(&bytes);
    }

    /// Takes in the client's request bytes (up to `limit`), noting complete requests.
    fn consume(&mut self, limit: usize) {
        let available = self.req_prod.wrapping_sub(self.req_cons) as usize;
        if available > RING_SIZE {
            return; // torn by us: nothing sensible to read
        }
        let n = available.min(limit);
        for i in 0..n {
            self.inbuf.push(self.req[mask_idx(self.req_cons.wrapping_add(i as u32))]);
        }
        self.req_cons = self.req_cons.wrapping_add(n as u32);
        while self.inbuf.len() >= HEADER_SIZE {
            let h = XsdSockmsg::parse(self.inbuf[..HEADER_SIZE].try_into().unwrap());
            let total = HEADER_SIZE + h.len as usize;
            if self.inbuf.len() < total {
                break;
            }
            if h.msg_type == MsgType::Watch as u32 {
                let payload = &self.inbuf[HEADER_SIZE..total];
                if let Some(token) = payload.split(|&b| b == 0).nth(1) {
                    if self.tokens.len() < 8 {
                        self.tokens.push(String::from_utf8_lossy(token).into_owned());
                    }
                }
            }
            self.requests.push((h.msg_type, h.req_id, h.tx_id));
            self.inbuf.drain(..total);
        }
    }

    /// One move of the daemon, chosen by the input. Returns the time it took.
    fn step(&mut self) -> u64 {
        let Some(op) = self.input.byte() else {
            // Out of input: a silent daemon. The client times out.
            return MAX_STEP_NS;
        };
        match op % 12 {
            0 | 1 | 2 => {
                // Answer a pending request properly (the common case, so calls can succeed).
                self.consume(usize::MAX);
                if !self.requests.is_empty() {
                    let at = usize::from(self.input.byte().unwrap_or(0)) % self.requests.len();
                    let (t, id, tx) = self.requests.remove(at);
                    let payload: Vec<u8> = match MsgType::from_u32(t) {
                        Some(MsgType::Read) => {
                            let n = usize::from(self.input.byte().unwrap_or(0) % 32);
                            self.input.take(n)
                        }
                        Some(MsgType::TransactionStart) => b"7\0".to_vec(),
                        Some(MsgType::Directory) => b"a\0b\0".to_vec(),
                        _ => b"OK\0".to_vec(),
                    };
                    self.message(t, id, tx, &payload);
                }
            }
            3 => {
                // An error reply (EAGAIN, ENOENT...) to a pending request.
                self.consume(usize::MAX);
                if let Some((_, id, tx)) = self.requests.pop() {
                    let name: &[u8] = match self.input.byte().unwrap_or(0) % 4 {
                        0 => b"EAGAIN\0",
                        1 => b"ENOENT\0",
                        2 => b"EACCES\0",
                        _ => b"EWHATEVER\0",
                    };
                    self.message(MsgType::Error as u32, id, tx, name);
                }
            }
            4 => {
                // A reply with a fuzzer-chosen type and id.
                let (t, id) = (self.input.u32().unwrap_or(0), self.input.u32().unwrap_or(0));
                let payload = self.input.take(8);
                self.message(t % 32, id, 0, &payload);
            }
            5 => {
                // Garbage bytes.
                let n = usize::from(self.input.byte().unwrap_or(0));
                let bytes = self.input.take(n);
                self.put(&bytes);
            }
            6 => {
                // A header announcing a fuzzer-chosen (often oversized) length.
                let len = self.input.u32().unwrap_or(5000);
                let h = XsdSockmsg { msg_type: MsgType::Read as u32, req_id: 1, tx_id: 0, len };
                self.put(&h.emit());
            }
            7 => {
                // Torn indices: rsp_prod or req_cons set to anything.
                let v = self.input.u32().unwrap_or(u32::MAX);
                if v & 1 == 0 {
                    self.rsp_prod = self.rsp_cons.wrapping_add(v >> 1);
                } else {
                    self.req_cons = self.req_prod.wrapping_add(v >> 1);
                }
                self.torn = true;
            }
            8 | 9 => {
                // A flood of watch events for a registered token (or a made-up one), distinct paths.
                let token = match self.tokens.len() {
                    0 => "nobody".to_string(),
                    n => self.tokens[usize::from(self.input.byte().unwrap_or(0)) % n].clone(),
                };
                let count = usize::from(self.input.byte().unwrap_or(255)) + 1;
                for i in 0..count {
                    let payload = format!("/f/{i}\0{token}\0");
                    if self.rsp_room() < HEADER_SIZE + payload.len() {
                        break;
                    }
                    self.message(MsgType::WatchEvent as u32, 0, 0, payload.as_bytes());
                }
            }
            10 => {
                // Consume only part of the requests.
                let n = usize::from(self.input.byte().unwrap_or(1));
                self.consume(n);
            }
            _ => {
                // Time passes, nothing else.
                return u64::from(self.input.byte().unwrap_or(0)) * 16_000;
            }
        }
        1_000
    }
}

type Shared = Rc<RefCell<Daemon>>;

struct Page {
    d: Shared,
    /// `req_prod` as we last published it.
    last_req_prod: u32,
    last_rsp_cons: u32,
}

impl XsRing for Page {
    fn req_cons(&self) -> u32 {
        self.d.borrow().req_cons
    }
    fn req_prod(&self) -> u32 {
        self.d.borrow().req_prod
    }
    fn write_req(&mut self, index: usize, byte: u8) {
        assert!(index < RING_SIZE, "write_req outside the ring: {index}");
        self.d.borrow_mut().req[index] = byte;
    }
    fn publish_req_prod(&mut self, prod: u32) {
        let mut d = self.d.borrow_mut();
        let step = prod.wrapping_sub(self.last_req_prod);
        assert!(step as usize <= RING_SIZE, "req_prod moved by {step} (from {} to {prod})", self.last_req_prod);
        if !d.torn {
            let used = prod.wrapping_sub(d.req_cons);
            assert!(used as usize <= RING_SIZE, "req_prod {prod} runs {used} bytes ahead of req_cons {}", d.req_cons);
        }
        d.req_prod = prod;
        self.last_req_prod = prod;
    }
    fn rsp_prod(&self) -> u32 {
        self.d.borrow().rsp_prod
    }
    fn rsp_cons(&self) -> u32 {
        self.d.borrow().rsp_cons
    }
    fn read_rsp(&self, index: usize) -> u8 {
        assert!(index < RING_SIZE, "read_rsp outside the ring: {index}");
        self.d.borrow().rsp[index]
    }
    fn publish_rsp_cons(&mut self, cons: u32) {
        let mut d = self.d.borrow_mut();
        let step = cons.wrapping_sub(self.last_rsp_cons);
        let shown = d.rsp_prod.wrapping_sub(self.last_rsp_cons);
        assert!(step <= shown, "rsp_cons moved by {step}, past rsp_prod {} (only {shown} published)", d.rsp_prod);
        assert!(step as usize <= RING_SIZE, "rsp_cons moved by {step}, more than the ring");
        d.rsp_cons = cons;
        self.last_rsp_cons = cons;
    }
}

struct Platform(Shared);

impl XsPlatform for Platform {
    fn notify(&mut self) {}
    fn wait(&mut self, deadline_ns: u64) -> bool {
        let mut d = self.0.borrow_mut();
        let took = d.step().clamp(1_000, MAX_STEP_NS);
        d.now += took;
        d.now < deadline_ns
    }
    fn now_ns(&self) -> u64 {
        self.0.borrow().now
    }
}

fuzz_target!(|data: &[u8]| {
    // The first bytes choose where the free-running indices start (wrap-around included).
    let mut input = Input { bytes: data.to_vec(), at: 0 };
    let req_start = input.u32().unwrap_or(0);
    let rsp_start = input.u32().unwrap_or(0);
    let daemon = Rc::new(RefCell::new(Daemon {
        input,
        req: [0; RING_SIZE],
        rsp: [0; RING_SIZE],
        req_cons: req_start,
        req_prod: req_start,
        rsp_cons: rsp_start,
        rsp_prod: rsp_start,
        torn: false,
        now: 1_000_000_000,
        inbuf: Vec::new(),
        requests: Vec::new(),
        tokens: Vec::new(),
    }));
    let page = Page { d: daemon.clone(), last_req_prod: req_start, last_rsp_cons: rsp_start };
    let mut xs = Xenstore::new(page, Platform(daemon.clone()));
    xs.set_timeout_ns(TIMEOUT_NS);

    // Non-blocking requests started and not yet ended.
    let mut pending: Vec<Pending> = Vec::new();
    // Client calls, chosen by the same input, until it runs out (then each call meets a silent daemon once).
    for _ in 0..64 {
        let Some(op) = daemon.borrow_mut().input.byte() else { break };
        let start = daemon.borrow().now;
        let mut deadline = start + TIMEOUT_NS;
        let token = format!("t{}", op % 4);
        let path = format!("/p/{}", op % 3);
        match op % 14 {
            0 => drop(xs.read(Tx::NONE, &path)),
            1 => drop(xs.write(Tx::NONE, &path, b"value")),
            2 => drop(xs.watch(&path, &token)),
            3 => drop(xs.unwatch(&path, &token)),
            4 => drop(xs.directory(Tx::NONE, &path)),
            5 => {
                // A transaction: up to 3 attempts, each a start, a write and an end (or an abort).
                deadline = start + 3 * 3 * TIMEOUT_NS;
                let _ = xs.transaction_with_attempts(3, |xs, tx| xs.write(tx, &path, b"in-tx"));
            }
            6 => drop(xs.poll()),
            7 => drop(xs.wait_watch_event_for(&token, start + TIMEOUT_NS)),
            8 => drop(xs.wait_watch_event(start + TIMEOUT_NS)),
            9 => while xs.next_watch_event().is_some() {},
            10 => {
                let request = match (op / 14) % 3 {
                    0 => Request::Read(Tx::NONE, &path),
                    1 => Request::Write(Tx::NONE, &path, b"nb"),
                    _ => Request::Watch(&path, &token),
                };
                match xs.start(request) {
                    Ok(p) => pending.push(p),
                    Err(XsError::Busy { .. }) => assert_eq!(xs.in_flight(), MAX_IN_FLIGHT, "Busy below the cap"),
                    Err(_) => {}
                }
            }
            11 if !pending.is_empty() => {
                let at = usize::from(op / 14) % pending.len();
                if let Poll::Ready(result) = xs.poll_request(&pending[at]) {
                    let done = pending.remove(at);
                    assert!(!matches!(result, Err(XsError::NotInFlight { .. })), "a live request was not in flight");
                    assert!(
                        matches!(xs.poll_request(&done), Poll::Ready(Err(XsError::NotInFlight { .. }))),
                        "an ended request answered again"
                    );
                }
            }
            12 if !pending.is_empty() => {
                let at = usize::from(op / 14) % pending.len();
                let done = pending.remove(at);
                let now = daemon.borrow().now;
                let e = xs.give_up(&done, now);
                assert!(!matches!(e, XsError::NotInFlight { .. }), "a live request was not in flight");
            }
            _ => {
                // The run loop sleeps until the event channel fires (one daemon step).
                let now = daemon.borrow().now;
                xs.platform_mut().wait(now + TIMEOUT_NS);
            }
        }
        assert!(xs.in_flight() <= MAX_IN_FLIGHT, "{} requests in flight", xs.in_flight());
        let now = daemon.borrow().now;
        assert!(
            now <= deadline + MAX_STEP_NS,
            "call {} took {} ns, past its deadline ({} ns)",
            op % 14,
            now - start,
            deadline - start
        );
        assert!(xs.pending_watch_events() <= WATCH_EVENTS_MAX, "{} watch events held", xs.pending_watch_events());
    }
    // Every request ends: polled until its reply or its deadline, then given up.
    for p in pending {
        let deadline = p.started_ns() + TIMEOUT_NS;
        loop {
            if let Poll::Ready(result) = xs.poll_request(&p) {
                assert!(!matches!(result, Err(XsError::NotInFlight { .. })), "a live request was not in flight");
                break;
            }
            let now = daemon.borrow().now;
            if now >= deadline {
                let _ = xs.give_up(&p, now);
                break;
            }
            xs.platform_mut().wait(deadline);
        }
    }
    assert_eq!(xs.in_flight(), 0, "requests left in flight after every one ended");
});
