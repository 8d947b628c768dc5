//! The xenstore client: up to [`MAX_IN_FLIGHT`] requests in flight, answered by id. Two ways to make a request:
//! - **non-blocking**, for a run loop: [`Xenstore::start`] queues it, [`Xenstore::poll_request`] moves bytes both
//!   ways without ever waiting and says when its reply is in, [`Xenstore::give_up`] ends it at the caller's
//!   deadline. Nothing here blocks; the caller waits for the event channel (and its timers) however it likes;
//! - **blocking** (`read`, `write`, ... built on the same three calls), waiting through [`XsPlatform::wait`]
//!   until the reply or the deadline: for start-of-day, before a run loop exists, and for host tests.
//!
//! Either way, watch events that arrive in between are queued in arrival order, bounded and coalesced
//! ([`WatchQueue`]): a daemon flooding events costs us at most [`WATCH_EVENTS_MAX`] pending events, and no wait
//! runs past its deadline however fast they come.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::task::Poll;
use sirocco_boot_logic::trace::{self, Category, Phase};

use super::error::{ErrorPath, Violation, XsError};
use super::queue::{WatchQueue, WATCH_EVENTS_MAX};
use super::text::InlineStr;
use super::wire::{mask_idx, Errno, MsgType, XsdSockmsg, HEADER_SIZE, PAYLOAD_MAX, RING_SIZE};
use super::{XsPlatform, XsRing};

/// How long a call waits for its reply unless [`Xenstore::set_timeout_ns`] says otherwise: 10 s.
pub const DEFAULT_TIMEOUT_NS: u64 = 10_000_000_000;

/// How many times [`Xenstore::transaction`] runs a transaction whose commit keeps answering `EAGAIN`.
pub const DEFAULT_TRANSACTION_ATTEMPTS: u32 = 8;

/// Replies we gave up on (timeout, protocol error) that are recognised and dropped if they arrive late.
const ABANDONED_MAX: usize = 16;

/// The most watches (`(path, token)` pairs) registered at once: no more distinct tokens than the event queue
/// holds, so its bound holds whatever the daemon sends.
pub const WATCHES_MAX: usize = WATCH_EVENTS_MAX;

/// The most response bytes one look at the ring takes in before the caller checks its deadline again: a daemon
/// refilling the ring as fast as we drain it cannot keep us reading forever.
const RECEIVE_BUDGET: usize = 2 * super::wire::RING_SIZE;

/// A xenstore transaction id. [`Tx::NONE`] (Xen's `XBT_NIL`, 0) means "not in a transaction".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tx(u32);

impl Tx {
    /// No transaction: the request applies immediately.
    pub const NONE: Tx = Tx(0);

    /// The id as on the wire (`tx_id`).
    pub fn id(self) -> u32 {
        self.0
    }
}

/// An `XS_WATCH_EVENT`: `path` (the node that changed, in the form the watch was registered with) and the token
/// given to [`Xenstore::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node that changed (the watched node or one below it).
    pub path: String,
    /// The watch's token.
    pub token: String,
}

impl WatchEvent {
    /// Parses the payload `path\0token\0` (the final NUL may be missing).
    fn parse(payload: &[u8]) -> Option<WatchEvent> {
        let split = payload.iter().position(|&b| b == 0)?;
        let (path, rest) = (&payload[..split], &payload[split + 1..]);
        let token = match rest.iter().position(|&b| b == 0) {
            Some(end) if end + 1 == rest.len() => &rest[..end],
            Some(_) => return None,
            None => rest,
        };
        Some(WatchEvent {
            path: String::from_utf8(path.to_vec()).ok()?,
            token: String::from_utf8(token.to_vec()).ok()?,
        })
    }
}

/// The most requests in flight at once (blocking and non-blocking ones together).
pub const MAX_IN_FLIGHT: usize = 8;

/// A request whose reply we are waiting for.
struct InFlight {
    req_id: u32,
    op: MsgType,
    /// Its reply, once in (until [`Xenstore::poll_request`] takes it).
    reply: Option<Reply>,
    /// The watch an `XS_WATCH` or `XS_UNWATCH` is about, `(path, token)`: forgotten when an `XS_WATCH` fails and
    /// when an `XS_UNWATCH` ends.
    watch: Option<(String, String)>,
}

/// A request [`Xenstore::start`] queued: what [`Xenstore::poll_request`] and [`Xenstore::give_up`] take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    req_id: u32,
    op: MsgType,
    path: ErrorPath,
    started_ns: u64,
}

impl Pending {
    /// The request's type.
    pub fn op(&self) -> MsgType {
        self.op
    }

    /// The wire `req_id`.
    pub fn req_id(&self) -> u32 {
        self.req_id
    }

    /// When it was started (system time).
    pub fn started_ns(&self) -> u64 {
        self.started_ns
    }
}

