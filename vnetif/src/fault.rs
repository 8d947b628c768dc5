//! The fault model of one link direction ([`Faults`]) and the lane that applies it ([`Lane`]).
//!
//! A frame offered to a lane at time `t` goes through, in this order:
//! 1. link down ([`Faults::up`] false): dropped;
//! 2. MTU ([`Faults::mtu`]): an IP packet longer than it is dropped (as a bridge with a smaller MTU does);
//! 3. the scripted filter ([`Lane::set_filter`]): the test's own decision (e.g. drop "the 10th data segment", or
//!    hold one back by 5 ms);
//! 4. uniform loss ([`Faults::loss`]), then loss of data-carrying TCP segments only ([`Faults::data_loss`]);
//! 5. bandwidth ([`Faults::bandwidth_bps`]): the frame waits for the link to be free, then takes `len * 8 /
//!    bandwidth` to serialise; a backlog over [`Faults::queue_bytes`] is tail-dropped;
//! 6. delay ([`Faults::delay_us`]) plus a uniform jitter in `0..=`[`Faults::jitter_us`] (as netem: jitter can
//!    reorder frames);
//! 7. reordering ([`Faults::reorder`]): the frame is held back an extra [`Faults::reorder_delay_us`], so frames
//!    behind it overtake it;
//! 8. duplication ([`Faults::duplicate`]): a second copy arrives 1 us after the first.
//!
//! Each decision draws from the lane's own seeded [`Rng`], one draw per probability whatever its value, so a run
//! replays exactly from its seed.

use std::fmt;

use crate::packet::{ip_len, is_tcp_data};
use crate::rng::Rng;

/// How a link direction misbehaves. [`Faults::NONE`] is a perfect wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// Probability that any frame is lost.
    pub loss: f64,
    /// Probability that a TCP segment carrying payload is lost (ACKs, SYNs, FINs, ARP... pass).
    pub data_loss: f64,
    /// Probability that a frame arrives twice.
    pub duplicate: f64,
    /// Probability that a frame is held back by [`Faults::reorder_delay_us`].
    pub reorder: f64,
    /// How long a reordered frame is held back, microseconds.
    pub reorder_delay_us: u64,
    /// One-way latency, microseconds.
    pub delay_us: u64,
    /// Extra latency, uniform in `0..=jitter_us`.
    pub jitter_us: u64,
    /// Link rate, bits per second (`None`: infinitely fast).
    pub bandwidth_bps: Option<u64>,
    /// With a bandwidth limit: the most bytes waiting to be serialised; frames beyond are dropped.
    pub queue_bytes: usize,
    /// The largest IP packet the link carries (frame minus its 14-byte Ethernet header).
    pub mtu: Option<usize>,
    /// The link is up. Down: every frame is dropped.
    pub up: bool,
}

impl Faults {
    /// A perfect wire: no loss, no delay, infinitely fast, up.
    pub const NONE: Faults = Faults {
        loss: 0.0,
        data_loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay_us: 2_000,
        delay_us: 0,
        jitter_us: 0,
        bandwidth_bps: None,
        queue_bytes: 256 * 1024,
        mtu: None,
        up: true,
    };

