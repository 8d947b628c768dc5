//! The fault matrix: named link profiles the bulk tests and the benchmark run through. Each applies to the link
//! of the receiving node (port 1), both directions, so every frame of a two-node transfer crosses the faults
//! once: "10% loss" is 10% of the frames each way, as on a lossy path.

use crate::fault::Faults;
use crate::node::NodeConfig;
use crate::sim::{Lanes, Sim};
use crate::switch::Direction;

/// A LAN: 1 Gbit/s, 100 us each way, a 256 KiB queue. The base of every profile.
pub const LAN: Faults = Faults { delay_us: 100, bandwidth_bps: Some(1_000_000_000), ..Faults::NONE };

/// The lab's path from a guest to dom0 as its loss benchmark sees it (Xen under QEMU/TCG): a clean 4 MiB transfer
/// from a Sirocco guest took 0.58 s (about 58 Mbit/s), so 60 Mbit/s and 0.5 ms each way.
pub const LAB_LINK: Faults = Faults { delay_us: 500, bandwidth_bps: Some(60_000_000), ..Faults::NONE };

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
    /// The receiver acknowledges as Linux does, its advertised window changing from one ACK to the next (it
    /// grows as the receive buffer auto-tunes, even while out-of-order data waits), instead of smoltcp's steady
    /// window: the peer of the lab's loss benchmark, where a Sirocco guest sends to dom0.
    pub linux_like_receiver: bool,
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
        if self.linux_like_receiver {
            sim.set_filter(1, Direction::Uplink, crate::packet::window_changes_on_every_ack());
        }
        sim
    }
}

const fn row(name: &'static str, faults: Faults, budget_ms: u64) -> Profile {
    Profile { name, faults, mtu: 1500, budget_ms, linux_like_receiver: false }
}

/// A row whose receiver acknowledges as Linux does (`Profile::linux_like_receiver`).
const fn to_linux(name: &'static str, faults: Faults, budget_ms: u64) -> Profile {
    Profile { name, faults, mtu: 1500, budget_ms, linux_like_receiver: true }
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
    Profile { name: "jumbo frames (MTU 9000)", faults: LAN, mtu: 9000, budget_ms: 200, linux_like_receiver: false },
    // The lab's loss benchmark from the sending guest's side: the lab's path, loss both ways, a receiver that
    // acknowledges as Linux does.
    // Budgets: 3x the worst of 40 seeds (0.151, 1.346, 2.016 and 5.851 s for 1 MiB).
    to_linux("to a Linux-like receiver, clean", LAB_LINK, 500),
    to_linux("to a Linux-like receiver, loss 1%", Faults { loss: 0.01, ..LAB_LINK }, 4_000),
    to_linux("to a Linux-like receiver, loss 2%", Faults { loss: 0.02, ..LAB_LINK }, 6_000),
    to_linux("to a Linux-like receiver, loss 5%", Faults { loss: 0.05, ..LAB_LINK }, 18_000),
];

/// The profile called `name`.
///
/// # Panics
/// If there is none.
pub fn named(name: &str) -> Profile {
    *MATRIX.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no profile {name:?}"))
}