/// A request as it goes on the wire: type, transaction, path (for errors), payload pieces, and the watch it is
/// about.
type Wire<'a> = (MsgType, Tx, &'a str, [&'a [u8]; 4], Option<(&'a str, &'a str)>);

/// A request, as [`Xenstore::start`] takes it.
#[derive(Clone, Copy, Debug)]
pub enum Request<'a> {
    /// `XS_READ path`.
    Read(Tx, &'a str),
    /// `XS_WRITE path value`.
    Write(Tx, &'a str, &'a [u8]),
    /// `XS_MKDIR path`.
    Mkdir(Tx, &'a str),
    /// `XS_RM path`.
    Rm(Tx, &'a str),
    /// `XS_DIRECTORY path` (the reply parses with [`parse_directory`]).
    Directory(Tx, &'a str),
    /// `XS_WATCH path token`: registered at once, forgotten again if the daemon refuses it.
    Watch(&'a str, &'a str),
    /// `XS_UNWATCH path token`: forgotten (queued events dropped) when it ends, whatever the daemon says.
    Unwatch(&'a str, &'a str),
    /// `XS_TRANSACTION_START` (the reply parses with [`parse_transaction_id`]).
    TransactionStart,
    /// `XS_TRANSACTION_END`: commit (`T`) or abort (`F`).
    TransactionEnd(Tx, bool),
}

/// What came back for the request in flight.
enum Reply {
    Payload(Vec<u8>),
    Error(Errno),
    Wrong(Violation),
}

/// A xenstore client over the shared page `R`: non-blocking requests ([`Xenstore::start`]) for a run loop, and
/// blocking ones (waiting through `P`) for start-of-day and host tests.
pub struct Xenstore<R: XsRing, P: XsPlatform> {
    ring: R,
    platform: P,
    /// Our own indices, `req_prod` and `rsp_cons`: read from the page once, at start, then kept here. The page is
    /// writable by the daemon, so reading them back would let it rewind or skip our side of the ring.
    req_prod: u32,
    rsp_cons: u32,
    timeout_ns: u64,
    next_req_id: u32,
    in_flight: VecDeque<InFlight>,
    /// Request messages not yet wholly in the ring, `(req_id, bytes)`, in order; how much of the first is in.
    outbox: VecDeque<(u32, Vec<u8>)>,
    outbox_written: usize,
    /// A non-fatal violation seen while the request was still being sent: reported once it is all out.
    deferred: Option<Violation>,
    /// The last look at the ring stopped on its budget with more there.
    unread: bool,
    /// Response bytes taken in so far.
    received: u64,
    /// Bytes of the message being received (header, then payload), across calls and waits.
    rx: Vec<u8>,
    events: WatchQueue,
    /// Watch events received (coalesced ones included).
    events_received: u64,
    /// Registered watches, `(path, token)`.
    watches: Vec<(String, String)>,
    abandoned: VecDeque<u32>,
    broken: Option<Violation>,
    next_token: u64,
    late_replies: u64,
    stray_events: u64,
}

impl<R: XsRing, P: XsPlatform> Xenstore<R, P> {
    /// A client over the page `ring`, using `platform` to kick and wait on the xenstore event channel. Starts from
    /// whatever indices the page holds.
    pub fn new(ring: R, platform: P) -> Self {
        let (req_prod, rsp_cons) = (ring.req_prod(), ring.rsp_cons());
        Xenstore {
            ring,
            platform,
            req_prod,
            rsp_cons,
            timeout_ns: DEFAULT_TIMEOUT_NS,
            next_req_id: 1,
            in_flight: VecDeque::new(),
            outbox: VecDeque::new(),
            outbox_written: 0,
            deferred: None,
            unread: false,
            received: 0,
            rx: Vec::with_capacity(HEADER_SIZE + PAYLOAD_MAX),
            events: WatchQueue::new(),
            events_received: 0,
            watches: Vec::new(),
            abandoned: VecDeque::new(),
            broken: None,
            next_token: 0,
            late_replies: 0,
            stray_events: 0,
        }
    }

    /// Sets how long each call waits for its reply.
    pub fn set_timeout_ns(&mut self, timeout_ns: u64) {
        self.timeout_ns = timeout_ns;
    }

    /// How long each call waits for its reply.
    pub fn timeout_ns(&self) -> u64 {
        self.timeout_ns
    }

    /// The platform (for its clock, say).
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The platform, mutably.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// The shared page.
    pub fn ring(&self) -> &R {
        &self.ring
    }

    /// Replies that arrived after their call had given up (timed out), recognised by id and dropped.
    pub fn late_replies_dropped(&self) -> u64 {
        self.late_replies
    }

    /// Watch events that arrived for a token with no registered watch (typically just after an unwatch), dropped.
    pub fn stray_events_dropped(&self) -> u64 {
        self.stray_events
    }

    /// Watch events absorbed by an event already pending for the same watch (see [`WatchQueue`]).
    pub fn watch_events_coalesced(&self) -> u64 {
        self.events.coalesced()
    }

    /// The violation that made the ring unusable, if one did.
    pub fn broken(&self) -> Option<Violation> {
        self.broken
    }

    /// A watch token no earlier call returned: `prefix` and a counter.
    pub fn unique_token(&mut self, prefix: &str) -> String {
        self.next_token += 1;
        format!("{prefix}-{}", self.next_token)
    }

    // ----- operations (blocking: start-of-day and host tests; a run loop uses `start`/`poll_request`) -----

    /// `XS_READ`: the node's value.
    pub fn read(&mut self, tx: Tx, path: &str) -> Result<Vec<u8>, XsError> {
        self.call(Request::Read(tx, path))
    }

    /// `XS_READ`, `None` if the node does not exist (`ENOENT`).
    pub fn read_optional(&mut self, tx: Tx, path: &str) -> Result<Option<Vec<u8>>, XsError> {
        match self.read(tx, path) {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_enoent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `XS_READ` of a text value.
    pub fn read_string(&mut self, tx: Tx, path: &str) -> Result<String, XsError> {
        let value = self.read(tx, path)?;
        String::from_utf8(value).map_err(|_| XsError::NotUtf8 { op: MsgType::Read, path: ErrorPath::tail(path) })
    }

    /// `XS_WRITE`: sets the node's value, creating it (and missing parents). Payload `path\0value`, no NUL after
    /// the value.
    pub fn write(&mut self, tx: Tx, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.call(Request::Write(tx, path, value)).map(drop)
    }

    /// `XS_MKDIR`: creates the node with an empty value if it does not exist.
    pub fn mkdir(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        self.call(Request::Mkdir(tx, path)).map(drop)
    }

    /// `XS_RM`: removes the node and everything below it.
    pub fn rm(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        self.call(Request::Rm(tx, path)).map(drop)
    }

    /// `XS_DIRECTORY`: the names of the node's children (not full paths). A listing larger than
    /// `XENSTORE_PAYLOAD_MAX` is answered `E2BIG` (`XS_DIRECTORY_PART` is not used).
    pub fn directory(&mut self, tx: Tx, path: &str) -> Result<Vec<String>, XsError> {
        let listing = self.call(Request::Directory(tx, path))?;
        parse_directory(path, &listing)
    }

    /// `XS_WATCH`: asks for an [`WatchEvent`] carrying `token` whenever `path` or a node below it changes. The
    /// daemon fires a new watch once straight away. Events are level-triggered hints: repeated ones coalesce, and
    /// many paths under one watch may collapse into one event naming `path` itself ([`WatchQueue`]). At most
    /// [`WATCHES_MAX`] watches at once.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.call(Request::Watch(path, token)).map(drop)
    }

    /// `XS_UNWATCH`: removes the watch and drops its queued events (and any that arrive later).
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.call(Request::Unwatch(path, token)).map(drop)
    }

    /// `XS_RESET_WATCHES`: removes every watch this domain has (including any left by a previous kernel) and drops
    /// all queued events.
    pub fn reset_watches(&mut self) -> Result<(), XsError> {
        self.call_raw(MsgType::ResetWatches, Tx::NONE, "", &[b"\0"], None)?;
        self.watches.clear();
        self.events.clear();
        Ok(())
    }

    /// `XS_TRANSACTION_START`: a new transaction.
    pub fn transaction_start(&mut self) -> Result<Tx, XsError> {
        let reply = self.call(Request::TransactionStart)?;
        parse_transaction_id(&reply)
    }

    /// `XS_TRANSACTION_END`: commits (`T\0`) or aborts (`F\0`). A commit answered `EAGAIN` means the whole
    /// transaction must be redone ([`Xenstore::transaction`] does that).
    pub fn transaction_end(&mut self, tx: Tx, commit: bool) -> Result<(), XsError> {
        self.call(Request::TransactionEnd(tx, commit)).map(drop)
    }

    /// Runs `body` in a transaction and commits it, running the whole of `body` again in a fresh transaction each
    /// time the commit answers `EAGAIN`, at most [`DEFAULT_TRANSACTION_ATTEMPTS`] times.
    pub fn transaction<T>(&mut self, body: impl FnMut(&mut Self, Tx) -> Result<T, XsError>) -> Result<T, XsError> {
        self.transaction_with_attempts(DEFAULT_TRANSACTION_ATTEMPTS, body)
    }

    /// [`Xenstore::transaction`] with at most `attempts` runs (at least one). If `body` fails, the transaction is
    /// aborted and `body`'s error returned (an error from the abort itself is not reported over it).
    pub fn transaction_with_attempts<T>(
        &mut self,
        attempts: u32,
        mut body: impl FnMut(&mut Self, Tx) -> Result<T, XsError>,
    ) -> Result<T, XsError> {
        let attempts = attempts.max(1);
        for _ in 0..attempts {
            let tx = self.transaction_start()?;
            let value = match body(self, tx) {
                Ok(value) => value,
                Err(e) => {
                    let _abort_result_is_secondary = self.transaction_end(tx, false);
                    return Err(e);
                }
            };
            match self.transaction_end(tx, true) {
                Ok(()) => return Ok(value),
                Err(XsError::Daemon { errno: Errno::EAGAIN, .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(XsError::TransactionRetriesExhausted { attempts })
    }

    // ----- watch events -----

    /// Takes in what the daemon has sent (up to a budget of bytes, so a flooding daemon cannot keep it reading),
    /// without blocking, queueing watch events. Returns how many watch events arrived (coalesced ones included).
    pub fn poll(&mut self) -> Result<usize, XsError> {
        self.poll_more().map(|(arrived, _)| arrived)
    }

    /// [`Xenstore::poll`], also saying whether it stopped on its byte budget with more in the ring: then look
    /// again soon rather than sleep until the event channel fires (the daemon already notified for those bytes).
    pub fn poll_more(&mut self) -> Result<(usize, bool), XsError> {
        if let Some(violation) = self.broken {
            return Err(XsError::RingBroken { op: None, path: ErrorPath::empty(), violation });
        }
        let before = self.events_received;
        let protocol = |violation| XsError::Protocol { op: None, path: ErrorPath::empty(), violation };
        self.flush_outbox().map_err(protocol)?;
        let more = self.receive(None).map_err(protocol)?;
        self.unread = more;
        Ok(((self.events_received - before) as usize, more))
    }

    /// After the domain came back from a suspend (issue 16). With `new_domain` false (a cancelled suspend, `xl save
    /// -c`) the connection is as it was and nothing changes. With `new_domain` true (restored or migrated) the
    /// daemon has introduced the domain afresh: the ring's indices are back at 0, its watches and transactions for
    /// us are gone, and nothing sent before will be answered. The client then:
    /// - takes the indices as it finds them and drops what it had half received or not yet sent;
    /// - ends every request still in flight (its caller gets [`XsError::NotInFlight`]; a caller suspends with none);
    /// - sends `XS_WATCH` again for every watch it holds, with the same token (the replies are dropped; each watch
    ///   fires once, as a new one does, which is how its owner learns to look again).
    ///
    /// Returns how many watches were sent again. The platform must point [`Xenstore::platform_mut`] at the new
    /// event channel first.
    pub fn resumed(&mut self, new_domain: bool) -> usize {
        if !new_domain {
            return 0;
        }
        self.req_prod = self.ring.req_prod();
        self.rsp_cons = self.ring.rsp_cons();
        self.rx.clear();
        self.outbox.clear();
        self.outbox_written = 0;
        self.deferred = None;
        self.broken = None;
        self.unread = false;
        for id in self.in_flight.iter().map(|f| f.req_id).collect::<Vec<_>>() {
            // Ended without forgetting a watch: the watches are re-sent below.
            if let Some(at) = self.in_flight.iter().position(|f| f.req_id == id) {
                self.in_flight.remove(at);
            }
            self.abandoned.push_back(id);
        }
        while self.abandoned.len() > ABANDONED_MAX {
            self.abandoned.pop_front();
        }
        let watches = self.watches.clone();
        for (path, token) in &watches {
            let parts: [&[u8]; 4] = [path.as_bytes(), b"\0", token.as_bytes(), b"\0"];
            // Not registered again (it still is): only its reply is to be dropped.
            if let Ok(p) = self.start_raw(MsgType::Watch, Tx::NONE, path, &parts, None) {
                self.abandon(p.req_id);
            }
        }
        watches.len()
    }

    /// The oldest queued watch event. Does not read the ring: call [`Xenstore::poll`] first to take in what has
    /// arrived (a call stops reading at its own reply, so an event right behind it is still in the ring).
    pub fn next_watch_event(&mut self) -> Option<WatchEvent> {
        self.events.pop()
    }

    /// The oldest queued watch event carrying `token`; other events stay queued, in order.
    pub fn take_watch_event(&mut self, token: &str) -> Option<WatchEvent> {
        self.events.take_where(|e| e.token == token)
    }

    /// The oldest queued watch event `wanted` accepts; other events stay queued, in order.
    pub fn take_watch_event_where(&mut self, wanted: impl Fn(&WatchEvent) -> bool) -> Option<WatchEvent> {
        self.events.take_where(wanted)
    }

    /// Response bytes taken in from the ring so far: a run loop wakes the tasks waiting on xenstore when it
    /// moves.
    pub fn received_bytes(&self) -> u64 {
        self.received
    }

    /// Queued watch events.
    pub fn pending_watch_events(&self) -> usize {
        self.events.len()
    }

    /// The oldest watch event, waiting for one until system time reaches `deadline_ns` (`None` then).
    pub fn wait_watch_event(&mut self, deadline_ns: u64) -> Result<Option<WatchEvent>, XsError> {
        self.wait_event_where(deadline_ns, |_| true)
    }

    /// The oldest watch event carrying `token`, waiting for one until `deadline_ns` (`None` then). Events for other
    /// tokens stay queued, in order.
    pub fn wait_watch_event_for(&mut self, token: &str, deadline_ns: u64) -> Result<Option<WatchEvent>, XsError> {
        self.wait_event_where(deadline_ns, |e| e.token == token)
    }

    fn wait_event_where(
        &mut self,
        deadline_ns: u64,
        wanted: impl Fn(&WatchEvent) -> bool,
    ) -> Result<Option<WatchEvent>, XsError> {
        loop {
            if let Some(event) = self.events.take_where(&wanted) {
                return Ok(Some(event));
            }
            // Checked on every round, not only when the ring is empty: events for other tokens arriving as fast
            // as we take them in must not keep us here past the deadline.
            if self.platform.now_ns() >= deadline_ns {
                return Ok(None);
            }
            let (arrived, more) = self.poll_more()?;
            if arrived == 0 && !more {
                self.platform.wait(deadline_ns);
            }
        }
    }

    // ----- the request/reply machinery -----

    /// Queues `request` (nothing is written until [`Xenstore::poll_request`]). With [`MAX_IN_FLIGHT`] requests
    /// in flight already, this answers [`XsError::Busy`]. Arguments are checked first (nothing is sent if they
    /// are wrong).
    pub fn start(&mut self, request: Request<'_>) -> Result<Pending, XsError> {
        let flag: &[u8] = match request {
            Request::TransactionEnd(_, true) => b"T\0",
            _ => b"F\0",
        };
        let (op, tx, path, parts, watch): Wire<'_> = match request {
            Request::Read(tx, p) => (MsgType::Read, tx, p, [p.as_bytes(), b"\0", b"", b""], None),
            Request::Write(tx, p, v) => (MsgType::Write, tx, p, [p.as_bytes(), b"\0", v, b""], None),
            Request::Mkdir(tx, p) => (MsgType::Mkdir, tx, p, [p.as_bytes(), b"\0", b"", b""], None),
            Request::Rm(tx, p) => (MsgType::Rm, tx, p, [p.as_bytes(), b"\0", b"", b""], None),
            Request::Directory(tx, p) => (MsgType::Directory, tx, p, [p.as_bytes(), b"\0", b"", b""], None),
            Request::Watch(p, t) => {
                (MsgType::Watch, Tx::NONE, p, [p.as_bytes(), b"\0", t.as_bytes(), b"\0"], Some((p, t)))
            }
            Request::Unwatch(p, t) => {
                (MsgType::Unwatch, Tx::NONE, p, [p.as_bytes(), b"\0", t.as_bytes(), b"\0"], Some((p, t)))
            }
            Request::TransactionStart => (MsgType::TransactionStart, Tx::NONE, "", [b"\0", b"", b"", b""], None),
            Request::TransactionEnd(tx, _) => (MsgType::TransactionEnd, tx, "", [flag, b"", b"", b""], None),
        };
        if !matches!(op, MsgType::TransactionStart | MsgType::TransactionEnd) {
            check_path(op, path)?;
        }
        if let Some((_, token)) = watch {
            check_token(op, path, token)?;
        }
        if op == MsgType::Watch && self.watches.len() >= WATCHES_MAX {
            let what = "too many watches (WATCHES_MAX); unwatch one first";
            return Err(XsError::BadArgument { op, path: ErrorPath::tail(path), what });
        }
        let watch = watch.map(|(p, t)| (String::from(p), String::from(t)));
        self.start_raw(op, tx, path, &parts, watch)
    }

    fn start_raw(
        &mut self,
        op: MsgType,
        tx: Tx,
        path: &str,
        parts: &[&[u8]],
        watch: Option<(String, String)>,
    ) -> Result<Pending, XsError> {
        if let Some(violation) = self.broken {
            return Err(XsError::RingBroken { op: Some(op), path: ErrorPath::tail(path), violation });
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            return Err(XsError::Busy { op, path: ErrorPath::tail(path) });
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > PAYLOAD_MAX {
            return Err(XsError::TooLong { op, path: ErrorPath::tail(path), len });
        }
        let req_id = self.allocate_req_id();
        let mut message = Vec::with_capacity(HEADER_SIZE + len);
        message.extend_from_slice(&XsdSockmsg { msg_type: op as u32, req_id, tx_id: tx.0, len: len as u32 }.emit());
        for part in parts {
            message.extend_from_slice(part);
        }
        self.outbox.push_back((req_id, message));
        if op == MsgType::Watch {
            // Registered before sending: the first event may be queued by the daemon ahead of the reply.
            if let Some((p, t)) = &watch {
                self.watches.push((p.clone(), t.clone()));
            }
        }
        self.in_flight.push_back(InFlight { req_id, op, reply: None, watch });
        trace::event(Category::Xenstore, Phase::Instant, "request", op as u64);
        Ok(Pending { req_id, op, path: ErrorPath::tail(path), started_ns: self.platform.now_ns() })
    }

    /// Moves the request along without waiting: writes what room the request ring has (requests go out whole,
    /// in order), takes in what the daemon sent (queueing watch events and other requests' replies; a bounded
    /// amount per call), and says whether this request's reply is in. `Pending`: call again when the event
    /// channel fires, or at once if [`Xenstore::has_unread`] says the ring still holds more. A request this
    /// client is not waiting for (already ended) is answered [`XsError::NotInFlight`].
    pub fn poll_request(&mut self, pending: &Pending) -> Poll<Result<Vec<u8>, XsError>> {
        let protocol = |violation| XsError::Protocol { op: Some(pending.op), path: pending.path, violation };
        if !self.in_flight.iter().any(|f| f.req_id == pending.req_id) {
            return Poll::Ready(Err(XsError::NotInFlight { op: pending.op, path: pending.path }));
        }
        if let Some(violation) = self.broken {
            self.end(pending.req_id, false);
            return Poll::Ready(Err(XsError::RingBroken { op: Some(pending.op), path: pending.path, violation }));
        }
        if let Err(violation) = self.flush_outbox() {
            self.end(pending.req_id, false);
            return Poll::Ready(Err(protocol(violation)));
        }
        match self.receive(Some(pending.req_id)) {
            Ok(more) => self.unread = more,
            Err(violation) if violation.is_fatal() || !self.unsent(pending.req_id) => {
                self.abandon(pending.req_id);
                return Poll::Ready(Err(protocol(violation)));
            }
            Err(violation) => {
                // Reported once the request is all out: giving up on it now would leave it half-written.
                self.deferred.get_or_insert(violation);
                self.unread = true;
            }
        }
        if !self.unsent(pending.req_id) {
            if let Some(violation) = self.deferred.take() {
                self.abandon(pending.req_id);
                return Poll::Ready(Err(protocol(violation)));
            }
        }
        let reply = self.in_flight.iter_mut().find(|f| f.req_id == pending.req_id).and_then(|f| f.reply.take());
        let result = match reply {
            Some(Reply::Payload(payload)) => Ok(payload),
            Some(Reply::Error(errno)) => Err(XsError::Daemon { op: pending.op, path: pending.path, errno }),
            Some(Reply::Wrong(violation)) => Err(protocol(violation)),
            None => return Poll::Pending,
        };
        self.end(pending.req_id, result.is_ok());
        trace::event(Category::Xenstore, Phase::Instant, "reply", pending.op as u64);
        Poll::Ready(result)
    }

    /// True if the last look at the ring stopped on its budget with more there: look again before sleeping (the
    /// daemon already notified for those bytes).
    pub fn has_unread(&self) -> bool {
        self.unread
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Ends `pending` at its deadline (`now_ns`): a reply that comes later is recognised and dropped; one never
    /// sent is withdrawn. If the request was only partly written, the ring is unusable from now on (the daemon
    /// would read our next request as the rest of this one) and the error says so.
    pub fn give_up(&mut self, pending: &Pending, now_ns: u64) -> XsError {
        if !self.in_flight.iter().any(|f| f.req_id == pending.req_id) {
            return XsError::NotInFlight { op: pending.op, path: pending.path };
        }
        let waited_ns = now_ns.saturating_sub(pending.started_ns);
        let timeout = XsError::Timeout { op: pending.op, path: pending.path, waited_ns };
        match self.outbox.iter().position(|(id, _)| *id == pending.req_id) {
            Some(0) if self.outbox_written > 0 => {
                let partial = Violation::PartialRequest {
                    written: self.outbox_written as u32,
                    total: self.outbox[0].1.len() as u32,
                };
                self.end(pending.req_id, false);
                let violation = self.fatal(partial);
                XsError::Protocol { op: Some(pending.op), path: pending.path, violation }
            }
            Some(at) => {
                // Nothing of it reached the daemon: no reply will come.
                self.outbox.remove(at);
                self.end(pending.req_id, false);
                timeout
            }
            None => {
                self.abandon(pending.req_id);
                timeout
            }
        }
    }

    /// Sends one request and waits (blocking, through [`XsPlatform::wait`]) for its reply or the deadline.
    pub(crate) fn call_blocking(&mut self, request: Request<'_>) -> Result<Vec<u8>, XsError> {
        self.call(request)
    }

    fn call(&mut self, request: Request<'_>) -> Result<Vec<u8>, XsError> {
        let pending = self.start(request)?;
        self.finish_blocking(pending)
    }

    fn call_raw(
        &mut self,
        op: MsgType,
        tx: Tx,
        path: &str,
        parts: &[&[u8]],
        watch: Option<(String, String)>,
    ) -> Result<Vec<u8>, XsError> {
        let pending = self.start_raw(op, tx, path, parts, watch)?;
        self.finish_blocking(pending)
    }

    fn finish_blocking(&mut self, pending: Pending) -> Result<Vec<u8>, XsError> {
        let deadline = pending.started_ns.saturating_add(self.timeout_ns);
        loop {
            if let Poll::Ready(result) = self.poll_request(&pending) {
                return result;
            }
            let now = self.platform.now_ns();
            if now >= deadline {
                return Err(self.give_up(&pending, now));
            }
            if !self.unread {
                self.platform.wait(deadline);
            }
        }
    }

    /// The request ended (reply, error, or given up): forget it, and do the watch bookkeeping its type asks for.
    fn end(&mut self, req_id: u32, ok: bool) {
        let Some(at) = self.in_flight.iter().position(|f| f.req_id == req_id) else { return };
        let Some(done) = self.in_flight.remove(at) else { return };
        if let Some((path, token)) = done.watch {
            if done.op == MsgType::Unwatch || !ok {
                self.forget_watch(&path, &token);
            }
        }
    }

    /// Whether some of `req_id`'s message is still to be written.
    fn unsent(&self, req_id: u32) -> bool {
        self.outbox.iter().any(|(id, _)| *id == req_id)
    }

    fn allocate_req_id(&mut self) -> u32 {
        loop {
            let id = self.next_req_id;
            self.next_req_id = self.next_req_id.wrapping_add(1);
            if !self.abandoned.contains(&id) {
                return id;
            }
        }
    }

    /// Stops waiting for `req_id`; its reply will be dropped if it comes. A request still being written keeps
    /// being written (by later polls) so the request stream stays intact.
    fn abandon(&mut self, req_id: u32) {
        self.end(req_id, false);
        if self.abandoned.len() == ABANDONED_MAX {
            self.abandoned.pop_front();
        }
        self.abandoned.push_back(req_id);
    }

    /// Writes as much of the outgoing requests as the request ring has room for, in order.
    fn flush_outbox(&mut self) -> Result<(), Violation> {
        while let Some((_, message)) = self.outbox.front() {
            let (prod, cons) = (self.req_prod, self.ring.req_cons());
            let used = prod.wrapping_sub(cons) as usize;
            if used > RING_SIZE {
                return Err(self.fatal(Violation::ReqOverrun { req_prod: prod, req_cons: cons }));
            }
            let n = (RING_SIZE - used).min(message.len() - self.outbox_written);
            if n == 0 {
                return Ok(());
            }
            for (i, &byte) in message[self.outbox_written..self.outbox_written + n].iter().enumerate() {
                self.ring.write_req(mask_idx(prod.wrapping_add(i as u32)), byte);
            }
            self.req_prod = prod.wrapping_add(n as u32);
            self.ring.publish_req_prod(self.req_prod);
            self.platform.notify();
            self.outbox_written += n;
            if self.outbox_written == message.len() {
                self.outbox.pop_front();
                self.outbox_written = 0;
            }
        }
        Ok(())
    }

    /// Marks the ring unusable.
    fn fatal(&mut self, violation: Violation) -> Violation {
        self.broken = Some(violation);
        violation
    }

    /// Reads what the daemon has published, a message at a time, until the ring is empty, the reply to `stop_at`
    /// is complete, or [`RECEIVE_BUDGET`] bytes were taken in. Partial messages are kept for the
    /// next call. Returns true if it stopped on the budget with more in the ring (the caller must look again
    /// rather than wait: the daemon will not notify for bytes it already published).
    fn receive(&mut self, stop_at: Option<u32>) -> Result<bool, Violation> {
        let mut consumed = false;
        let result = self.receive_inner(stop_at, &mut consumed);
        if consumed {
            // The daemon may be waiting for room to write the rest of a message.
            self.platform.notify();
        }
        result
    }

    fn receive_inner(&mut self, stop_at: Option<u32>, consumed: &mut bool) -> Result<bool, Violation> {
        let mut taken = 0;
        while !stop_at.is_some_and(|id| self.in_flight.iter().any(|f| f.req_id == id && f.reply.is_some())) {
            let (prod, cons) = (self.ring.rsp_prod(), self.rsp_cons);
            let available = prod.wrapping_sub(cons) as usize;
            if available > RING_SIZE {
                return Err(self.fatal(Violation::RspOverrun { rsp_prod: prod, rsp_cons: cons }));
            }
            if available == 0 {
                return Ok(false);
            }
            if taken >= RECEIVE_BUDGET {
                return Ok(true);
            }
            let wanted = match self.header() {
                None => HEADER_SIZE - self.rx.len(),
                Some(h) => HEADER_SIZE + h.len as usize - self.rx.len(),
            };
            let n = wanted.min(available);
            for i in 0..n {
                self.rx.push(self.ring.read_rsp(mask_idx(cons.wrapping_add(i as u32))));
            }
            self.rsp_cons = cons.wrapping_add(n as u32);
            self.ring.publish_rsp_cons(self.rsp_cons);
            *consumed = true;
            taken += n;
            self.received += n as u64;

            let Some(header) = self.header() else { continue };
            if header.len as usize > PAYLOAD_MAX {
                self.rx.clear();
                let oversized =
                    Violation::Oversized { msg_type: header.msg_type, req_id: header.req_id, len: header.len };
                return Err(self.fatal(oversized));
            }
            if self.rx.len() == HEADER_SIZE + header.len as usize {
                let payload = self.rx.split_off(HEADER_SIZE);
                self.rx.clear();
                self.dispatch(header, payload)?;
            }
        }
        Ok(false)
    }

    /// The header of the message being received, once all of it is in.
    fn header(&self) -> Option<XsdSockmsg> {
        let bytes: &[u8; HEADER_SIZE] = self.rx.get(..HEADER_SIZE)?.try_into().ok()?;
        Some(XsdSockmsg::parse(bytes))
    }

    /// Handles one complete message.
    fn dispatch(&mut self, header: XsdSockmsg, payload: Vec<u8>) -> Result<(), Violation> {
        if header.msg_type == MsgType::WatchEvent as u32 {
            let event = WatchEvent::parse(&payload).ok_or(Violation::MalformedWatchEvent { len: header.len })?;
            trace::event(Category::Xenstore, Phase::Instant, "watch event", payload.len() as u64);
            match self.watches.iter().find(|(_, token)| *token == event.token) {
                Some((watched, _)) => {
                    self.events_received += 1;
                    self.events.push(event, watched);
                }
                None => self.stray_events += 1,
            }
            return Ok(());
        }
        let waiting = self.in_flight.iter_mut().find(|f| f.req_id == header.req_id && f.reply.is_none());
        match waiting {
            Some(f) => {
                let (req_id, op) = (f.req_id, f.op);
                f.reply = Some(if header.msg_type == MsgType::Error as u32 {
                    Reply::Error(Errno::parse(&payload))
                } else if header.msg_type == op as u32 {
                    Reply::Payload(payload)
                } else {
                    Reply::Wrong(Violation::WrongReplyType { req_id, expected: op, got: header.msg_type })
                });
                Ok(())
            }
            None => {
                if let Some(at) = self.abandoned.iter().position(|&id| id == header.req_id) {
                    self.abandoned.remove(at);
                    self.late_replies += 1;
                    return Ok(());
                }
                Err(Violation::UnknownReplyId {
                    expected: self.in_flight.iter().find(|f| f.reply.is_none()).map(|f| f.req_id),
                    got: header.req_id,
                    msg_type: header.msg_type,
                })
            }
        }
    }

    fn forget_watch(&mut self, path: &str, token: &str) {
        if let Some(at) = self.watches.iter().position(|(p, t)| p == path && t == token) {
            self.watches.remove(at);
        }
        if !self.watches.iter().any(|(_, t)| t == token) {
            self.events.forget(token);
        }
    }
}

/// Parses an `XS_DIRECTORY` reply for `path`: NUL-terminated UTF-8 names.
pub fn parse_directory(path: &str, listing: &[u8]) -> Result<Vec<String>, XsError> {
    let not_utf8 = || XsError::NotUtf8 { op: MsgType::Directory, path: ErrorPath::tail(path) };
    let body = match listing.split_last() {
        None => return Ok(Vec::new()),
        Some((0, body)) => body,
        Some(_) => return Err(malformed(MsgType::Directory, path, "listing is not NUL-terminated", listing)),
    };
    body.split(|&b| b == 0).map(|name| String::from_utf8(name.to_vec()).map_err(|_| not_utf8())).collect()
}

/// Parses an `XS_TRANSACTION_START` reply: a non-zero decimal id.
pub fn parse_transaction_id(reply: &[u8]) -> Result<Tx, XsError> {
    let digits = reply.strip_suffix(b"\0").unwrap_or(reply);
    match parse_decimal(digits) {
        Some(id) if id != 0 => Ok(Tx(id)),
        _ => Err(malformed(MsgType::TransactionStart, "", "transaction id is not a non-zero decimal number", reply)),
    }
}

fn malformed(op: MsgType, path: &str, what: &'static str, payload: &[u8]) -> XsError {
    let violation = Violation::MalformedReply { what, payload: InlineStr::from_bytes(payload) };
    XsError::Protocol { op: Some(op), path: ErrorPath::tail(path), violation }
}

fn check_path(op: MsgType, path: &str) -> Result<(), XsError> {
    if path.is_empty() {
        return Err(XsError::BadArgument { op, path: ErrorPath::empty(), what: "the path is empty" });
    }
    if path.contains('\0') {
        return Err(XsError::BadArgument { op, path: ErrorPath::tail(path), what: "the path contains a NUL byte" });
    }
    Ok(())
}

fn check_token(op: MsgType, path: &str, token: &str) -> Result<(), XsError> {
    if token.contains('\0') {
        return Err(XsError::BadArgument { op, path: ErrorPath::tail(path), what: "the token contains a NUL byte" });
    }
    Ok(())
}

/// A decimal `u32` with no sign, spaces or excess digits.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(d - b'0');
    }
    u32::try_from(value).ok()
}
