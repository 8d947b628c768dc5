//! A fake xenstored for host tests. It speaks the real wire format over a heap copy of the 4096-byte shared page
//! and runs, deterministically, inside the test platform's `wait`: each `wait` is one step of the daemon (consume
//! request bytes, answer complete requests, write replies and watch events into the response ring).
//!
//! Time: a `wait` in which the daemon did something takes [`WAKE_NS`]; one in which it only has deferred work
//! (a delayed reply, a scheduled write) takes [`TICK_NS`]; one with nothing to do jumps to the deadline and
//! returns false, so a silent daemon times the client out in one step.
//!
//! It keeps a tree of nodes (relative paths resolve under [`HOME`]), transactions (a snapshot per transaction;
//! commit answers `EAGAIN` if a node the transaction read or wrote changed since it started), watches (fired on
//! registration and on changes to the node or below), and can be told to misbehave: see the `pub` fields.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::format;
use std::rc::Rc;
use std::string::{String, ToString};
#[allow(unused_imports)] // the prelude has them under cfg(test)
use std::{vec, vec::Vec};

use super::wire::{mask_idx, offsets, Errno, MsgType, XsdSockmsg, HEADER_SIZE, RING_SIZE};
use super::{Xenstore, XsPlatform, XsRing};

/// Where relative paths resolve: we are domain 7.
pub const HOME: &str = "/local/domain/7";
/// How long a `wait` in which the daemon did something takes.
pub const WAKE_NS: u64 = 1_000;
/// How long a `wait` takes while the daemon only has deferred work.
pub const TICK_NS: u64 = 1_000_000;

/// The fake daemon, shared between the test and the client's ring and platform.
pub type Shared = Rc<RefCell<Fake>>;

/// The client type the tests use.
pub type FakeClient = Xenstore<FakeRing, FakePlatform>;

/// A client and the fake daemon behind it, both rings starting at index 0.
pub fn client() -> (FakeClient, Shared) {
    client_at(0, 0)
}

/// A client and the fake daemon, the request ring starting at `req` and the response ring at `rsp`.
pub fn client_at(req: u32, rsp: u32) -> (FakeClient, Shared) {
    let fake = Rc::new(RefCell::new(Fake::new(req, rsp)));
    (Xenstore::new(FakeRing(fake.clone()), FakePlatform(fake.clone())), fake)
}

/// One request as the daemon received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The header's `type`.
    pub msg_type: u32,
    /// The header's `req_id`.
    pub req_id: u32,
    /// The header's `tx_id`.
    pub tx_id: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Node {
    value: Vec<u8>,
    generation: u64,
}

type Tree = BTreeMap<String, Node>;

struct Watch {
    /// As registered (relative or absolute): events use the same form.
    given: String,
    abs: String,
    token: String,
}

#[derive(Clone, Debug)]
enum Change {
    Write(String, Vec<u8>),
    Mkdir(String),
    Rm(String),
}

struct Transaction {
    /// The main tree when the transaction started.
    start: Tree,
    /// The transaction's own view.
    tree: Tree,
    /// Nodes read or written: a change to any of them since `start` makes the commit answer EAGAIN.
    touched: BTreeSet<String>,
    changes: Vec<Change>,
}

struct OutMsg {
    bytes: Vec<u8>,
    written: usize,
    /// Steps to wait before writing it.
    hold: u32,
}

/// When a client write sets `path` to `value`, another domain writes `then` (`None` removes) `delay` waits later.
struct Trigger {
    path: String,
    value: Vec<u8>,
    then: Vec<(String, Option<Vec<u8>>)>,
    delay: u64,
}

/// The fake xenstored: its tree, watches, transactions, the requests it received, and its misbehaviour knobs.
pub struct Fake {
    page: Vec<u8>,
    /// System time.
    pub now: u64,
    /// `wait` calls so far.
    pub waits: u64,
    /// `notify` calls so far.
    pub notifies: u64,
    /// Every request received, in order.
    pub log: Vec<Received>,
    /// Commit attempts (`XS_TRANSACTION_END` with `T`).
    pub commits: u32,

    nodes: Tree,
    generation: u64,
    watches: Vec<Watch>,
    transactions: BTreeMap<u32, Transaction>,
    next_tx: u32,
    inbuf: Vec<u8>,
    out: VecDeque<OutMsg>,
    triggers: Vec<Trigger>,
    scheduled: Vec<(u64, String, Option<Vec<u8>>)>,

