//! The trace buffer (issue 15): a fixed-size ring of small binary events, and their export as Chrome trace-event
//! JSON, which Perfetto and `chrome://tracing` open.
//!
//! Recording is for hot paths: whether a category is on is one relaxed atomic load and a branch
//! ([`Tracer::enabled`]); an event is a few words copied into a ring allocated once, at [`Tracer::new`] (names are
//! `&'static str`, never formatted), and when the ring is full the oldest event makes room and is counted. The
//! runtime owns one tracer; which categories it records comes from the command line (`trace=net,blk`, parsed by
//! [`parse_categories`]) or is changed at run time ([`Tracer::set_mask`]).
//!
//! Not yet wired in: the runtime's trace points, `GET /trace` and the host tool are the next steps of issue 15.

use crate::metrics::json::string as json_string;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

/// What part of the system an event comes from; each is one bit of a tracer's mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Category {
    /// The run loop: blocking in the hypervisor, wake-ups, task polls.
    Run = 0,
    /// Event channels: notifications sent and received.
    Evtchn = 1,
    /// Netfront: RX and TX batches, a full ring.
    Net = 2,
    /// The TCP stack: polls, retransmissions, window changes.
    Tcp = 3,
    /// Blkfront: requests submitted and completed.
    Blk = 4,
    /// Xenstore requests and watch events.
    Xenstore = 5,
    /// The application's own events.
    App = 6,
}

impl Category {
    /// Every category, in bit order.
    pub const ALL: [Category; 7] = [
        Category::Run,
        Category::Evtchn,
        Category::Net,
        Category::Tcp,
        Category::Blk,
        Category::Xenstore,
        Category::App,
    ];

    /// Its name on the command line and in the exported trace.
    pub const fn name(self) -> &'static str {
        match self {
            Category::Run => "run",
            Category::Evtchn => "evtchn",
            Category::Net => "net",
            Category::Tcp => "tcp",
            Category::Blk => "blk",
            Category::Xenstore => "xenstore",
            Category::App => "app",
        }
    }

    /// Its bit in a mask.
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// How an event spans time, as the trace-event format has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A span starts (`"B"`); the next [`Phase::End`] of the same name and category closes it.
    Begin,
    /// A span ends (`"E"`).
    End,
    /// A point in time (`"i"`).
    Instant,
    /// A counter's new value (`"C"`): the event's `value`.
    Counter,
}

/// One recorded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// When, in nanoseconds of the clock the runtime records with (Xen system time).
    pub ts_ns: u64,
    /// Where from.
    pub category: Category,
    /// Begin, end, instant or counter.
    pub phase: Phase,
    /// What (a fixed name: "rx batch", "task poll").
    pub name: &'static str,
    /// One number that goes with it (packets in the batch, the task's id, the counter's value).
    pub value: u64,
}

/// A category name on the command line that is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCategory<'a>(pub &'a str);

impl fmt::Display for UnknownCategory<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace category {:?} is not one of: all", self.0)?;
        for c in Category::ALL {
            write!(f, ", {}", c.name())?;
        }
        Ok(())
    }
}

impl core::error::Error for UnknownCategory<'_> {}

/// The mask for a command line's `trace=` value: category names separated by commas, or `all`; empty is none.
pub fn parse_categories(spec: &str) -> Result<u32, UnknownCategory<'_>> {
    let mut mask = 0;
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        mask |= match word {
            "all" => Category::ALL.iter().fold(0, |m, c| m | c.bit()),
            _ => Category::ALL.iter().find(|c| c.name() == word).ok_or(UnknownCategory(word))?.bit(),
        };
    }
    Ok(mask)
}

/// The ring: the events, oldest first from `start`, and how many were overwritten.
struct Ring {
    events: Vec<Event>,
    capacity: usize,
    start: usize,
    overwritten: u64,
}

/// A trace buffer: which categories are on, and the ring of the last events.
pub struct Tracer {
    mask: AtomicU32,
    ring: spin::Mutex<Ring>,
}

