//! When each step of bringing the guest up first happened, in microseconds since the start of day: the guest's
//! half of `make bench`'s boot breakdown (`metrics` has them: `sirocco_boot_step_seconds`, and `boot_steps_us` in
//! the JSON document every `/stats` serves, with the start of day on the wall clock first; dom0 times its own half
//! and lines the two up on the vif's xenbus handshake). The kernel records its steps (xenstore up, each vif's
//! handshake, the first frames, an IPv4 address); an application adds its own (`listen`, `first-response`) with
//! [`step`].

use alloc::vec::Vec;
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
