//! [`LogRing`]: the last records, in a fixed number of bytes. The logger keeps one (`logring=`, 64 KiB by default)
//! that `sirocco::logs::recent()` reads, and the runtime's syslog queue is another (a full queue refuses instead
//! of forgetting the oldest: [`LogRing::try_push`]).
//!
//! Each record is a 21-byte header and its text, stored back to back and wrapping around the end of the buffer:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | uptime, ns (little-endian) |
//! | 8..16 | wall clock, ns since the epoch; `u64::MAX` when unknown |
//! | 16 | level (1 error .. 5 trace) |
//! | 17..19 | target length |
//! | 19..21 | message length |
//! | 21.. | target, then message (UTF-8) |
//!
//! The buffer is allocated once; nothing here allocates afterwards except [`LogRing::pop`] and
//! [`LogRing::records`], which copy records out.

use super::{truncate_str, OwnedRecord, Record};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use log::Level;

/// Bytes of each record's header.
pub const HEADER: usize = 21;

/// A ring of whole records in a fixed number of bytes.
pub struct LogRing {
    buf: Box<[u8]>,
    /// Offset of the oldest record.
    head: usize,
    /// Bytes in use (headers included).
    used: usize,
    records: usize,
    evicted: u64,
}

/// What a ring holds and has let go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Its size, bytes.
    pub capacity: usize,
    /// Bytes in use.
    pub bytes: usize,
    /// Records held.
    pub records: usize,
    /// Records forgotten to make room for newer ones.
    pub evicted: u64,
}

fn level_code(l: Level) -> u8 {
    l as usize as u8
}

fn level_from(code: u8) -> Level {
    match code {
        1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        4 => Level::Debug,
        _ => Level::Trace,
    }
}

impl LogRing {
    /// A ring of `capacity` bytes; `None` if the heap cannot give them.
    pub fn try_new(capacity: usize) -> Option<LogRing> {
        let mut v = Vec::new();
        v.try_reserve_exact(capacity).ok()?;
        v.resize(capacity, 0);
        Some(LogRing { buf: v.into_boxed_slice(), head: 0, used: 0, records: 0, evicted: 0 })
    }