impl Tracer {
    /// A tracer keeping the last `capacity` events (allocated now, once), recording the categories in `mask`.
    pub fn new(capacity: usize, mask: u32) -> Tracer {
        Tracer {
            mask: AtomicU32::new(mask),
            ring: spin::Mutex::new(Ring { events: Vec::with_capacity(capacity), capacity, start: 0, overwritten: 0 }),
        }
    }

    /// Whether `category` is recorded: a relaxed load and a test, the whole cost of a trace point when it is off.
    #[inline]
    pub fn enabled(&self, category: Category) -> bool {
        self.mask.load(Ordering::Relaxed) & category.bit() != 0
    }

    /// Switches the recorded categories.
    pub fn set_mask(&self, mask: u32) {
        self.mask.store(mask, Ordering::Relaxed);
    }

    /// The recorded categories.
    pub fn mask(&self) -> u32 {
        self.mask.load(Ordering::Relaxed)
    }

    /// Records `event` if its category is on; when the ring is full the oldest event makes room (and is counted).
    pub fn record(&self, event: Event) {
        if !self.enabled(event.category) {
            return;
        }
        let mut ring = self.ring.lock();
        if ring.capacity == 0 {
            ring.overwritten += 1;
        } else if ring.events.len() < ring.capacity {
            ring.events.push(event);
        } else {
            let at = ring.start;
            ring.events[at] = event;
            ring.start = (at + 1) % ring.capacity;
            ring.overwritten += 1;
        }
    }

    /// A copy of the events, oldest first, and how many older ones were overwritten.
    pub fn events(&self) -> (Vec<Event>, u64) {
        let ring = self.ring.lock();
        let (newer, older) = ring.events.split_at(ring.start);
        let mut out = Vec::with_capacity(ring.events.len());
        out.extend_from_slice(older);
        out.extend_from_slice(newer);
        (out, ring.overwritten)
    }
}

