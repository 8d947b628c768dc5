//! Xen's PV clock arithmetic (`struct vcpu_time_info` in xen.h): system time in ns is
//! `system_time + ((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul >> 32`, with a negative shift meaning
//! a right shift. The platform reads the fields (retrying while `version` is odd or changes) and calls [`to_ns`].

/// A consistent copy of the fields of `vcpu_time_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeInfo {
    /// TSC at the moment `system_time` was taken.
    pub tsc_timestamp: u64,
    /// ns since Xen booted, at `tsc_timestamp`.
    pub system_time: u64,
    /// 32.32 fixed-point multiplier from shifted TSC ticks to ns.
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta before multiplying.
    pub tsc_shift: i8,
}

/// System time (ns) at TSC value `tsc`.
pub fn to_ns(t: &TimeInfo, tsc: u64) -> u64 {
    let mut delta = tsc.wrapping_sub(t.tsc_timestamp);
    // A TSC read just before the hypervisor's snapshot can be a little behind it: count that as no time.
    if delta > (1 << 63) {
        delta = 0;
    }
    delta = match t.tsc_shift {
        s if s < 0 => delta >> u32::from(s.unsigned_abs()),
        s => delta << s as u32,
    };
    t.system_time.wrapping_add(((u128::from(delta) * u128::from(t.tsc_to_system_mul)) >> 32) as u64)
}

/// The guest's clock across a suspend (issue 16). Xen's system time is the *host's* (ns since that host booted): after
/// a restore or a migration it jumps, forwards on the same host later, backwards on another. The guest's monotonic
/// time is Xen's plus an offset that a resume sets so that guest time goes on from where the suspend stopped it:
/// the time the domain spent suspended is not counted (as Linux's `CLOCK_MONOTONIC`), and no deadline is
/// stretched by a backwards jump. Deadlines the guest gives Xen (`set_timer_op`, `SCHEDOP_poll`) go back to Xen's
/// time through [`ClockOffset::to_xen`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockOffset(pub i64);

impl ClockOffset {
    /// The offset after a resume: Xen's clock now reads `xen_now_ns`, and the guest's read `guest_at_suspend_ns`
    /// just before it suspended.
    pub fn resumed(guest_at_suspend_ns: u64, xen_now_ns: u64) -> ClockOffset {
        ClockOffset((i128::from(guest_at_suspend_ns) - i128::from(xen_now_ns)) as i64)
    }

    /// The guest's time for Xen's `xen_ns` (never below 0).
    pub fn to_guest(self, xen_ns: u64) -> u64 {
        (i128::from(xen_ns) + i128::from(self.0)).max(0) as u64
    }

    /// Xen's time for the guest's deadline `guest_ns`. 0 stays 0 ("no deadline" to both hypercalls); a deadline
    /// before Xen's time 0 becomes 1 (at once).
    pub fn to_xen(self, guest_ns: u64) -> u64 {
        if guest_ns == 0 {
            return 0;
        }
        (i128::from(guest_ns) - i128::from(self.0)).max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2_ghz_tsc() {
        // 2 GHz: 0.5 ns per tick = mul 2^31 with shift 0.
        let t = TimeInfo { tsc_timestamp: 1000, system_time: 5_000, tsc_to_system_mul: 1 << 31, tsc_shift: 0 };
        assert_eq!(to_ns(&t, 1000), 5_000);
        assert_eq!(to_ns(&t, 3000), 6_000);
    }

    #[test]
    fn shifts_both_ways() {
        // mul 2^32 would be 1.0; use 2^31 (0.5) with shift +1 -> 1 ns per tick; shift -1 -> 0.25 ns per tick.
        let up = TimeInfo { tsc_timestamp: 0, system_time: 0, tsc_to_system_mul: 1 << 31, tsc_shift: 1 };
        assert_eq!(to_ns(&up, 1_000_000), 1_000_000);
        let down = TimeInfo { tsc_shift: -1, ..up };
        assert_eq!(to_ns(&down, 1_000_000), 250_000);
    }

    #[test]
    fn large_deltas_do_not_overflow() {
        // 10 hours at 3 GHz with a realistic multiplier (0.333 ns per tick).
        let t = TimeInfo { tsc_timestamp: 0, system_time: 0, tsc_to_system_mul: 1_431_655_765, tsc_shift: 0 };
        let ten_hours_ticks = 3_000_000_000u64 * 36_000;
        let ns = to_ns(&t, ten_hours_ticks);
        assert!((ns as i128 - 36_000_000_000_000i128).abs() < 36_000_000, "{ns}");
    }

    #[test]
    fn a_tsc_slightly_behind_the_snapshot_counts_as_zero() {
        let t = TimeInfo { tsc_timestamp: 1000, system_time: 7, tsc_to_system_mul: 1 << 31, tsc_shift: 0 };
        assert_eq!(to_ns(&t, 990), 7);
    }

    #[test]
    fn guest_time_goes_on_from_the_suspend_whichever_way_xens_clock_jumped() {
        let boot = ClockOffset::default();
        assert_eq!(boot.to_guest(5_000), 5_000);
        assert_eq!(boot.to_xen(7_000), 7_000);
        // Suspended at guest time 10 s. Restored on a host up for 2 s (backwards) and on one up for 100 s (forwards).
        for xen_now in [2_000_000_000u64, 100_000_000_000] {
            let o = ClockOffset::resumed(10_000_000_000, xen_now);
            assert_eq!(o.to_guest(xen_now), 10_000_000_000, "no jump seen by the guest");
            assert_eq!(o.to_guest(xen_now + 1_500), 10_000_001_500, "and it runs at Xen's rate");
            // A timer due 1 ms after the suspend fires 1 ms after the resume on Xen's clock.
            assert_eq!(o.to_xen(10_001_000_000), xen_now + 1_000_000);
            assert_eq!(o.to_xen(0), 0, "no deadline stays no deadline");
        }
        // A deadline that would fall before Xen's time 0 is due at once.
        let o = ClockOffset::resumed(10_000_000_000, 2_000_000_000);
        assert_eq!(o.to_xen(1_000), 1);
        // A cancelled suspend on the same host: the pause is not counted either.
        let o = ClockOffset::resumed(10_000_000_000, 10_300_000_000);
        assert_eq!(o.to_guest(10_300_000_000), 10_000_000_000);
        // A second resume composes: guest time at the second suspend is what counts.
        let again = ClockOffset::resumed(o.to_guest(11_000_000_000), 500_000_000);
        assert_eq!(again.to_guest(500_000_000), 10_700_000_000);
    }
}