    // ----- misbehaviour -----
    /// Answer `EAGAIN` to this many commits.
    pub eagain_commits: u32,
    /// Answer `EACCES` to any request on these paths (absolute).
    pub eacces: BTreeSet<String>,
    /// Hold the next reply back for this many extra waits.
    pub delay_next_reply: u32,
    /// Write at most this many response bytes per wait.
    pub rsp_chunk: Option<usize>,
    /// Consume at most this many request bytes per wait.
    pub req_chunk: Option<usize>,
    /// Raw `XS_WATCH_EVENT` payloads to send just before the next reply.
    pub events_before_next_reply: Vec<Vec<u8>>,
    /// Give the next reply a req_id we never sent.
    pub bogus_id_next_reply: bool,
    /// Give the next reply the wrong type.
    pub wrong_type_next_reply: bool,
    /// Announce a 5000-byte payload in the next reply's header.
    pub oversize_next_reply: bool,
    /// At the next wait, set `rsp_prod` this far ahead of `rsp_cons`.
    pub jump_rsp_prod: Option<u32>,
    /// At the next wait, set `req_cons` this far beyond `req_prod`.
    pub jump_req_cons: Option<u32>,
    /// Consume requests but never answer.
    pub silent: bool,
    /// After the next answer is written, overwrite the client's own `rsp_cons` on the page with `rsp_prod`, as
    /// if the client had read everything: a daemon scribbling on the client's side of the ring.
    pub scribble_client_rsp_cons: bool,
    /// A hostile daemon flooding `XS_WATCH_EVENT`s for `(path prefix, token)`: each step (and, with
    /// `flood_on_notify`, each `notify`) fills whatever room the response ring has with events for
    /// `<prefix>/<n>`, `n` counting up, until `flood_budget` events are sent. Replies still get through when due
    /// (they go first), so a read can complete in the middle of the flood.
    pub flood: Option<(String, String)>,
    /// Events the flood may still send.
    pub flood_budget: u64,
    /// Events the flood sent.
    pub flooded: u64,
    /// Refill the ring on every `notify` and as soon as the client frees room (publishes `rsp_cons`), as a
    /// daemon running on another CPU would: the client never finds the ring empty while the flood lasts.
    pub flood_on_notify: bool,
}

impl Fake {
    fn new(req: u32, rsp: u32) -> Fake {
        let mut fake = Fake {
            page: vec![0; 4096],
            now: 1_000_000_000,
            waits: 0,
            notifies: 0,
            log: Vec::new(),
            commits: 0,
            nodes: Tree::new(),
            generation: 0,
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            next_tx: 1,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            triggers: Vec::new(),
            scheduled: Vec::new(),
            eagain_commits: 0,
            eacces: BTreeSet::new(),
            delay_next_reply: 0,
            rsp_chunk: None,
            req_chunk: None,
            events_before_next_reply: Vec::new(),
            bogus_id_next_reply: false,
            wrong_type_next_reply: false,
            oversize_next_reply: false,
            jump_rsp_prod: None,
            jump_req_cons: None,
            silent: false,
            scribble_client_rsp_cons: false,
            flood: None,
            flood_budget: 0,
            flooded: 0,
            flood_on_notify: false,
        };
        for i in [offsets::REQ_CONS, offsets::REQ_PROD] {
            fake.set_index(i, req);
        }
        for i in [offsets::RSP_CONS, offsets::RSP_PROD] {
            fake.set_index(i, rsp);
        }
        fake.nodes.insert("/".into(), Node { value: vec![], generation: 0 });
        fake.set(HOME, b"");
        fake
    }

