//! `ticker`: one line per second with monotonic and wall-clock time, until the toolstack asks it to stop
//! (`xl shutdown` / `xl reboot`); then a final line and a clean exit with the requested reason.
#![no_std]
#![no_main]

use core::time::Duration;
use sirocco::{Either, Instant};

/// (year, month, day, hour, minute, second) in UTC from seconds since the epoch (Howard Hinnant's civil_from_days).
fn utc(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

#[sirocco::main]
fn main(_env: &sirocco::Env) -> sirocco::Exit {
    sirocco::block_on(async {
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            let next = start.after(Duration::from_secs(n + 1));
            match sirocco::select(sirocco::sleep_until(next), sirocco::shutdown::requested()).await {
                Either::Left(()) => {
                    n += 1;
                    let mono = Instant::now().as_nanos();
                    let wall = sirocco::wall_clock();
                    let (y, mo, d, h, mi, s) = utc(wall.as_secs());
                    sirocco::println!(
                        "tick {n} mono={}.{:09} wall={}.{:09} ({y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC)",
                        mono / 1_000_000_000,
                        mono % 1_000_000_000,
                        wall.as_secs(),
                        wall.subsec_nanos()
                    );
                }
                Either::Right(request) => {
                    sirocco::println!(
                        "ticker: {request} requested after {n} ticks ({} s); stopping cleanly",
                        start.elapsed().as_secs()
                    );
                    return request.exit();
                }
            }
        }
    })
}
