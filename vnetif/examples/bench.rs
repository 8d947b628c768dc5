//! Throughput of the bulk transfer through the fault matrix, as a markdown table for `make bench`:
//!
//! ```text
//! cargo run --release -p sirocco-vnetif --example bench [-- --mib N] [--seed S]
//! ```
//!
//! Each row streams N MiB (default 1) from node 0 to node 1 over one TCP connection, every byte checked, and
//! reports the simulated time the transfer took (what the link and the stack's recovery allow), the wall time the
//! host spent simulating it (driver + rings + smoltcp + the simulator itself), and the retransmissions seen in
//! the capture. A transfer that does not end cleanly is reported as such, not left out.

use std::time::Instant;

use sirocco_vnetif::analysis::{analyse_flow, connections};
use sirocco_vnetif::profile::{Profile, MATRIX};
use sirocco_vnetif::transfer::bulk;
use sirocco_vnetif::Faults;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}")))
        .unwrap_or(default)
}

fn main() {
    let mib = arg("--mib", 1);
    let seed = arg("--seed", 1);
    let bytes = mib << 20;
    // The stack alone: a perfect wire with no latency and no rate limit.
    let ideal = Profile {
        name: "ideal wire (no link model)",
        faults: Faults::NONE,
        mtu: 1500,
        budget_ms: 0,
        linux_like_receiver: false,
    };
    println!(
        "| fault profile | MiB transferred | simulated time | x clean | wall time | wall MiB/s | retransmissions \
         (fast / after a partial ACK / tail probe / timeout) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    // Each row's simulated time against its clean baseline (the same receiver, no faults).
    let mut clean_ms: [Option<u64>; 2] = [None, None];
    for p in std::iter::once(&ideal).chain(MATRIX) {
        let mut sim = p.sim("bench", seed);
        // Headers are all the analysis needs.
        sim.capture.snaplen = 128;
        let wall = Instant::now();
        let t = bulk(&mut sim, 0, 1, 5001, bytes, seed);
        let wall = wall.elapsed().as_secs_f64();
        let retx = connections(&sim.capture).first().map_or(String::from("-"), |&(c, s)| {
            let f = analyse_flow(&sim.capture, c, s);
            format!(
                "{} ({} / {} / {} / {})",
                f.retransmissions.len(),
                f.fast_retransmits(),
                f.partial_ack_retransmits(),
                f.tail_probes(),
                f.timeout_retransmits()
            )
        });
        let got = t.received as f64 / (1 << 20) as f64;
        let outcome = if t.is_clean(bytes) { String::new() } else { format!(" (not clean: {:?})", t.sender.err()) };
        let base = &mut clean_ms[usize::from(p.linux_like_receiver)];
        if p.name.ends_with("clean") || p.name == "clean LAN" {
            *base = Some(t.sim_ms.max(1));
        }
        // Only a loss row is its clean baseline plus loss; the other rows change the link itself.
        let times = base
            .filter(|_| p.name.contains("loss"))
            .map_or(String::from("-"), |b| format!("{:.1}", t.sim_ms as f64 / b as f64));
        println!(
            "| {}{outcome} | {got:.1} | {:.3} s | {times} | {:.3} s | {:.1} | {retx} |",
            p.name,
            t.sim_ms as f64 / 1e3,
            wall,
            got / wall
        );
    }
}
