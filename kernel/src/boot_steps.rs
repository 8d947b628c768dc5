//! When each step of bringing the guest up first happened, in microseconds since the start of day: the guest's
//! half of `make bench`'s boot breakdown (httpd serves it in `/stats` as `boot_steps_us`; dom0 times its own half
//! and lines the two up on the vif's xenbus handshake). The kernel records its steps (xenstore up, each vif's
//! handshake, the first frames, an IPv4 address); an application adds its own (`listen`, `first-response`) with
//! [`step`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use spin::Mutex;

/// Steps kept; later new names are ignored (a boot has about a dozen).
const MAX_STEPS: usize = 32;

static STEPS: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());

/// Records `name` at the current uptime, the first time only: a step is when something *first* happened.
pub fn step(name: &'static str) {
    let at = sirocco_boot::uptime().as_micros() as u64;
    let mut steps = STEPS.lock();
    if steps.len() < MAX_STEPS && !steps.iter().any(|(n, _)| *n == name) {
        steps.push((name, at));
    }
}

/// The steps so far, in the order they happened, as (name, microseconds since the start of day).
pub fn steps() -> Vec<(&'static str, u64)> {
    STEPS.lock().clone()
}

/// The steps as a JSON object, `{"wall_start_us":...,"xenstore":812,...}`: first the start of day on the wall
/// clock (microseconds since the Unix epoch, from Xen's wall clock, which dom0 keeps), so that another machine's
/// clock can place the steps; then each step in microseconds since the start of day, in the order they happened.
pub fn steps_json() -> String {
    let now_us = crate::runtime::wall_clock().as_micros() as u64;
    let wall_start_us = now_us.saturating_sub(sirocco_boot::uptime().as_micros() as u64);
    let mut out = alloc::format!("{{\"wall_start_us\":{wall_start_us}");
    for (name, us) in steps() {
        let _ = write!(out, ",\"{name}\":{us}");
    }
    out.push('}');
    out
}
