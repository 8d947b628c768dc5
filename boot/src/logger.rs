//! The `log` backend. A record the filter keeps (`log=info,sirocco_net=debug`: a level per target, see
//! `sirocco_boot_logic::logging::filter`) is stamped with the time since boot and the wall clock, then
//! - written to the console as one line (always, and first: no other backend can cost the console its copy);
//! - kept in the ring of recent records (`logring=BYTES`, 64 KiB by default, 0 for none), which
//!   [`recent`] copies out (`sirocco::logs`);
//! - handed to the forwarder the runtime installs ([`set_forward`]: the syslog queue), unless it must stay local:
//!   a record logged while another is being handled (from a `Display` impl, or by the forwarder itself) goes to
//!   the console only, and one logged inside [`local_only`] (the network stack's polls, the syslog task) to the
//!   console and the ring only, so sending a record can never make more records to send.
//!
//! The filter decides before anything is formatted, and `log::max_level` is its most verbose level, so a record
//! no directive wants costs the `log` macros' one comparison.

use crate::{console, mm, uptime, xen};
use alloc::string::String;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::time::Duration;
use sirocco_boot_logic::cmdline::Cmdline;
use sirocco_boot_logic::logging::filter::{Lenient, LogFilter};
use sirocco_boot_logic::logging::ring::{LogRing, RingStats};
use sirocco_boot_logic::logging::{self, MessageBuf, OwnedRecord, Record};

/// The ring's size without `logring=`.
pub const DEFAULT_RING_BYTES: usize = 64 * 1024;
/// Longest message the ring and the forwarder get (the console gets all of it).
const MAX_MESSAGE: usize = 1024;

struct Logger;

static LOGGER: Logger = Logger;
static FILTER: spin::Once<LogFilter<'static>> = spin::Once::new();
/// The `log=` spec's problems, said once the ring can keep the warning too ([`after_heap`]).
static FILTER_PROBLEM: spin::Mutex<Option<(Lenient<'static>, &'static str)>> = spin::Mutex::new(None);
static RING: spin::Mutex<Option<LogRing>> = spin::Mutex::new(None);
static FORWARD: spin::Once<fn(&Record<'_>)> = spin::Once::new();
/// Set while a record is being handled: one vCPU and no interrupts, so a record that finds it set was logged
/// from inside the logger.
static BUSY: AtomicBool = AtomicBool::new(false);
/// Depth of [`local_only`] sections.
static LOCAL_ONLY: AtomicU32 = AtomicU32::new(0);

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        FILTER.get().is_some_and(|f| f.enabled(metadata.target(), metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let t = uptime();
        if BUSY.swap(true, Ordering::Acquire) {
            let mut msg = MessageBuf::<256>::new();
            let _ = write!(msg, "{}", record.args());
            console_line(t, record.level(), record.target(), format_args!("{}", msg.as_str()));
            return;
        }
        let mut msg = MessageBuf::<MAX_MESSAGE>::new();
        let _ = write!(msg, "{}", record.args());
        if msg.truncated() {
            // Too long for the ring and the collector, not for the console.
            console_line(t, record.level(), record.target(), *record.args());
        } else {
            console_line(t, record.level(), record.target(), format_args!("{}", msg.as_str()));
        }
        let r = Record {
            uptime_ns: t.as_nanos() as u64,
            wall_ns: logging::wall_clock_known(xen::wall_clock_ns()),
            level: record.level(),
            target: record.target(),
            message: msg.as_str(),
        };
        // Nobody holds the ring's lock while logging (`recent` only copies), so this never fails; if it ever
        // did, the record would miss the ring rather than deadlock.
        if let Some(mut ring) = RING.try_lock() {
            if let Some(ring) = ring.as_mut() {
                ring.push(&r);
            }
        }
        if LOCAL_ONLY.load(Ordering::Relaxed) == 0 {
            if let Some(forward) = FORWARD.get() {
                forward(&r);
            }
        }
        BUSY.store(false, Ordering::Release);
    }

    fn flush(&self) {}
}

/// Writes every piece it is given to the console, taking the console's lock for each: a `Display` impl that logs
/// runs between pieces, never inside the lock.
struct ConsoleOut;

impl fmt::Write for ConsoleOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        console::with(|c| c.write_bytes(s.as_bytes()));
        Ok(())
    }
}

