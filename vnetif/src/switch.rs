//! [`Switch`]: a learning Ethernet switch joining the fake backends, as dom0's bridge joins the vifs. Each port
//! has a link with two [`Lane`]s, one per direction, each with its own [`crate::Faults`]: a frame from node A to
//! node B goes through A's uplink lane, the switch, then B's downlink lane.
//!
//! The switch learns source MACs; a frame to a known unicast MAC goes to that port only, anything else (broadcast,
//! multicast, unknown) to every other port.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use crate::fault::Lane;
use crate::rng::Rng;

/// Which lane of a port's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Node to switch (the node's transmissions).
    Uplink,
    /// Switch to node (what the node receives).
    Downlink,
}

/// One switch port and its link.
pub struct Port {
    /// Node to switch.
    pub uplink: Lane,
    /// Switch to node.
    pub downlink: Lane,
}

impl Port {
    /// The lane in `dir`.
    pub fn lane(&mut self, dir: Direction) -> &mut Lane {
        match dir {
            Direction::Uplink => &mut self.uplink,
            Direction::Downlink => &mut self.downlink,
        }
    }
}

/// What the switch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchStats {
    /// Frames sent to the one port their destination MAC was learnt on.
    pub forwarded: u64,
    /// Frames sent to every other port.
    pub flooded: u64,
    /// Frames whose destination was learnt on the port they came from (dropped).
    pub hairpin: u64,
}

enum Hop {
    /// Crossed the uplink of `from`, reaches the switch.
    AtSwitch { from: usize },
    /// Crossed the downlink of `port`, reaches its backend.
    AtPort { port: usize },
}

/// The switch, its ports, and the frames travelling on the links.
pub struct Switch {
    /// The ports, by index.
    pub ports: Vec<Port>,
    macs: BTreeMap<[u8; 6], usize>,
    /// (arrival time, sequence number): frames with the same time keep their order.
    events: BinaryHeap<Reverse<(u64, u64)>>,
    in_flight: HashMap<u64, (Hop, Vec<u8>)>,
    next_seq: u64,
    seed: u64,
    /// What the switch did.
    pub stats: SwitchStats,
}

impl Switch {
    /// A switch with no ports; each port's lanes draw from streams of `seed`.
    pub fn new(seed: u64) -> Switch {
        Switch {
            ports: Vec::new(),
            macs: BTreeMap::new(),
            events: BinaryHeap::new(),
            in_flight: HashMap::new(),
            next_seq: 0,
            seed,
            stats: SwitchStats::default(),
        }
    }

    /// Adds a port with a perfect link; returns its index.
    pub fn add_port(&mut self) -> usize {
        let n = self.ports.len() as u64;
        self.ports.push(Port {
            uplink: Lane::new(Rng::derive(self.seed, 2 * n + 1)),
            downlink: Lane::new(Rng::derive(self.seed, 2 * n + 2)),
        });
        self.ports.len() - 1
    }

    fn schedule(&mut self, at: u64, hop: Hop, frame: Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.push(Reverse((at, seq)));
        self.in_flight.insert(seq, (hop, frame));
    }

    /// A frame the node on `port` transmitted at `now_us`.
    pub fn send(&mut self, now_us: u64, port: usize, mut frame: Vec<u8>) {
        for at in self.ports[port].uplink.offer(now_us, &mut frame) {
            self.schedule(at, Hop::AtSwitch { from: port }, frame.clone());
        }
    }

    /// When the next frame reaches the switch or a port.
    pub fn next_event_us(&self) -> Option<u64> {
        self.events.peek().map(|Reverse((at, _))| *at)
    }

    /// Moves every frame due by `now_us`; returns those that reached a port's backend, in order.
    pub fn due(&mut self, now_us: u64) -> Vec<(usize, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(&Reverse((at, seq))) = self.events.peek() {
            if at > now_us {
                break;
            }
            self.events.pop();
            let (hop, frame) = self.in_flight.remove(&seq).expect("scheduled frame");
            match hop {
                Hop::AtPort { port } => out.push((port, frame)),
                Hop::AtSwitch { from } => self.forward(at, from, frame),
            }
        }
        out
    }

    fn forward(&mut self, at: u64, from: usize, frame: Vec<u8>) {
        if frame.len() < 14 {
            return;
        }
        let dst: [u8; 6] = frame[0..6].try_into().expect("6 bytes");
        let src: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
        if src[0] & 1 == 0 {
            self.macs.insert(src, from);
        }
        let targets: Vec<usize> = match self.macs.get(&dst) {
            Some(&p) if dst[0] & 1 == 0 => {
                if p == from {
                    self.stats.hairpin += 1;
                    return;
                }
                self.stats.forwarded += 1;
                vec![p]
            }
            _ => {
                self.stats.flooded += 1;
                (0..self.ports.len()).filter(|&p| p != from).collect()
            }
        };
        for port in targets {
            let mut copy = frame.clone();
            for t in self.ports[port].downlink.offer(at, &mut copy) {
                self.schedule(t, Hop::AtPort { port }, copy.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Faults;

    fn frame(dst: u8, src: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
        f
    }

    #[test]
    fn unknown_destinations_flood_then_learnt_ones_are_forwarded() {
        let mut sw = Switch::new(1);
        for _ in 0..3 {
            sw.add_port();
        }
        sw.send(0, 0, frame(2, 1));
        let got: Vec<usize> = sw.due(0).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, [1, 2], "flooded");
        sw.send(0, 1, frame(1, 2));
        assert_eq!(sw.due(0).into_iter().map(|(p, _)| p).collect::<Vec<_>>(), [0], "port 0 learnt");
        let mut bcast = frame(0, 3);
        bcast[0..6].fill(0xff);
        sw.send(0, 2, bcast);
        assert_eq!(sw.due(0).len(), 2);
        sw.send(0, 0, frame(1, 1));
        assert!(sw.due(0).is_empty(), "to itself");
        assert_eq!(sw.stats, SwitchStats { forwarded: 1, flooded: 2, hairpin: 1 });
    }

    #[test]
    fn both_lanes_of_the_path_apply_their_delay() {
        let mut sw = Switch::new(1);
        sw.add_port();
        sw.add_port();
        sw.ports[0].uplink.faults = Faults { delay_us: 300, ..Faults::NONE };
        sw.ports[1].downlink.faults = Faults { delay_us: 200, ..Faults::NONE };
        sw.send(1000, 0, frame(2, 1));
        assert_eq!(sw.next_event_us(), Some(1300));
        assert!(sw.due(1300).is_empty(), "at the switch");
        assert_eq!(sw.next_event_us(), Some(1500));
        assert_eq!(sw.due(1500).len(), 1);
        assert_eq!(sw.next_event_us(), None);
    }
}
