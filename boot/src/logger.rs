//! The `log` backend: one line per record on the console, stamped with time since boot.

use crate::{console, uptime};
use core::fmt::Write;

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let t = uptime();
        console::with(|c| {
            let _ = writeln!(
                c,
                "[{:4}.{:06}] {:<5} {}: {}",
                t.as_secs(),
                t.subsec_micros(),
                record.level(),
                record.target(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}

/// Installs the logger at `level`.
pub(crate) fn init(level: log::LevelFilter) {
    // Only fails if a logger is already set, which only boot does.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
