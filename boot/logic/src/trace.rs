//! The trace buffer (issue 15): a fixed-size ring of small binary events that every layer records into, and the
//! text dump that carries it to dom0 without a network (the console, on a crash or on request).
//!
//! Recording is for hot paths: whether a category is on is one relaxed atomic load and a branch ([`enabled`]); an
//! event is a few words copied into a ring allocated once, at [`Tracer::new`] (names are `&'static str`, never
//! formatted), and when the ring is full the oldest event makes room and is counted. The runtime installs one
//! tracer ([`install`]) with the clock it records with; which categories it records comes from the command line
//! (`trace=net,blk`, parsed by [`parse_categories`]) or is changed at run time ([`set_mask`]). The drivers, the
//! network stack and the run loop call [`event`]; until a tracer is installed (and in host tests) it does nothing.
//!
//! The export a viewer opens (Chrome trace-event JSON, for Perfetto) is `sirocco_kernel_logic::trace_json`; the
//! host tool `sirocco trace` turns a [dump](write_dump) into that and into an HTML timeline.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
    /// A request's path starts here (a flow, `"s"`): `value` is the flow's id ([`flow_id`]).
    FlowStart,
    /// The request's path passes here (`"t"`).
    FlowStep,
    /// The request's path ends here (`"f"`).
    FlowEnd,
}

impl Phase {
    /// Every phase, in the order of their letters in a dump.
    pub const ALL: [Phase; 7] =
        [Phase::Begin, Phase::End, Phase::Instant, Phase::Counter, Phase::FlowStart, Phase::FlowStep, Phase::FlowEnd];

    /// Its letter in the trace-event format (and in a dump).
    pub const fn letter(self) -> char {
        match self {
            Phase::Begin => 'B',
            Phase::End => 'E',
            Phase::Instant => 'i',
            Phase::Counter => 'C',
            Phase::FlowStart => 's',
            Phase::FlowStep => 't',
            Phase::FlowEnd => 'f',
        }
    }
}

/// The id of a TCP connection's request flows: its local port above its remote port, as both the wire (frames in
/// and out) and the application (its stream's endpoints) see them.
pub const fn flow_id(local_port: u16, remote_port: u16) -> u64 {
    ((local_port as u64) << 16) | remote_port as u64
}

/// One recorded event; its name is `&'static str` in the guest and owned text once parsed from a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<N = &'static str> {
    /// When, in nanoseconds of the clock the runtime records with (Xen system time).
    pub ts_ns: u64,
    /// Where from.
    pub category: Category,
    /// Begin, end, instant or counter.
    pub phase: Phase,
    /// What (a fixed name: "rx batch", "task poll").
    pub name: N,
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
    /// Events not recorded because the ring was locked: recorded from inside a dump (writing to the console
    /// notifies an event channel, a trace point), which must neither wait for itself nor deadlock.
    busy: AtomicU64,
}

impl Tracer {
    /// A tracer keeping the last `capacity` events, recording the categories in `mask`. The ring is allocated
    /// once, when something is first recorded: now if `mask` is not empty, else when [`Tracer::set_mask`] first
    /// turns a category on.
    pub fn new(capacity: usize, mask: u32) -> Tracer {
        let events = if mask != 0 { Vec::with_capacity(capacity) } else { Vec::new() };
        let ring = spin::Mutex::new(Ring { events, capacity, start: 0, overwritten: 0 });
        Tracer { mask: AtomicU32::new(mask), ring, busy: AtomicU64::new(0) }
    }

    /// Whether `category` is recorded: a relaxed load and a test, the whole cost of a trace point when it is off.
    #[inline]
    pub fn enabled(&self, category: Category) -> bool {
        self.mask.load(Ordering::Relaxed) & category.bit() != 0
    }

    /// Switches the recorded categories (allocating the ring if this is the first time any is on).
    pub fn set_mask(&self, mask: u32) {
        if mask != 0 {
            let mut ring = self.ring.lock();
            let capacity = ring.capacity;
            if ring.events.capacity() < capacity {
                ring.events.reserve_exact(capacity);
            }
        }
        self.mask.store(mask, Ordering::Relaxed);
    }

    /// The recorded categories.
    pub fn mask(&self) -> u32 {
        self.mask.load(Ordering::Relaxed)
    }