    /// Uniform loss with probability `p`.
    pub fn loss(p: f64) -> Faults {
        Faults { loss: p, ..Faults::NONE }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::NONE
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.up {
            parts.push("down".to_string());
        }
        if self.loss > 0.0 {
            parts.push(format!("loss {}%", self.loss * 100.0));
        }
        if self.data_loss > 0.0 {
            parts.push(format!("data loss {}%", self.data_loss * 100.0));
        }
        if self.duplicate > 0.0 {
            parts.push(format!("dup {}%", self.duplicate * 100.0));
        }
        if self.reorder > 0.0 {
            parts.push(format!("reorder {}% by {} ms", self.reorder * 100.0, self.reorder_delay_us as f64 / 1e3));
        }
        if self.delay_us > 0 || self.jitter_us > 0 {
            parts.push(format!("delay {} ms +0..{} ms", self.delay_us as f64 / 1e3, self.jitter_us as f64 / 1e3));
        }
        if let Some(bw) = self.bandwidth_bps {
            parts.push(format!("{} Mbit/s, queue {} KiB", bw as f64 / 1e6, self.queue_bytes / 1024));
        }
        if let Some(mtu) = self.mtu {
            parts.push(format!("mtu {mtu}"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What a scripted filter does with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// On its way (through the lane's other faults).
    Pass,
    /// Dropped.
    Drop,
    /// Held back this many microseconds more than the lane's own delay (reordering on purpose).
    Delay(u64),
    /// Passed, and `extra` more copies arrive `after_us` later (late duplicates on purpose).
    Copies {
        /// Copies besides the frame itself.
        extra: u32,
        /// How much later they arrive.
        after_us: u64,
    },
}

/// The test's own decision about each frame. It may also change the frame in place (a middlebox, or a peer that
/// behaves differently from smoltcp): what it leaves is what travels on.
pub type Filter = Box<dyn FnMut(&mut [u8]) -> Verdict>;

/// What a lane did with the frames offered to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Frames offered.
    pub offered: u64,
    /// Copies scheduled for delivery (duplicates included).
    pub delivered: u64,
    /// Dropped: link down.
    pub down: u64,
    /// Dropped: larger than the MTU.
    pub too_big: u64,
    /// Dropped by the scripted filter.
    pub filtered: u64,
    /// Held back by the scripted filter.
    pub held_back: u64,
    /// Dropped by uniform loss.
    pub lost: u64,
    /// Data segments dropped by data loss.
    pub data_lost: u64,
    /// Dropped: the bandwidth queue was full.
    pub queue_full: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Held back to be reordered.
    pub reordered: u64,
}

impl LaneStats {
    /// Frames dropped, for any reason.
    pub fn dropped(&self) -> u64 {
        self.down + self.too_big + self.filtered + self.lost + self.data_lost + self.queue_full
    }
}

/// One direction of a link: its faults, its random stream, and the time its transmitter is busy until.
pub struct Lane {
    /// The faults in force.
    pub faults: Faults,
    rng: Rng,
    busy_until_us: u64,
    filter: Option<Filter>,
    /// What happened so far.
    pub stats: LaneStats,
}

impl Lane {
    /// A perfect lane whose random decisions come from `rng`.
    pub fn new(rng: Rng) -> Lane {
        Lane { faults: Faults::NONE, rng, busy_until_us: 0, filter: None, stats: LaneStats::default() }
    }

    /// Sets (or with `None` removes) the scripted filter.
    pub fn set_filter(&mut self, filter: Option<Filter>) {
        self.filter = filter;
    }

    /// Offers `frame` at `now_us`: the times (one, two with a duplicate, none if dropped) it arrives at the far
    /// end.
    pub fn offer(&mut self, now_us: u64, frame: &mut [u8]) -> Vec<u64> {
        let f = self.faults;
        self.stats.offered += 1;
        if !f.up {
            self.stats.down += 1;
            return Vec::new();
        }
        if f.mtu.is_some_and(|mtu| ip_len(frame) > mtu) {
            self.stats.too_big += 1;
            return Vec::new();
        }
        let mut held = 0;
        let mut copies = (0, 0);
        match self.filter.as_mut().map_or(Verdict::Pass, |filter| filter(frame)) {
            Verdict::Pass => {}
            Verdict::Copies { extra, after_us } => copies = (extra, after_us),
            Verdict::Drop => {
                self.stats.filtered += 1;
                return Vec::new();
            }
            Verdict::Delay(us) => {
                self.stats.held_back += 1;
                held = us;
            }
        }
        if self.rng.chance(f.loss) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let data_lost = self.rng.chance(f.data_loss);
        if data_lost && is_tcp_data(frame) {
            self.stats.data_lost += 1;
            return Vec::new();
        }
        let mut at = now_us;
        if let Some(bw) = f.bandwidth_bps {
            let start = self.busy_until_us.max(now_us);
            let backlog_bytes = ((start - now_us) as u128 * u128::from(bw) / 8_000_000) as usize;
            if backlog_bytes + frame.len() > f.queue_bytes {
                self.stats.queue_full += 1;
                return Vec::new();
            }
            // At least 1 us per frame, so a frame never takes no time at all.
            let serialise = ((frame.len() as u128 * 8 * 1_000_000).div_ceil(u128::from(bw.max(1))) as u64).max(1);
            self.busy_until_us = start + serialise;
            at = self.busy_until_us;
        }
        at += f.delay_us + self.rng.up_to(f.jitter_us) + held;
        let reorder = self.rng.chance(f.reorder);
        if reorder {
            self.stats.reordered += 1;
            at += f.reorder_delay_us;
        }
        let mut times = vec![at];
        if self.rng.chance(f.duplicate) {
            self.stats.duplicated += 1;
            times.push(at + 1);
        }
        for k in 0..u64::from(copies.0) {
            self.stats.duplicated += 1;
            times.push(at + copies.1 + k);
        }
        self.stats.delivered += times.len() as u64;
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP frame with `payload` bytes of data (headers from netfront's checksum test frame).
    fn tcp_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 54 + payload];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[23] = 6;
        f[46] = 0x50;
        f[47] = 0x10;
        f
    }

    fn lane(faults: Faults, seed: u64) -> Lane {
        let mut l = Lane::new(Rng::new(seed));
        l.faults = faults;
        l
    }

    #[test]
    fn a_perfect_lane_delivers_at_once() {
        let mut l = lane(Faults::NONE, 1);
        assert_eq!(l.offer(5, &mut tcp_frame(10)), [5]);
        assert_eq!(l.stats, LaneStats { offered: 1, delivered: 1, ..LaneStats::default() });
        assert_eq!(Faults::NONE.to_string(), "none");
    }

    #[test]
    fn loss_rates_are_close_to_the_configured_probability() {
        let mut l = lane(Faults::loss(0.1), 2);
        let delivered = (0..20_000).filter(|_| !l.offer(0, &mut tcp_frame(0)).is_empty()).count();
        assert!((17_600..18_400).contains(&delivered), "{delivered}");
        assert_eq!(l.stats.lost as usize, 20_000 - delivered);
    }

    #[test]
    fn data_loss_spares_frames_without_payload() {
        let mut l = lane(Faults { data_loss: 1.0, ..Faults::NONE }, 3);
        assert!(l.offer(0, &mut tcp_frame(100)).is_empty());
        assert_eq!(l.offer(0, &mut tcp_frame(0)), [0], "a pure ACK passes");
        assert_eq!(l.offer(0, &mut [0u8; 60]), [0], "not TCP");
        assert_eq!(l.stats.data_lost, 1);
    }

    #[test]
    fn the_same_seed_drops_the_same_frames() {
        let run = |seed| {
            let mut l = lane(Faults { loss: 0.3, duplicate: 0.2, jitter_us: 500, ..Faults::NONE }, seed);
            (0..200).map(|i| l.offer(i * 10, &mut tcp_frame(1))).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn bandwidth_serialises_frames_and_a_full_queue_drops() {
        // 8 Mbit/s: one byte per microsecond.
        let f = Faults { bandwidth_bps: Some(8_000_000), queue_bytes: 3000, delay_us: 100, ..Faults::NONE };
        let mut l = lane(f, 4);
        let mut frame = vec![0u8; 1000];
        assert_eq!(l.offer(0, &mut frame), [1100]);
        assert_eq!(l.offer(0, &mut frame), [2100], "waits for the first");
        assert_eq!(l.offer(0, &mut frame), [3100]);
        assert!(l.offer(0, &mut frame).is_empty(), "3000 bytes already queued");
        assert_eq!(l.offer(5000, &mut frame), [6100], "the link went idle meanwhile");
        assert_eq!(l.stats.queue_full, 1);
    }

    #[test]
    fn mtu_down_and_filters_drop_before_anything_random() {
        let mut l = lane(Faults { mtu: Some(1000), ..Faults::NONE }, 5);
        assert!(l.offer(0, &mut vec![0u8; 1015]).is_empty());
        assert_eq!(l.offer(0, &mut vec![0u8; 1014]), [0]);
        l.faults.up = false;
        assert!(l.offer(0, &mut [0u8; 60]).is_empty());
        l.faults.up = true;
        let mut n = 0;
        l.set_filter(Some(Box::new(move |_| {
            n += 1;
            match n {
                2 => Verdict::Drop,
                3 => Verdict::Delay(40),
                4 => Verdict::Copies { extra: 2, after_us: 100 },
                _ => Verdict::Pass,
            }
        })));
        assert_eq!(l.offer(0, &mut [0u8; 60]), [0]);
        assert!(l.offer(0, &mut [0u8; 60]).is_empty());
        assert_eq!(l.offer(0, &mut [0u8; 60]), [40], "held back");
        assert_eq!(l.offer(0, &mut [0u8; 60]), [0, 100, 101], "late copies");
        assert_eq!((l.stats.too_big, l.stats.down, l.stats.filtered, l.stats.held_back), (1, 1, 1, 1));
        assert_eq!(l.stats.dropped(), 3);
    }

    #[test]
    fn duplicates_and_reordering_add_copies_and_delay() {
        let mut l = lane(Faults { duplicate: 1.0, reorder: 1.0, reorder_delay_us: 700, ..Faults::NONE }, 6);
        assert_eq!(l.offer(10, &mut [0u8; 60]), [710, 711]);
        assert_eq!((l.stats.duplicated, l.stats.reordered, l.stats.delivered), (1, 1, 2));
        let text = Faults { loss: 0.01, delay_us: 5000, ..Faults::NONE }.to_string();
        assert_eq!(text, "loss 1%, delay 5 ms +0..0 ms");
    }
}
