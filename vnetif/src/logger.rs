//! A `log` logger for tests: it keeps, per thread (each test runs on its own), every warning and error, and the
//! debug records of Sirocco's own crates, so a test can assert that nothing went wrong quietly. With
//! `SIROCCO_VNETIF_LOG=1` it also prints them (and smoltcp's debug records) to stderr.

use std::cell::RefCell;
use std::sync::Once;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// One kept record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its level.
    pub level: Level,
    /// Its target (module path).
    pub target: String,
    /// The message.
    pub message: String,
}

thread_local! {
    static RECORDS: RefCell<Vec<LogRecord>> = const { RefCell::new(Vec::new()) };
}

struct TestLogger {
    echo: bool,
}

impl Log for TestLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Warn || metadata.target().starts_with("sirocco") || self.echo
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let rec = LogRecord {
            level: record.level(),
            target: record.target().to_string(),
            message: record.args().to_string(),
        };
        if self.echo {
            eprintln!("[{} {}] {}", rec.level, rec.target, rec.message);
        }
        if rec.level <= Level::Warn || rec.target.starts_with("sirocco") {
            RECORDS.with(|r| r.borrow_mut().push(rec));
        }
    }

    fn flush(&self) {}
}

static INSTALL: Once = Once::new();

/// Installs the logger (once per process; later calls do nothing).
pub fn install() {
    INSTALL.call_once(|| {
        let echo = std::env::var_os("SIROCCO_VNETIF_LOG").is_some();
        let logger: &'static TestLogger = Box::leak(Box::new(TestLogger { echo }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(LevelFilter::Debug);
        }
    });
}

/// Takes the records this thread kept so far.
pub fn take_records() -> Vec<LogRecord> {
    RECORDS.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// The warnings and errors among `records`.
pub fn problems(records: &[LogRecord]) -> impl Iterator<Item = &LogRecord> {
    records.iter().filter(|r| r.level <= Level::Warn)
}