    /// Records `event` if its category is on; when the ring is full the oldest event makes room (and is counted).
    /// Never waits: an event recorded while the ring is locked (from inside [`Tracer::dump`]) is counted instead.
    pub fn record(&self, event: Event) {
        if !self.enabled(event.category) {
            return;
        }
        let Some(mut ring) = self.ring.try_lock() else {
            self.busy.fetch_add(1, Ordering::Relaxed);
            return;
        };
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
        let (events, overwritten) = Self::copy(&self.ring.lock());
        (events, overwritten + self.busy.load(Ordering::Relaxed))
    }

    /// Writes the events as a dump ([`write_dump`]) without copying them. With `wait` false it gives up (`None`)
    /// if the ring is locked: a crash handler may have interrupted a [`Tracer::record`] and must not wait for it.
    pub fn dump<W: Write>(&self, out: &mut W, wait: bool) -> Option<fmt::Result> {
        let ring = if wait { self.ring.lock() } else { self.ring.try_lock()? };
        let (newer, older) = ring.events.split_at(ring.start);
        Some(write_dump(out, older.iter().chain(newer), ring.overwritten + self.busy.load(Ordering::Relaxed)))
    }

    fn copy(ring: &Ring) -> (Vec<Event>, u64) {
        let (newer, older) = ring.events.split_at(ring.start);
        let mut out = Vec::with_capacity(ring.events.len());
        out.extend_from_slice(older);
        out.extend_from_slice(newer);
        (out, ring.overwritten)
    }
}

// ----- the runtime's tracer -----

/// The installed tracer's mask, read first by [`enabled`] and [`event`]: with nothing traced, a trace point costs
/// this relaxed load and a branch.
static MASK: AtomicU32 = AtomicU32::new(0);
static GLOBAL: spin::Once<(Tracer, fn() -> u64)> = spin::Once::new();

/// Makes `tracer` the one every trace point records into, with `clock` (nanoseconds) for the timestamps. Only the
/// first call installs; later ones are ignored (and say so by returning false).
pub fn install(tracer: Tracer, clock: fn() -> u64) -> bool {
    let mask = tracer.mask();
    let mut installed = false;
    GLOBAL.call_once(|| {
        installed = true;
        (tracer, clock)
    });
    if installed {
        MASK.store(mask, Ordering::Relaxed);
    }
    installed
}

/// The installed tracer, if any.
pub fn global() -> Option<&'static Tracer> {
    GLOBAL.get().map(|(t, _)| t)
}

/// Whether `category` is being traced.
#[inline]
pub fn enabled(category: Category) -> bool {
    MASK.load(Ordering::Relaxed) & category.bit() != 0
}

/// Switches the installed tracer's categories at run time (nothing happens without one).
pub fn set_mask(mask: u32) {
    if let Some((t, _)) = GLOBAL.get() {
        t.set_mask(mask);
        MASK.store(mask, Ordering::Relaxed);
    }
}

/// Records an event now, if its category is traced: `name` is fixed text, `value` one number that goes with it.
#[inline]
pub fn event(category: Category, phase: Phase, name: &'static str, value: u64) {
    if enabled(category) {
        record_now(category, phase, name, value);
    }
}

#[cold]
fn record_now(category: Category, phase: Phase, name: &'static str, value: u64) {
    if let Some((t, clock)) = GLOBAL.get() {
        t.record(Event { ts_ns: clock(), category, phase, name, value });
    }
}

/// A span of the installed tracer: [`Phase::Begin`] now and [`Phase::End`] when dropped.
#[must_use = "the span ends when this is dropped"]
pub struct Span {
    category: Category,
    name: &'static str,
    value: u64,
}

/// Starts a span (see [`Span`]); `value` goes with both ends.
#[inline]
pub fn span(category: Category, name: &'static str, value: u64) -> Span {
    event(category, Phase::Begin, name, value);
    Span { category, name, value }
}

impl Drop for Span {
    #[inline]
    fn drop(&mut self) {
        event(self.category, Phase::End, self.name, self.value);
    }
}

// ----- the dump -----

/// The first line of a dump, followed by ` events=N overwritten=M`.
pub const DUMP_BEGIN: &str = "sirocco-trace-dump v1";
/// The last line of a dump.
pub const DUMP_END: &str = "sirocco-trace-dump end";