    /// What it holds and has let go.
    pub fn stats(&self) -> RingStats {
        RingStats { capacity: self.buf.len(), bytes: self.used, records: self.records, evicted: self.evicted }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The record as stored: its target and message cut (on character boundaries) to what a record can hold in
    /// this ring; `None` if not even the header and target fit.
    fn fitted<'a>(&self, r: &Record<'a>) -> Option<Record<'a>> {
        let target = truncate_str(r.target, usize::from(u16::MAX));
        let room = self.buf.len().checked_sub(HEADER + target.len())?;
        let message = truncate_str(r.message, room.min(usize::from(u16::MAX)));
        Some(Record { target, message, ..*r })
    }

    /// Adds `r`, forgetting the oldest records until it fits. A message too long for the whole ring is cut to
    /// fit; false (nothing stored) only when not even the header and target fit.
    pub fn push(&mut self, r: &Record<'_>) -> bool {
        let Some(r) = self.fitted(r) else { return false };
        let size = HEADER + r.target.len() + r.message.len();
        while self.buf.len() - self.used < size {
            self.drop_oldest();
            self.evicted += 1;
        }
        self.write(&r);
        true
    }

    /// Adds `r` if it fits beside what is held; false (nothing stored, nothing forgotten) if it does not.
    pub fn try_push(&mut self, r: &Record<'_>) -> bool {
        let Some(r) = self.fitted(r) else { return false };
        if self.buf.len() - self.used < HEADER + r.target.len() + r.message.len() {
            return false;
        }
        self.write(&r);
        true
    }

    /// Takes the oldest record out.
    pub fn pop(&mut self) -> Option<OwnedRecord> {
        if self.records == 0 {
            return None;
        }
        let (record, size) = self.read(self.head);
        self.head = (self.head + size) % self.buf.len();
        self.used -= size;
        self.records -= 1;
        Some(record)
    }

    /// Copies of the records held, oldest first.
    pub fn records(&self) -> Vec<OwnedRecord> {
        let mut out = Vec::with_capacity(self.records);
        let mut at = self.head;
        for _ in 0..self.records {
            let (record, size) = self.read(at);
            out.push(record);
            at = (at + size) % self.buf.len();
        }
        out
    }

    fn drop_oldest(&mut self) {
        let (tlen, mlen) = self.lengths(self.head);
        let size = HEADER + tlen + mlen;
        self.head = (self.head + size) % self.buf.len();
        self.used -= size;
        self.records -= 1;
    }

    fn write(&mut self, r: &Record<'_>) {
        let mut header = [0u8; HEADER];
        header[0..8].copy_from_slice(&r.uptime_ns.to_le_bytes());
        header[8..16].copy_from_slice(&r.wall_ns.unwrap_or(u64::MAX).to_le_bytes());
        header[16] = level_code(r.level);
        // `fitted` kept both under u16::MAX.
        header[17..19].copy_from_slice(&(r.target.len() as u16).to_le_bytes());
        header[19..21].copy_from_slice(&(r.message.len() as u16).to_le_bytes());
        let mut at = (self.head + self.used) % self.buf.len();
        for part in [&header[..], r.target.as_bytes(), r.message.as_bytes()] {
            self.copy_in(at, part);
            at = (at + part.len()) % self.buf.len();
        }
        self.used += HEADER + r.target.len() + r.message.len();
        self.records += 1;
    }

    fn copy_in(&mut self, at: usize, bytes: &[u8]) {
        let first = bytes.len().min(self.buf.len() - at);
        self.buf[at..at + first].copy_from_slice(&bytes[..first]);
        self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
    }

    fn copy_out(&self, at: usize, out: &mut [u8]) {
        let first = out.len().min(self.buf.len() - at);
        out[..first].copy_from_slice(&self.buf[at..at + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.buf[..rest]);
    }

    fn header(&self, at: usize) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        self.copy_out(at, &mut h);
        h
    }

    /// Target and message lengths of the record at `at`.
    fn lengths(&self, at: usize) -> (usize, usize) {
        let h = self.header(at);
        (usize::from(u16::from_le_bytes([h[17], h[18]])), usize::from(u16::from_le_bytes([h[19], h[20]])))
    }

    /// The record at `at`, and its size in the ring.
    fn read(&self, at: usize) -> (OwnedRecord, usize) {
        let h = self.header(at);
        let (tlen, mlen) = self.lengths(at);
        let mut text = alloc::vec![0u8; tlen + mlen];
        self.copy_out((at + HEADER) % self.buf.len(), &mut text);
        let message = text.split_off(tlen);
        // Only whole `&str`s were stored; a lossy conversion keeps a logic error from becoming a panic.
        let string = |v: Vec<u8>| String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into());
        let uptime_ns = u64::from_le_bytes(h[0..8].try_into().unwrap_or_default());
        let wall = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
        let record = OwnedRecord {
            uptime_ns,
            wall_ns: (wall != u64::MAX).then_some(wall),
            level: level_from(h[16]),
            target: string(text),
            message: string(message),
        };
        (record, HEADER + tlen + mlen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(n: u64, target: &'a str, message: &'a str) -> Record<'a> {
        Record { uptime_ns: n, wall_ns: Some(1_700_000_000_000_000_000 + n), level: Level::Info, target, message }
    }

    fn messages(r: &LogRing) -> Vec<String> {
        r.records().into_iter().map(|r| r.message).collect()
    }

    #[test]
    fn records_come_back_as_they_went_in() {
        let mut r = LogRing::try_new(1024).unwrap();
        assert!(r.is_empty());
        let a = Record { uptime_ns: 7, wall_ns: None, level: Level::Warn, target: "sirocco::net", message: "vif0: é" };
        let b = Record { level: Level::Trace, ..rec(8, "smoltcp", "") };
        assert!(r.push(&a) && r.push(&b));
        let all = r.records();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_record(), a);
        assert_eq!(all[1].as_record(), b);
        assert_eq!(r.stats(), RingStats { capacity: 1024, bytes: 2 * HEADER + 12 + 8 + 7, records: 2, evicted: 0 });
        for level in [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace] {
            let mut r = LogRing::try_new(64).unwrap();
            r.push(&Record { level, ..rec(1, "t", "m") });
            assert_eq!(r.pop().unwrap().level, level);
        }
    }

    #[test]
    fn the_oldest_records_make_room_and_are_counted() {
        // Each record is 21 + 1 + 10 = 32 bytes: a 100-byte ring holds three.
        let mut r = LogRing::try_new(100).unwrap();
        for i in 0..10u64 {
            assert!(r.push(&rec(i, "t", &format!("message {i:02}"))));
            assert!(r.stats().bytes <= 100);
        }
        assert_eq!(messages(&r), ["message 07", "message 08", "message 09"]);
        assert_eq!(r.stats().evicted, 7);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn records_wrap_around_the_end_of_the_buffer() {
        // Sizes that do not divide the capacity put headers and texts across the end at every offset.
        let mut r = LogRing::try_new(97).unwrap();
        for i in 0..200u64 {
            let msg = "x".repeat((i % 13) as usize) + &i.to_string();
            assert!(r.push(&rec(i, "sirocco::net", &msg)));
            let last = r.records().pop().unwrap();
            assert_eq!(
                (last.uptime_ns, last.message.as_str(), last.target.as_str()),
                (i, msg.as_str(), "sirocco::net")
            );
            assert_eq!(last.wall_ns, Some(1_700_000_000_000_000_000 + i));
        }
    }

    #[test]
    fn a_record_too_long_for_the_ring_is_cut_to_fit() {
        let mut r = LogRing::try_new(HEADER + 4 + 11).unwrap();
        r.push(&rec(0, "old", ""));
        assert!(r.push(&rec(1, "http", "0123456789abcdef")));
        assert_eq!(messages(&r), ["0123456789a"]);
        assert_eq!(r.stats().evicted, 1);
        // On a character boundary: 11 bytes of room hold five two-byte characters.
        assert!(r.push(&rec(2, "http", "éééééé")));
        assert_eq!(messages(&r), ["ééééé"]);
        // A target that does not fit stores nothing and forgets nothing.
        assert!(!r.push(&rec(3, "a-target-longer-than-the-ring", "m")));
        assert_eq!(messages(&r), ["ééééé"]);
    }

    #[test]
    fn try_push_refuses_rather_than_forget() {
        let mut r = LogRing::try_new(100).unwrap();
        for i in 0..3u64 {
            assert!(r.try_push(&rec(i, "t", &format!("message {i:02}"))));
        }
        assert!(!r.try_push(&rec(3, "t", "message 03")));
        assert_eq!(messages(&r), ["message 00", "message 01", "message 02"]);
        assert_eq!(r.stats().evicted, 0);
        // Taking one out makes room for one.
        assert_eq!(r.pop().unwrap().message, "message 00");
        assert!(r.try_push(&rec(3, "t", "message 03")));
        assert_eq!(messages(&r), ["message 01", "message 02", "message 03"]);
    }

    #[test]
    fn pop_takes_the_oldest_until_empty() {
        let mut r = LogRing::try_new(50).unwrap();
        for i in 0..5u64 {
            r.push(&rec(i, "t", &format!("m{i}")));
        }
        let mut got = Vec::new();
        while let Some(rec) = r.pop() {
            got.push(rec.uptime_ns);
        }
        assert_eq!(got, [3, 4]);
        assert_eq!(r.stats(), RingStats { capacity: 50, bytes: 0, records: 0, evicted: 3 });
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn a_ring_of_nothing_stores_nothing() {
        let mut r = LogRing::try_new(0).unwrap();
        assert!(!r.push(&rec(0, "t", "m")));
        assert!(!r.try_push(&rec(0, "t", "m")));
        assert!(r.records().is_empty());
        assert!(LogRing::try_new(usize::MAX).is_none());
    }
}