/// One console line: `[  12.345678] INFO  target: message`. Formatted aside and written in one piece when it
/// fits (one notification of the console backend), else piece by piece.
fn console_line(t: Duration, level: log::Level, target: &str, message: fmt::Arguments<'_>) {
    let line = |w: &mut dyn fmt::Write| {
        writeln!(w, "[{:4}.{:06}] {:<5} {}: {}", t.as_secs(), t.subsec_micros(), level, target, message)
    };
    let mut buf = MessageBuf::<{ MAX_MESSAGE + 160 }>::new();
    let _ = line(&mut buf);
    if buf.truncated() {
        let _ = line(&mut ConsoleOut);
    } else {
        console::with(|c| c.write_bytes(buf.as_str().as_bytes()));
    }
}

/// Installs the logger with the command line's `log=` spec (bad directives left out; the warning about them waits
/// for [`after_heap`], so the ring keeps it too).
pub(crate) fn init(cmdline: &Cmdline<'static>) {
    let spec = cmdline.log_filter();
    let filter = *FILTER.call_once(|| spec.filter);
    if spec.errors > 0 {
        *FILTER_PROBLEM.lock() = Some((spec, cmdline.get("log").unwrap_or("")));
    }
    // Only fails if a logger is already set, which only boot does.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter.max_level());
}

/// Once the heap is up: the ring of recent records (`logring=`), then the warnings about the command line's
/// `log=` and `logring=`, which the ring keeps as well as the console.
pub(crate) fn after_heap(cmdline: &Cmdline<'static>) {
    let (asked, bad_size) = match cmdline.get("logring").map(logging::parse_size) {
        None => (DEFAULT_RING_BYTES, None),
        Some(Ok(n)) => (n, None),
        Some(Err(e)) => (DEFAULT_RING_BYTES, Some(e)),
    };
    // At most a quarter of the free heap: the log must not starve the application.
    let most = mm::heap_stats().free / 4;
    let bytes = asked.min(most);
    if bytes > 0 {
        match LogRing::try_new(bytes) {
            Some(ring) => *RING.lock() = Some(ring),
            None => log::warn!("no room for a log ring of {bytes} bytes; recent records are not kept"),
        }
    }
    if let Some((spec, text)) = FILTER_PROBLEM.lock().take() {
        if let Some(e) = spec.first_error {
            let more = match spec.errors {
                1 => String::new(),
                n => alloc::format!(" (and {} more bad directives)", n - 1),
            };
            log::warn!(
                "log={text}: {e}{more}; ignoring {}, the rest applies (default level {})",
                if spec.errors == 1 { "it" } else { "them" },
                spec.filter.default_level()
            );
        }
    }
    if let Some(e) = bad_size {
        log::warn!("logring={e}; keeping the default {DEFAULT_RING_BYTES} bytes");
    }
    if asked > most {
        log::warn!("logring={asked} is more than a quarter of the free heap; keeping {bytes} bytes");
    }
}

/// Copies of the records in the ring, oldest first (none when the ring is off).
pub fn recent() -> alloc::vec::Vec<OwnedRecord> {
    RING.lock().as_ref().map(LogRing::records).unwrap_or_default()
}

/// The ring's size, fill and evictions (all zero when it is off).
pub fn ring_stats() -> RingStats {
    RING.lock().as_ref().map(LogRing::stats).unwrap_or_default()
}

/// Installs the forwarder: each record the filter keeps, outside [`local_only`] sections, is handed to `f` after
/// the console and the ring have it. `f` runs inside the logger: it must only queue the record (no waiting, no
/// locks that code which logs may hold); what it logs goes to the console only. Set once; later calls are
/// ignored.
pub fn set_forward(f: fn(&Record<'_>)) {
    FORWARD.call_once(|| f);
}

/// Runs `f` with the records it logs kept local (console and ring, not the forwarder): for the code that carries
/// the forwarded records (the network stack's polls, the syslog task), whose own records would otherwise make
/// more to send.
pub fn local_only<R>(f: impl FnOnce() -> R) -> R {
    LOCAL_ONLY.fetch_add(1, Ordering::Relaxed);
    let r = f();
    LOCAL_ONLY.fetch_sub(1, Ordering::Relaxed);
    r
}

/// The filter the logger runs with (from `log=`).
pub fn filter() -> LogFilter<'static> {
    FILTER.get().copied().unwrap_or(LogFilter::new(log::LevelFilter::Info))
}
