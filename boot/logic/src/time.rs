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
}