    fn index(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.page[at..at + 4].try_into().unwrap())
    }

    fn set_index(&mut self, at: usize, value: u32) {
        self.page[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    // ----- what the tests (playing other domains) do -----

    /// Another domain writes `path`; fires watches.
    pub fn set(&mut self, path: &str, value: &[u8]) {
        let abs = abs_path(path).expect("test path is valid");
        self.apply(&Change::Write(abs, value.to_vec())).expect("write succeeds");
        self.flush();
    }

    /// Another domain removes `path` and everything below it; fires watches.
    pub fn remove(&mut self, path: &str) {
        let abs = abs_path(path).expect("test path is valid");
        self.apply(&Change::Rm(abs)).expect("rm succeeds");
        self.flush();
    }

    /// The value of `path`, if it exists.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.nodes.get(&abs_path(path).ok()?).map(|n| n.value.clone())
    }

    /// Whether the node exists.
    pub fn exists(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// When a client write sets `path` to `value`, another domain writes each of `then` (`None` removes) `delay`
    /// waits later.
    pub fn on_write(&mut self, path: &str, value: &[u8], then: &[(&str, Option<&[u8]>)], delay: u64) {
        self.triggers.push(Trigger {
            path: abs_path(path).unwrap(),
            value: value.to_vec(),
            then: then.iter().map(|(p, v)| (p.to_string(), v.map(|v| v.to_vec()))).collect(),
            delay,
        });
    }

    /// Another domain writes `path` (`None` removes) after `delay` more waits.
    pub fn schedule(&mut self, delay: u64, path: &str, value: Option<&[u8]>) {
        self.scheduled.push((self.waits + delay, path.to_string(), value.map(|v| v.to_vec())));
    }

    /// The registered watches, `(path as given, token)`.
    pub fn watches(&self) -> Vec<(String, String)> {
        self.watches.iter().map(|w| (w.given.clone(), w.token.clone())).collect()
    }

    /// Open transactions.
    pub fn open_transactions(&self) -> usize {
        self.transactions.len()
    }

    /// Requests received of type `t`.
    pub fn received(&self, t: MsgType) -> Vec<Received> {
        self.log.iter().filter(|r| r.msg_type == t as u32).cloned().collect()
    }

    /// The page's `req_prod`, as the client last published it.
    pub fn req_prod(&self) -> u32 {
        self.index(offsets::REQ_PROD)
    }

    /// The page's `rsp_cons`, as the client last published it.
    pub fn rsp_cons(&self) -> u32 {
        self.index(offsets::RSP_CONS)
    }

    /// What xenstored does when a restored or migrated domain is introduced to it (`XS_INTRODUCE`, its
    /// `domain_conn_reset`): the ring's four indices go back to 0, and the connection's watches, transactions,
    /// half-read request and unsent answers are gone. The tree stays.
    pub fn reintroduce(&mut self) {
        for i in [offsets::REQ_CONS, offsets::REQ_PROD, offsets::RSP_CONS, offsets::RSP_PROD] {
            self.set_index(i, 0);
        }
        self.watches.clear();
        self.transactions.clear();
        self.inbuf.clear();
        self.out.clear();
    }

    // ----- the daemon -----

    /// One step of the daemon. Returns whether it did anything the client can see.
    fn step(&mut self) -> bool {
        let mut progress = false;
        let now_due: Vec<_> = {
            let waits = self.waits;
            let (due, later) = self.scheduled.drain(..).partition(|(at, _, _)| *at <= waits);
            self.scheduled = later;
            due
        };
        for (_, path, value) in now_due {
            let abs = abs_path(&path).unwrap();
            let change = match value {
                Some(v) => Change::Write(abs, v),
                None => Change::Rm(abs),
            };
            let _ = self.apply(&change);
            progress = true;
        }
        if let Some(by) = self.jump_rsp_prod.take() {
            let cons = self.index(offsets::RSP_CONS);
            self.set_index(offsets::RSP_PROD, cons.wrapping_add(by));
            return true;
        }
        if let Some(by) = self.jump_req_cons.take() {
            let prod = self.index(offsets::REQ_PROD);
            self.set_index(offsets::REQ_CONS, prod.wrapping_add(by));
            return true;
        }
        if let Some(front) = self.out.front_mut() {
            front.hold = front.hold.saturating_sub(1);
        }

        // Consume request bytes.
        let (cons, prod) = (self.index(offsets::REQ_CONS), self.index(offsets::REQ_PROD));
        let available = prod.wrapping_sub(cons) as usize;
        assert!(available <= RING_SIZE, "the client overran the request ring: prod {prod} cons {cons}");
        let n = available.min(self.req_chunk.unwrap_or(usize::MAX));
        for i in 0..n {
            let byte = self.page[offsets::REQ + mask_idx(cons.wrapping_add(i as u32))];
            self.inbuf.push(byte);
        }
        if n > 0 {
            self.set_index(offsets::REQ_CONS, cons.wrapping_add(n as u32));
            progress = true;
        }
        while self.inbuf.len() >= HEADER_SIZE {
            let header = XsdSockmsg::parse(self.inbuf[..HEADER_SIZE].try_into().unwrap());
            let total = HEADER_SIZE + header.len as usize;
            if self.inbuf.len() < total {
                break;
            }
            let payload = self.inbuf[HEADER_SIZE..total].to_vec();
            self.inbuf.drain(..total);
            self.handle(header, payload);
        }

        let flushed = self.flush();
        if flushed && self.scribble_client_rsp_cons {
            self.scribble_client_rsp_cons = false;
            let prod = self.index(offsets::RSP_PROD);
            self.set_index(offsets::RSP_CONS, prod);
        }
        self.flood_ring() || flushed || progress
    }

    /// Fills the response ring's free room with flood events (see [`Fake::flood`]), never in the middle of a
    /// partly written message. Returns whether it wrote anything.
    fn flood_ring(&mut self) -> bool {
        let Some((prefix, token)) = self.flood.clone() else { return false };
        if self.out.front().is_some_and(|m| m.written > 0) {
            return false;
        }
        let mut wrote = false;
        while self.flood_budget > 0 {
            let payload = format!("{prefix}/{}\0{token}\0", self.flooded).into_bytes();
            let mut bytes =
                XsdSockmsg { msg_type: MsgType::WatchEvent as u32, req_id: 0, tx_id: 0, len: payload.len() as u32 }
                    .emit()
                    .to_vec();
            bytes.extend_from_slice(&payload);
            let (cons, prod) = (self.index(offsets::RSP_CONS), self.index(offsets::RSP_PROD));
            if RING_SIZE - (prod.wrapping_sub(cons) as usize) < bytes.len() {
                break;
            }
            for (i, byte) in bytes.iter().enumerate() {
                self.page[offsets::RSP + mask_idx(prod.wrapping_add(i as u32))] = *byte;
            }
            self.set_index(offsets::RSP_PROD, prod.wrapping_add(bytes.len() as u32));
            self.flood_budget -= 1;
            self.flooded += 1;
            wrote = true;
        }
        wrote
    }

    /// Writes queued messages into the response ring as room, holds and `rsp_chunk` allow.
    fn flush(&mut self) -> bool {
        let mut budget = self.rsp_chunk.unwrap_or(usize::MAX);
        let mut wrote = false;
        loop {
            let (cons, prod) = (self.index(offsets::RSP_CONS), self.index(offsets::RSP_PROD));
            let Some(front) = self.out.front_mut() else { break };
            if front.hold > 0 || budget == 0 {
                break;
            }
            let free = RING_SIZE - prod.wrapping_sub(cons) as usize;
            let n = free.min(budget).min(front.bytes.len() - front.written);
            if n == 0 {
                break;
            }
            let chunk = front.bytes[front.written..front.written + n].to_vec();
            front.written += n;
            let done = front.written == front.bytes.len();
            for (i, byte) in chunk.into_iter().enumerate() {
                self.page[offsets::RSP + mask_idx(prod.wrapping_add(i as u32))] = byte;
            }
            self.set_index(offsets::RSP_PROD, prod.wrapping_add(n as u32));
            budget -= n;
            wrote = true;
            if done {
                self.out.pop_front();
            }
        }
        wrote
    }

    fn busy(&self) -> bool {
        !self.out.is_empty() || !self.scheduled.is_empty()
    }

    fn queue(&mut self, msg_type: u32, req_id: u32, tx_id: u32, payload: &[u8], hold: u32) {
        let mut bytes = XsdSockmsg { msg_type, req_id, tx_id, len: payload.len() as u32 }.emit().to_vec();
        bytes.extend_from_slice(payload);
        self.out.push_back(OutMsg { bytes, written: 0, hold });
    }

    fn handle(&mut self, header: XsdSockmsg, payload: Vec<u8>) {
        self.log.push(Received {
            msg_type: header.msg_type,
            req_id: header.req_id,
            tx_id: header.tx_id,
            payload: payload.clone(),
        });
        if self.silent {
            return;
        }
        for event in std::mem::take(&mut self.events_before_next_reply) {
            self.queue(MsgType::WatchEvent as u32, 0, 0, &event, 0);
        }
        let mut fired_after = Vec::new();
        let result = self.execute(header, &payload, &mut fired_after);
        let (mut msg_type, body) = match result {
            Ok(body) => (header.msg_type, body),
            Err(errno) => (MsgType::Error as u32, format!("{}\0", errno.name()).into_bytes()),
        };
        let mut req_id = header.req_id;
        if std::mem::take(&mut self.bogus_id_next_reply) {
            req_id = req_id.wrapping_add(1000);
        }
        if std::mem::take(&mut self.wrong_type_next_reply) {
            msg_type = if msg_type == MsgType::Mkdir as u32 { MsgType::Rm as u32 } else { MsgType::Mkdir as u32 };
        }
        let hold = std::mem::take(&mut self.delay_next_reply);
        if std::mem::take(&mut self.oversize_next_reply) {
            let mut bytes = XsdSockmsg { msg_type, req_id, tx_id: header.tx_id, len: 5000 }.emit().to_vec();
            bytes.extend_from_slice(&body);
            self.out.push_back(OutMsg { bytes, written: 0, hold });
        } else {
            self.queue(msg_type, req_id, header.tx_id, &body, hold);
        }
        for event in fired_after {
            self.queue(MsgType::WatchEvent as u32, 0, 0, &event, 0);
        }
    }

    /// Carries out one request. Watch events caused by it are queued (ahead of the reply, as cxenstored does),
    /// except the first firing of a new watch, which goes into `after` (sent after the reply).
    fn execute(&mut self, header: XsdSockmsg, payload: &[u8], after: &mut Vec<Vec<u8>>) -> Result<Vec<u8>, Errno> {
        const OK: &[u8] = b"OK\0";
        let op = MsgType::from_u32(header.msg_type).ok_or(Errno::EINVAL)?;
        let tx = header.tx_id;
        if tx != 0 && !self.transactions.contains_key(&tx) {
            return Err(Errno::ENOENT);
        }
        let args = split_args(payload);
        match op {
            MsgType::Read | MsgType::Directory | MsgType::Mkdir | MsgType::Rm => {
                let [path] = args.as_slice() else { return Err(Errno::EINVAL) };
                let abs = self.checked_path(path)?;
                let tree = self.tree_for(tx, &abs);
                match op {
                    MsgType::Read => tree.get(&abs).map(|n| n.value.clone()).ok_or(Errno::ENOENT),
                    MsgType::Directory => {
                        if !tree.contains_key(&abs) {
                            return Err(Errno::ENOENT);
                        }
                        let mut listing = Vec::new();
                        for name in children(tree, &abs) {
                            listing.extend_from_slice(name.as_bytes());
                            listing.push(0);
                        }
                        Ok(listing)
                    }
                    MsgType::Mkdir => self.change(tx, Change::Mkdir(abs)).map(|()| OK.to_vec()),
                    _ => self.change(tx, Change::Rm(abs)).map(|()| OK.to_vec()),
                }
            }
            MsgType::Write => {
                let split = payload.iter().position(|&b| b == 0).ok_or(Errno::EINVAL)?;
                let path = std::str::from_utf8(&payload[..split]).map_err(|_| Errno::EINVAL)?;
                let abs = self.checked_path(path)?;
                self.change(tx, Change::Write(abs, payload[split + 1..].to_vec())).map(|()| OK.to_vec())
            }
            MsgType::Watch | MsgType::Unwatch => {
                let [path, token] = args.as_slice() else { return Err(Errno::EINVAL) };
                let abs = self.checked_path(path)?;
                let existing = self.watches.iter().position(|w| w.given == *path && w.token == *token);
                if op == MsgType::Watch {
                    if existing.is_some() {
                        return Err(Errno::EEXIST);
                    }
                    self.watches.push(Watch { given: path.to_string(), abs, token: token.to_string() });
                    after.push(format!("{path}\0{token}\0").into_bytes());
                } else {
                    self.watches.remove(existing.ok_or(Errno::ENOENT)?);
                }
                Ok(OK.to_vec())
            }
            MsgType::ResetWatches => {
                self.watches.clear();
                Ok(OK.to_vec())
            }
            MsgType::TransactionStart => {
                let id = self.next_tx;
                self.next_tx += 1;
                let snapshot = self.nodes.clone();
                let t =
                    Transaction { start: snapshot.clone(), tree: snapshot, touched: BTreeSet::new(), changes: vec![] };
                self.transactions.insert(id, t);
                Ok(format!("{id}\0").into_bytes())
            }
            MsgType::TransactionEnd => {
                let commit = match payload {
                    b"T\0" => true,
                    b"F\0" => false,
                    _ => return Err(Errno::EINVAL),
                };
                let t = self.transactions.remove(&tx).ok_or(Errno::ENOENT)?;
                if !commit {
                    return Ok(OK.to_vec());
                }
                self.commits += 1;
                if self.eagain_commits > 0 {
                    self.eagain_commits -= 1;
                    return Err(Errno::EAGAIN);
                }
                let generation = |tree: &Tree, p: &String| tree.get(p).map(|n| n.generation);
                if t.touched.iter().any(|p| generation(&t.start, p) != generation(&self.nodes, p)) {
                    return Err(Errno::EAGAIN);
                }
                for change in &t.changes {
                    self.apply(change)?;
                }
                Ok(OK.to_vec())
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    fn checked_path(&self, path: &str) -> Result<String, Errno> {
        let abs = abs_path(path)?;
        if self.eacces.contains(&abs) {
            return Err(Errno::EACCES);
        }
        Ok(abs)
    }

    /// The tree a request sees, noting the node as touched by the transaction.
    fn tree_for(&mut self, tx: u32, abs: &str) -> &Tree {
        match self.transactions.get_mut(&tx) {
            Some(t) => {
                t.touched.insert(abs.to_string());
                &t.tree
            }
            None => &self.nodes,
        }
    }

    /// A change by our client: into its transaction, or applied now.
    fn change(&mut self, tx: u32, change: Change) -> Result<(), Errno> {
        let Some(t) = self.transactions.get_mut(&tx) else { return self.apply(&change) };
        let path = match &change {
            Change::Write(p, _) | Change::Mkdir(p) | Change::Rm(p) => p.clone(),
        };
        t.touched.insert(path.clone());
        if matches!(change, Change::Rm(_)) {
            t.touched.extend(t.tree.keys().filter(|k| is_below(k, &path)).cloned());
        }
        self.generation += 1;
        change_tree(&mut t.tree, &change, self.generation)?;
        t.changes.push(change);
        Ok(())
    }

    /// Applies a change to the main tree, firing watches and triggers.
    fn apply(&mut self, change: &Change) -> Result<(), Errno> {
        self.generation += 1;
        if !change_tree(&mut self.nodes, change, self.generation)? {
            return Ok(());
        }
        let (path, removed) = match change {
            Change::Write(p, _) | Change::Mkdir(p) => (p, false),
            Change::Rm(p) => (p, true),
        };
        let mut events = Vec::new();
        for w in &self.watches {
            let fired = if *path == w.abs || is_below(path, &w.abs) {
                Some(path.as_str())
            } else if removed && is_below(&w.abs, path) {
                Some(w.abs.as_str())
            } else {
                None
            };
            if let Some(fired) = fired {
                let shown = if w.given.starts_with('/') { fired } else { relative(fired) };
                events.push(format!("{shown}\0{}\0", w.token).into_bytes());
            }
        }
        for event in events {
            self.queue(MsgType::WatchEvent as u32, 0, 0, &event, 0);
        }
        if let Change::Write(p, v) = change {
            let waits = self.waits;
            for t in self.triggers.iter().filter(|t| t.path == *p && t.value == *v) {
                for (path, value) in &t.then {
                    self.scheduled.push((waits + t.delay, path.clone(), value.clone()));
                }
            }
        }
        Ok(())
    }
}

/// Applies `change` to `tree`. Returns whether anything changed.
fn change_tree(tree: &mut Tree, change: &Change, generation: u64) -> Result<bool, Errno> {
    match change {
        Change::Write(p, v) => {
            create(tree, p, generation);
            let node = tree.get_mut(p).unwrap();
            node.value = v.clone();
            node.generation = generation;
            Ok(true)
        }
        Change::Mkdir(p) => {
            if tree.contains_key(p) {
                return Ok(false);
            }
            create(tree, p, generation);
            Ok(true)
        }
        Change::Rm(p) => {
            if p == "/" {
                return Err(Errno::EINVAL);
            }
            if !tree.contains_key(p) {
                // cxenstored: removing a missing node is fine if its parent exists.
                return if tree.contains_key(parent(p)) { Ok(false) } else { Err(Errno::ENOENT) };
            }
            tree.retain(|k, _| k != p && !is_below(k, p));
            if let Some(up) = tree.get_mut(parent(p)) {
                up.generation = generation;
            }
            Ok(true)
        }
    }
}

/// Creates `p` and missing ancestors with empty values; a parent gaining a child changes generation.
fn create(tree: &mut Tree, p: &str, generation: u64) {
    if tree.contains_key(p) {
        return;
    }
    create(tree, parent(p), generation);
    tree.get_mut(parent(p)).unwrap().generation = generation;
    tree.insert(p.to_string(), Node { value: vec![], generation });
}

fn children<'t>(tree: &'t Tree, abs: &'t str) -> impl Iterator<Item = &'t str> + 't {
    tree.keys().filter(move |k| is_below(k, abs) && !k[abs.len()..].trim_start_matches('/').contains('/')).map(
        move |k| {
            let rest = &k[abs.len()..];
            rest.strip_prefix('/').unwrap_or(rest)
        },
    )
}

fn parent(p: &str) -> &str {
    match p.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((up, _)) => up,
    }
}

/// True if `p` is strictly below `ancestor`.
fn is_below(p: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return p != "/";
    }
    p.len() > ancestor.len() && p.starts_with(ancestor) && p.as_bytes()[ancestor.len()] == b'/'
}

fn abs_path(path: &str) -> Result<String, Errno> {
    let abs = if path.starts_with('/') { path.to_string() } else { format!("{HOME}/{path}") };
    if path.is_empty() || abs.contains("//") || (abs.len() > 1 && abs.ends_with('/')) {
        return Err(Errno::EINVAL);
    }
    Ok(abs)
}

fn relative(abs: &str) -> &str {
    abs.strip_prefix(HOME).and_then(|r| r.strip_prefix('/')).unwrap_or(abs)
}

/// NUL-terminated UTF-8 strings; anything else is malformed.
fn split_args(payload: &[u8]) -> Vec<&str> {
    let Some(body) = payload.strip_suffix(b"\0") else { return vec![] };
    body.split(|&b| b == 0).map(|s| std::str::from_utf8(s).unwrap_or("\u{fffd}")).collect()
}

/// The client's view of the page.
pub struct FakeRing(Shared);

impl XsRing for FakeRing {
    fn req_cons(&self) -> u32 {
        self.0.borrow().index(offsets::REQ_CONS)
    }
    fn req_prod(&self) -> u32 {
        self.0.borrow().index(offsets::REQ_PROD)
    }
    fn write_req(&mut self, index: usize, byte: u8) {
        assert!(index < RING_SIZE);
        self.0.borrow_mut().page[offsets::REQ + index] = byte;
    }
    fn publish_req_prod(&mut self, prod: u32) {
        self.0.borrow_mut().set_index(offsets::REQ_PROD, prod);
    }
    fn rsp_prod(&self) -> u32 {
        self.0.borrow().index(offsets::RSP_PROD)
    }
    fn rsp_cons(&self) -> u32 {
        self.0.borrow().index(offsets::RSP_CONS)
    }
    fn read_rsp(&self, index: usize) -> u8 {
        assert!(index < RING_SIZE);
        self.0.borrow().page[offsets::RSP + index]
    }
    fn publish_rsp_cons(&mut self, cons: u32) {
        let mut fake = self.0.borrow_mut();
        fake.set_index(offsets::RSP_CONS, cons);
        if fake.flood_on_notify && fake.flood_ring() {
            fake.now += WAKE_NS;
        }
    }
}

/// The event channel and clock; `wait` runs one step of the daemon.
pub struct FakePlatform(Shared);

impl XsPlatform for FakePlatform {
    fn notify(&mut self) {
        let mut fake = self.0.borrow_mut();
        fake.notifies += 1;
        if fake.flood_on_notify && fake.flood_ring() {
            fake.now += WAKE_NS;
        }
    }

    fn wait(&mut self, deadline_ns: u64) -> bool {
        let mut fake = self.0.borrow_mut();
        fake.waits += 1;
        if fake.step() {
            fake.now += WAKE_NS;
            return true;
        }
        if fake.busy() {
            fake.now += TICK_NS;
            return fake.now < deadline_ns;
        }
        fake.now = fake.now.max(deadline_ns);
        false
    }

    fn now_ns(&self) -> u64 {
        self.0.borrow().now
    }
}