/// The events as Chrome trace-event JSON (the "JSON object format": `{"traceEvents": [...]}`), which Perfetto and
/// `chrome://tracing` open. Each category is a thread of its own in process 1 (named after it); timestamps are
/// microseconds with nanosecond decimals; `overwritten` goes into the metadata.
pub fn chrome_json(events: &[Event], overwritten: u64) -> String {
    let mut out = String::with_capacity(64 + events.len() * 96);
    out.push_str("{\"traceEvents\":[");
    for (i, c) in Category::ALL.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ =
            write!(out, "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":", *c as u8);
        json_string(&mut out, c.name());
        out.push_str("}}");
    }
    for e in events {
        let ph = match e.phase {
            Phase::Begin => "B",
            Phase::End => "E",
            Phase::Instant => "i",
            Phase::Counter => "C",
        };
        out.push_str(",{\"name\":");
        json_string(&mut out, e.name);
        let _ = write!(
            out,
            ",\"cat\":\"{}\",\"ph\":\"{ph}\",\"ts\":{}.{:03},\"pid\":1,\"tid\":{}",
            e.category.name(),
            e.ts_ns / 1000,
            e.ts_ns % 1000,
            e.category as u8
        );
        match e.phase {
            Phase::Instant => out.push_str(",\"s\":\"t\""),
            Phase::Counter => {
                out.push_str(",\"args\":{");
                json_string(&mut out, e.name);
                let _ = write!(out, ":{}}}", e.value);
            }
            Phase::Begin | Phase::End => {}
        }
        if !matches!(e.phase, Phase::Counter) {
            let _ = write!(out, ",\"args\":{{\"value\":{}}}", e.value);
        }
        out.push('}');
    }
    let _ = write!(out, "],\"displayTimeUnit\":\"ns\",\"otherData\":{{\"overwritten\":{overwritten}}}}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_ns: u64, category: Category, phase: Phase, name: &'static str, value: u64) -> Event {
        Event { ts_ns, category, phase, name, value }
    }

    #[test]
    fn categories_come_from_the_command_line_and_a_bad_one_is_named() {
        assert_eq!(parse_categories("net,blk").unwrap(), Category::Net.bit() | Category::Blk.bit());
        assert_eq!(parse_categories(" run , tcp ,").unwrap(), Category::Run.bit() | Category::Tcp.bit());
        assert_eq!(parse_categories("").unwrap(), 0);
        assert_eq!(parse_categories("all").unwrap().count_ones(), 7);
        let e = parse_categories("net,disk").unwrap_err();
        assert_eq!(e, UnknownCategory("disk"));
        let shown = alloc::format!("{e}");
        assert!(shown.contains("\"disk\"") && shown.contains("blk") && shown.contains("all"), "{shown}");
    }

    #[test]
    fn only_enabled_categories_are_recorded_and_the_mask_can_change_at_run_time() {
        let t = Tracer::new(8, Category::Net.bit());
        assert!(t.enabled(Category::Net) && !t.enabled(Category::Blk));
        t.record(ev(1, Category::Net, Phase::Instant, "rx batch", 3));
        t.record(ev(2, Category::Blk, Phase::Instant, "submit", 1));
        t.set_mask(Category::Blk.bit());
        t.record(ev(3, Category::Net, Phase::Instant, "rx batch", 4));
        t.record(ev(4, Category::Blk, Phase::Instant, "submit", 2));
        let (events, overwritten) = t.events();
        assert_eq!(events.iter().map(|e| e.ts_ns).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(overwritten, 0);
    }

    #[test]
    fn a_full_ring_keeps_the_newest_events_in_order_and_counts_the_rest() {
        let t = Tracer::new(3, Category::Run.bit());
        for ts in 1..=7 {
            t.record(ev(ts, Category::Run, Phase::Instant, "wake", ts));
        }
        let (events, overwritten) = t.events();
        assert_eq!(events.iter().map(|e| e.ts_ns).collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(overwritten, 4);
        let none = Tracer::new(0, Category::Run.bit());
        none.record(ev(1, Category::Run, Phase::Instant, "wake", 0));
        assert_eq!(none.events(), (Vec::new(), 1));
    }

    #[test]
    fn events_export_as_chrome_trace_json_byte_for_byte() {
        let events = [
            ev(1_000_500, Category::Run, Phase::Begin, "task poll", 7),
            ev(1_002_000, Category::Run, Phase::End, "task poll", 7),
            ev(1_003_001, Category::Net, Phase::Instant, "rx \"batch\"", 12),
            ev(1_004_000, Category::Blk, Phase::Counter, "in flight", 3),
        ];
        let json = chrome_json(&events, 2);
        let threads = "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"run\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"evtchn\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":2,\"args\":{\"name\":\"net\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":3,\"args\":{\"name\":\"tcp\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":4,\"args\":{\"name\":\"blk\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":5,\"args\":{\"name\":\"xenstore\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":6,\"args\":{\"name\":\"app\"}}";
        let want = alloc::format!(
            "{{\"traceEvents\":[{threads},\
{{\"name\":\"task poll\",\"cat\":\"run\",\"ph\":\"B\",\"ts\":1000.500,\"pid\":1,\"tid\":0,\"args\":{{\"value\":7}}}},\
{{\"name\":\"task poll\",\"cat\":\"run\",\"ph\":\"E\",\"ts\":1002.000,\"pid\":1,\"tid\":0,\"args\":{{\"value\":7}}}},\
{{\"name\":\"rx \\\"batch\\\"\",\"cat\":\"net\",\"ph\":\"i\",\"ts\":1003.001,\"pid\":1,\"tid\":2,\"s\":\"t\",\"args\":{{\"value\":12}}}},\
{{\"name\":\"in flight\",\"cat\":\"blk\",\"ph\":\"C\",\"ts\":1004.000,\"pid\":1,\"tid\":4,\"args\":{{\"in flight\":3}}}}\
],\"displayTimeUnit\":\"ns\",\"otherData\":{{\"overwritten\":2}}}}"
        );
        assert_eq!(json, want);
    }
}
