//! Pending watch events, bounded and coalesced.
//!
//! A xenstore watch is level-triggered: an event says "look again", and whoever takes it re-reads the nodes it
//! cares about. So one pending event per `(token, path)` is enough, and a watch whose pending paths overflow may
//! collapse them into one event for the watched path itself ("something under this watch changed"). That keeps a
//! daemon that rewrites a node in a loop from growing our memory: the queue never holds more than
//! [`WATCH_EVENTS_MAX`] events, nor more than [`WATCH_PATHS_PER_TOKEN_MAX`] for one token.

use alloc::collections::VecDeque;
use alloc::string::String;

use super::client::WatchEvent;

/// The most watch events held at once (by the client, and by each queue built with [`WatchQueue::new`]).
pub const WATCH_EVENTS_MAX: usize = 64;
/// The most distinct paths held for one token before they collapse into one event for the watched path.
pub const WATCH_PATHS_PER_TOKEN_MAX: usize = 8;

struct Pending {
    event: WatchEvent,
    /// The path the watch was registered on (what a collapsed event names).
    watched: String,
    /// Stands for any number of changes under the watch: further events for the token are absorbed.
    collapsed: bool,
}

/// What [`WatchQueue::push`] did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued as a new pending event.
    Queued,
    /// Absorbed by an event already pending for the same token (same path, or the token's events collapsed).
    Coalesced,
    /// Queued after collapsing the token's pending paths (or every token's, when the queue was full) into one
    /// event for the watched path.
    Collapsed,
}

/// Pending watch events in arrival order, at most one per `(token, path)`, at most
/// [`WATCH_PATHS_PER_TOKEN_MAX`] per token and `capacity` in all.
pub struct WatchQueue {
    pending: VecDeque<Pending>,
    capacity: usize,
    coalesced: u64,
    collapses: u64,
}

impl Default for WatchQueue {
    fn default() -> Self {
        WatchQueue::new()
    }
}

impl WatchQueue {
    /// An empty queue holding at most [`WATCH_EVENTS_MAX`] events.
    pub fn new() -> WatchQueue {
        WatchQueue::with_capacity(WATCH_EVENTS_MAX)
    }

    /// An empty queue holding at most `capacity` events (at least 1). Its owner must not push events for more
    /// distinct tokens than that: once every token holds one collapsed event, nothing else can make room.
    pub fn with_capacity(capacity: usize) -> WatchQueue {
        WatchQueue { pending: VecDeque::new(), capacity: capacity.max(1), coalesced: 0, collapses: 0 }
    }

    /// Adds `event`, which a watch registered on `watched` (as given to `XS_WATCH`) produced.
    pub fn push(&mut self, event: WatchEvent, watched: &str) -> Pushed {
        let mut for_token = 0;
        for p in self.pending.iter().filter(|p| p.event.token == event.token) {
            if p.collapsed || p.event.path == event.path {
                self.coalesced += 1;
                return Pushed::Coalesced;
            }
            for_token += 1;
        }
        if for_token >= WATCH_PATHS_PER_TOKEN_MAX {
            self.collapse(&event.token, watched);
            return Pushed::Collapsed;
        }
        if self.pending.len() >= self.capacity {
            self.collapse_all();
            // Every token now holds at most one (collapsed) event.
            if self.pending.iter().any(|p| p.event.token == event.token) {
                self.coalesced += 1;
            } else if self.pending.len() < self.capacity {
                self.pending.push_back(collapsed(&event.token, watched));
            } else {
                // More distinct tokens than the capacity: the owner broke the contract of `with_capacity`.
                self.coalesced += 1;
            }
            return Pushed::Collapsed;
        }
        self.pending.push_back(Pending { event, watched: String::from(watched), collapsed: false });
        Pushed::Queued
    }

    /// Replaces `token`'s pending events by one collapsed event for `watched`, where the first of them was.
    fn collapse(&mut self, token: &str, watched: &str) {
        let at = self.pending.iter().position(|p| p.event.token == token);
        self.pending.retain(|p| p.event.token != token);
        let at = at.unwrap_or(self.pending.len()).min(self.pending.len());
        self.pending.insert(at, collapsed(token, watched));
        self.collapses += 1;
    }