/// Writes `events` as a dump: plain lines that survive a serial console and a log file, so a trace reaches dom0
/// without a network. After [`DUMP_BEGIN`], each name once (`n INDEX NAME`, in order of first use), then one line
/// per event (`TS_NS CATEGORY PHASE NAME_INDEX VALUE`, category by number, phase by letter), then [`DUMP_END`].
/// About 25 bytes per event; [`parse_dump`] reads it back. It allocates nothing (a crash handler calls it, maybe on
/// a full heap): the name table is on the stack, and a name beyond its [`DUMP_NAMES`] entries is written as the
/// last entry's.
pub fn write_dump<'a, W: Write>(
    out: &mut W,
    events: impl Iterator<Item = &'a Event> + Clone,
    overwritten: u64,
) -> fmt::Result {
    writeln!(out, "{DUMP_BEGIN} events={} overwritten={overwritten}", events.clone().count())?;
    let mut names: [&str; DUMP_NAMES] = [""; DUMP_NAMES];
    let mut known = 0;
    let index_of = |names: &[&str], name: &str| names.iter().position(|n| core::ptr::eq(*n, name) || *n == name);
    for e in events.clone() {
        if index_of(&names[..known], e.name).is_none() {
            let name = if known + 1 == DUMP_NAMES { "(more names)" } else { e.name };
            if known < DUMP_NAMES {
                write!(out, "n {known} ")?;
                for c in name.chars() {
                    out.write_char(if c == '\n' || c == '\r' { ' ' } else { c })?;
                }
                out.write_char('\n')?;
                names[known] = name;
                known += 1;
            }
        }
    }
    for e in events {
        let index = index_of(&names[..known], e.name).unwrap_or(known.saturating_sub(1));
        writeln!(out, "{} {} {} {index} {}", e.ts_ns, e.category as u8, e.phase.letter(), e.value)?;
    }
    writeln!(out, "{DUMP_END}")
}

/// How many distinct names a dump carries ([`write_dump`]).
pub const DUMP_NAMES: usize = 128;

/// A dump read back: its events (names owned) and how many older ones the guest had overwritten.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dump {
    /// The events, oldest first.
    pub events: Vec<Event<String>>,
    /// Events the ring had overwritten before the dump.
    pub overwritten: u64,
}

/// Why text is not a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpError {
    /// No [`DUMP_BEGIN`] line.
    NoDump,
    /// The dump stops before [`DUMP_END`] (a console cut off, a guest that died while dumping).
    Truncated {
        /// Events read before the end of the text.
        events: usize,
    },
    /// A line that is not a name, an event or the end.
    BadLine {
        /// Its number in the text, from 1.
        line: usize,
    },
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::NoDump => write!(f, "no trace dump (a line starting {DUMP_BEGIN:?}) in the text"),
            DumpError::Truncated { events } => {
                write!(f, "the trace dump is cut off after {events} events (no {DUMP_END:?} line)")
            }
            DumpError::BadLine { line } => write!(f, "line {line} of the trace dump is not a name or an event"),
        }
    }
}

impl core::error::Error for DumpError {}

/// The last complete dump in `text` (a console log may hold several, and other output before and after; a console
/// prefix such as a timestamp before each line is skipped, as is anything before the dump's own words).
pub fn parse_dump(text: &str) -> Result<Dump, DumpError> {
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().rposition(|l| l.contains(DUMP_BEGIN)).ok_or(DumpError::NoDump)?;
    let head = &lines[begin][lines[begin].find(DUMP_BEGIN).unwrap_or(0) + DUMP_BEGIN.len()..];
    // The prefix the console put before the first line is put before every line.
    let prefix_len = lines[begin].find(DUMP_BEGIN).unwrap_or(0);
    let overwritten = head
        .split_whitespace()
        .find_map(|w| w.strip_prefix("overwritten="))
        .and_then(|v| v.parse().ok())
        .ok_or(DumpError::BadLine { line: begin + 1 })?;
    let mut names: Vec<String> = Vec::new();
    let mut dump = Dump { events: Vec::new(), overwritten };
    for (i, raw) in lines.iter().enumerate().skip(begin + 1) {
        let line = raw.get(prefix_len..).unwrap_or("").trim_end_matches('\r');
        let bad = DumpError::BadLine { line: i + 1 };
        if line == DUMP_END {
            return Ok(dump);
        }
        if let Some(rest) = line.strip_prefix("n ") {
            let (index, name) = rest.split_once(' ').unwrap_or((rest, ""));
            if index.parse::<usize>().ok() != Some(names.len()) {
                return Err(bad);
            }
            names.push(name.into());
            continue;
        }
        let mut words = line.split(' ');
        let mut next = || words.next().ok_or(bad.clone());
        let ts_ns = next()?.parse().map_err(|_| bad.clone())?;
        let category = next()?.parse::<usize>().ok().and_then(|c| Category::ALL.get(c).copied()).ok_or(bad.clone())?;
        let letter = next()?;
        let phase = Phase::ALL.iter().find(|p| letter.len() == 1 && letter.starts_with(p.letter())).copied();
        let phase = phase.ok_or(bad.clone())?;
        let name = next()?.parse::<usize>().ok().and_then(|n| names.get(n)).ok_or(bad.clone())?.clone();
        let value = next()?.parse().map_err(|_| bad.clone())?;
        if words.next().is_some() {
            return Err(bad);
        }
        dump.events.push(Event { ts_ns, category, phase, name, value });
    }
    Err(DumpError::Truncated { events: dump.events.len() })
}

