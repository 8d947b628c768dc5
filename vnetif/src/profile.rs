//! The fault matrix: named link profiles the bulk tests and the benchmark run through. Each applies to the link
//! of the receiving node (port 1), both directions, so every frame of a two-node transfer crosses the faults
//! once: "10% loss" is 10% of the frames each way, as on a lossy path.

use crate::fault::Faults;
use crate::node::NodeConfig;
use crate::sim::{Lanes, Sim};

/// A LAN: 1 Gbit/s, 100 us each way, a 256 KiB queue. The base of every profile.
pub const LAN: Faults = Faults { delay_us: 100, bandwidth_bps: Some(1_000_000_000), ..Faults::NONE };

/// One row of the matrix.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Its name in tables and test names.
    pub name: &'static str,
    /// The faults of the receiver's link.
    pub faults: Faults,
    /// Both nodes' MTU.
    pub mtu: u16,
    /// Simulated time the quick (1 MiB) transfer must fit in: a few times the worst of 40 seeds, so that a
    /// collapse of throughput (retransmission timeouts instead of recovery) fails the test.
    pub budget_ms: u64,
}

impl Profile {
    /// A two-node network with this profile.
    pub fn sim(&self, name: &str, seed: u64) -> Sim {
        let mut sim = Sim::new(name, seed);
        for i in 0..2 {
            let mut cfg = NodeConfig::new(i);
            cfg.mtu = self.mtu;
            sim.add_node(cfg);
        }
        sim.set_faults(1, Lanes::Both, self.faults);
        sim
    }
}

const fn row(name: &'static str, faults: Faults, budget_ms: u64) -> Profile {
    Profile { name, faults, mtu: 1500, budget_ms }
}

/// The matrix (simulated times of 1 MiB over 40 seeds, median / worst, in vnetif/README.md).
pub const MATRIX: &[Profile] = &[
    row("clean LAN", LAN, 100),
    row("loss 1%", Faults { loss: 0.01, ..LAN }, 12_000),
    row("loss 10%", Faults { loss: 0.10, ..LAN }, 600_000),
    row("data loss 5%", Faults { data_loss: 0.05, ..LAN }, 100_000),
    row("duplicate 5%", Faults { duplicate: 0.05, ..LAN }, 100),
    row("reorder 5%", Faults { reorder: 0.05, reorder_delay_us: 2_000, ..LAN }, 5_000),
    row("WAN 20 ms, jitter 5 ms", Faults { delay_us: 20_000, jitter_us: 5_000, ..LAN }, 15_000),
    row("10 Mbit/s bottleneck", Faults { bandwidth_bps: Some(10_000_000), ..LAN }, 2_000),
    row("10 Mbit/s, 16 KiB queue", Faults { bandwidth_bps: Some(10_000_000), queue_bytes: 16 * 1024, ..LAN }, 8_000),
    row(
        "bad wifi",
        Faults {
            loss: 0.02,
            duplicate: 0.01,
            reorder: 0.02,
            reorder_delay_us: 3_000,
            delay_us: 5_000,
            jitter_us: 2_000,
            bandwidth_bps: Some(50_000_000),
            ..Faults::NONE
        },
        40_000,
    ),
    Profile { name: "jumbo frames (MTU 9000)", faults: LAN, mtu: 9000, budget_ms: 200 },
];

/// The profile called `name`.
///
/// # Panics
/// If there is none.
pub fn named(name: &str) -> Profile {
    *MATRIX.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no profile {name:?}"))
}