    /// Collapses every token with more than one pending event into one event for its watched path, where its
    /// oldest event was.
    fn collapse_all(&mut self) {
        let mut kept: VecDeque<Pending> = VecDeque::with_capacity(self.pending.len());
        for p in self.pending.drain(..) {
            match kept.iter_mut().find(|k| k.event.token == p.event.token) {
                Some(k) => {
                    k.collapsed = true;
                    k.event.path.clone_from(&k.watched);
                    self.coalesced += 1;
                }
                None => kept.push_back(p),
            }
        }
        self.pending = kept;
        self.collapses += 1;
    }

    /// The oldest pending event.
    pub fn pop(&mut self) -> Option<WatchEvent> {
        self.pending.pop_front().map(|p| p.event)
    }

    /// The oldest pending event that `wanted` accepts; the others stay, in order.
    pub fn take_where(&mut self, wanted: impl Fn(&WatchEvent) -> bool) -> Option<WatchEvent> {
        let at = self.pending.iter().position(|p| wanted(&p.event))?;
        self.pending.remove(at).map(|p| p.event)
    }

    /// Drops every pending event for `token`.
    pub fn forget(&mut self, token: &str) {
        self.pending.retain(|p| p.event.token != token);
    }

    /// Drops everything pending.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The most events this queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Events absorbed by one already pending (for diagnostics: how hard the daemon is rewriting).
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    /// Times pending events were collapsed because a token or the whole queue overflowed.
    pub fn collapses(&self) -> u64 {
        self.collapses
    }
}

fn collapsed(token: &str, watched: &str) -> Pending {
    let event = WatchEvent { path: String::from(watched), token: String::from(token) };
    Pending { event, watched: String::from(watched), collapsed: true }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    fn ev(path: &str, token: &str) -> WatchEvent {
        WatchEvent { path: path.into(), token: token.into() }
    }

    #[test]
    fn same_path_coalesces_and_order_is_kept() {
        let mut q = WatchQueue::new();
        assert_eq!(q.push(ev("/a/1", "a"), "/a"), Pushed::Queued);
        assert_eq!(q.push(ev("/b", "b"), "/b"), Pushed::Queued);
        assert_eq!(q.push(ev("/a/1", "a"), "/a"), Pushed::Coalesced);
        assert_eq!(q.push(ev("/a/2", "a"), "/a"), Pushed::Queued);
        let order: Vec<_> = core::iter::from_fn(|| q.pop()).map(|e| e.path).collect();
        assert_eq!(order, ["/a/1", "/b", "/a/2"]);
        assert_eq!(q.coalesced(), 1);
    }

    #[test]
    fn a_token_overflowing_collapses_to_its_watched_path_in_its_first_place() {
        let mut q = WatchQueue::new();
        q.push(ev("/b", "b"), "/b");
        for i in 0..WATCH_PATHS_PER_TOKEN_MAX {
            assert_eq!(q.push(ev(&format!("/a/{i}"), "a"), "/a"), Pushed::Queued);
        }
        q.push(ev("/c", "c"), "/c");
        assert_eq!(q.push(ev("/a/x", "a"), "/a"), Pushed::Collapsed);
        assert_eq!(q.push(ev("/a/y", "a"), "/a"), Pushed::Coalesced, "absorbed until taken");
        let all: Vec<_> = core::iter::from_fn(|| q.pop()).map(|e| e.path).collect();
        assert_eq!(all, ["/b", "/a", "/c"]);
        // Taken: the next event for the token is queued afresh.
        assert_eq!(q.push(ev("/a/z", "a"), "/a"), Pushed::Queued);
    }

    #[test]
    fn a_full_queue_collapses_every_token_and_stays_within_capacity() {
        let mut q = WatchQueue::with_capacity(6);
        for i in 0..100 {
            let token = format!("t{}", i % 3);
            q.push(ev(&format!("/{token}/{i}"), &token), &format!("/{token}"));
            assert!(q.len() <= 6, "{} after {i}", q.len());
        }
        let events: Vec<_> = core::iter::from_fn(|| q.pop()).map(|e| (e.token, e.path)).collect();
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events.iter().all(|(t, p)| *p == format!("/{t}")), "collapsed to the watched paths: {events:?}");
    }

    #[test]
    fn forget_and_take_where() {
        let mut q = WatchQueue::new();
        q.push(ev("/a", "a"), "/a");
        q.push(ev("/b", "b"), "/b");
        q.push(ev("/b/1", "b"), "/b");
        assert_eq!(q.take_where(|e| e.token == "b").unwrap().path, "/b");
        q.forget("b");
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop().unwrap().token, "a");
        assert!(q.is_empty());
    }
}