// ----- requests from dom0 -----

/// What dom0 asks of a guest's tracer through xenstore: it writes `SEQ COMMAND` to the domain's
/// `control/sirocco-trace` (a new `SEQ` each time: the guest cannot clear a key under `control/`), and the guest
/// answers `SEQ ok` or `SEQ error: WHY` in its own `data/sirocco-trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Write the trace as a dump on the console.
    Dump,
    /// Record these categories from now on (`on net,tcp`, `on all`).
    On(&'a str),
    /// Record nothing from now on.
    Off,
}

/// The value of `control/sirocco-trace` that is not a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRequest;

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not \"SEQ dump\", \"SEQ on CATEGORIES\" or \"SEQ off\"")
    }
}

/// Reads a request: its sequence word (any word without spaces) and its command.
pub fn parse_request(value: &str) -> Result<(&str, Command<'_>), BadRequest> {
    let mut words = value.split_whitespace();
    let seq = words.next().ok_or(BadRequest)?;
    let command = match (words.next(), words.next(), words.next()) {
        (Some("dump"), None, _) => Command::Dump,
        (Some("off"), None, _) => Command::Off,
        (Some("on"), Some(categories), None) => Command::On(categories),
        _ => return Err(BadRequest),
    };
    Ok((seq, command))
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
    fn a_dump_reads_back_as_the_events_through_a_console_prefix_and_other_output() {
        let t = Tracer::new(4, Category::ALL.iter().fold(0, |m, c| m | c.bit()));
        for (ts, phase, name, value) in [
            (10, Phase::Begin, "stack poll", 0),
            (11, Phase::FlowStart, "rx segment", flow_id(80, 40000)),
            (12, Phase::End, "stack poll", 0),
            (13, Phase::Counter, "rx packets", 7),
            (14, Phase::Instant, "tx ring full", 3),
        ] {
            t.record(ev(ts, Category::Net, phase, name, value));
        }
        let mut text = String::from("boot noise\n");
        t.dump(&mut text, true).unwrap().unwrap();
        text.push_str("after\n");
        let prefixed: String = text.lines().map(|l| alloc::format!("[2026-12-05 18:00:00] {l}\n")).collect();
        for input in [&text, &prefixed] {
            let dump = parse_dump(input).unwrap();
            assert_eq!(dump.overwritten, 1);
            let got: Vec<_> = dump.events.iter().map(|e| (e.ts_ns, e.phase, e.name.as_str(), e.value)).collect();
            assert_eq!(
                got,
                [
                    (11, Phase::FlowStart, "rx segment", (80 << 16) | 40000),
                    (12, Phase::End, "stack poll", 0),
                    (13, Phase::Counter, "rx packets", 7),
                    (14, Phase::Instant, "tx ring full", 3),
                ]
            );
            assert!(dump.events.iter().all(|e| e.category == Category::Net));
        }
        // Each name once, then about a line per event.
        assert_eq!(text.matches("stack poll").count(), 1, "{text}");
    }

    #[test]
    fn a_cut_off_or_garbled_dump_is_an_error_that_says_where() {
        let t = Tracer::new(8, Category::Run.bit());
        t.record(ev(5, Category::Run, Phase::Instant, "wake", 1));
        t.record(ev(6, Category::Run, Phase::Instant, "wake", 2));
        let mut text = String::new();
        t.dump(&mut text, true).unwrap().unwrap();
        let cut = &text[..text.find(DUMP_END).unwrap()];
        assert_eq!(parse_dump(cut), Err(DumpError::Truncated { events: 2 }));
        assert_eq!(parse_dump("nothing here\n"), Err(DumpError::NoDump));
        let garbled = text.replace("6 0 i 0 2", "6 0 q 0 2");
        assert_eq!(parse_dump(&garbled), Err(DumpError::BadLine { line: 4 }));
        let unknown_name = text.replace("6 0 i 0 2", "6 0 i 9 2");
        assert!(matches!(parse_dump(&unknown_name), Err(DumpError::BadLine { .. })));
        // The last of two dumps is the one read.
        let two = alloc::format!("{text}{}", text.replace("5 0 i 0 1", "7 0 i 0 1"));
        assert_eq!(parse_dump(&two).unwrap().events[0].ts_ns, 7);
    }

    #[test]
    fn a_dump_never_needs_more_names_than_its_table() {
        let names: Vec<&'static str> = (0..DUMP_NAMES + 5)
            .map(|i| &*alloc::boxed::Box::leak(alloc::format!("name {i}").into_boxed_str()))
            .collect();
        let events: Vec<Event> = names.iter().map(|n| ev(1, Category::App, Phase::Instant, n, 0)).collect();
        let mut text = String::new();
        write_dump(&mut text, events.iter(), 0).unwrap();
        let dump = parse_dump(&text).unwrap();
        assert_eq!(dump.events.len(), DUMP_NAMES + 5);
        assert_eq!(dump.events[DUMP_NAMES - 2].name, alloc::format!("name {}", DUMP_NAMES - 2));
        assert!(dump.events[DUMP_NAMES - 1..].iter().all(|e| e.name == "(more names)"));
    }

    #[test]
    fn the_installed_tracer_records_with_its_clock_and_spans_close_on_drop() {
        // The only test that installs (the tracer is process-wide).
        fn clock() -> u64 {
            42
        }
        event(Category::App, Phase::Instant, "before install", 0);
        assert!(install(Tracer::new(16, Category::App.bit()), clock));
        assert!(!install(Tracer::new(16, Category::ALL.iter().fold(0, |m, c| m | c.bit())), clock));
        assert!(enabled(Category::App) && !enabled(Category::Net));
        {
            let _s = span(Category::App, "request", 9);
            event(Category::Net, Phase::Instant, "not traced", 0);
        }
        set_mask(Category::Net.bit());
        event(Category::App, Phase::Instant, "no longer traced", 0);
        event(Category::Net, Phase::Instant, "now traced", 1);
        let (events, _) = global().unwrap().events();
        let got: Vec<_> = events.iter().map(|e| (e.ts_ns, e.phase, e.name)).collect();
        assert_eq!(
            got,
            [(42, Phase::Begin, "request"), (42, Phase::End, "request"), (42, Phase::Instant, "now traced")]
        );
    }

    #[test]
    fn dom0_requests_are_a_sequence_word_and_a_command() {
        assert_eq!(parse_request("7 dump"), Ok(("7", Command::Dump)));
        assert_eq!(parse_request(" 8  on net,tcp "), Ok(("8", Command::On("net,tcp"))));
        assert_eq!(parse_request("x1 off"), Ok(("x1", Command::Off)));
        for bad in ["", "9", "9 dump now", "9 on", "9 on a b", "9 start"] {
            assert_eq!(parse_request(bad), Err(BadRequest), "{bad:?}");
        }
    }

    #[test]
    fn recording_from_inside_a_dump_is_counted_not_a_deadlock() {
        struct Reentrant<'a>(&'a Tracer, String);
        impl Write for Reentrant<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                // As the console does: a notification, which is a trace point.
                self.0.record(Event {
                    ts_ns: 9,
                    category: Category::Evtchn,
                    phase: Phase::Instant,
                    name: "notify",
                    value: 1,
                });
                self.1.push_str(s);
                Ok(())
            }
        }
        let t = Tracer::new(8, Category::Evtchn.bit());
        t.record(ev(1, Category::Evtchn, Phase::Instant, "notify", 1));
        let mut out = Reentrant(&t, String::new());
        t.dump(&mut out, true).unwrap().unwrap();
        let (events, lost) = t.events();
        assert_eq!(events.len(), 1);
        assert!(lost > 0);
        assert_eq!(parse_dump(&out.1).unwrap().events.len(), 1);
    }
}
