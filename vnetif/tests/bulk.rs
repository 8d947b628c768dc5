//! Bulk transfers ("iperf") through the fault matrix (`sirocco_vnetif::profile::MATRIX`): the quick one, 1 MiB,
//! always runs; the long one, 100 MiB, is ignored by default:
//! `cargo test --release -p sirocco-vnetif --test bulk -- --ignored`. Every byte is checked at its offset, both
//! ends close cleanly, nothing is logged.

mod common;

use common::*;
use sirocco_net::SocketOptions;
use sirocco_vnetif::profile::named;
use sirocco_vnetif::transfer::bulk;

fn run(profile: &str, bytes: u64) {
    let p = named(profile);
    let mut sim = p.sim(&test_name(), 301);
    if bytes > QUICK {
        // Headers are enough to analyse a long run; whole frames would take gigabytes.
        sim.capture.snaplen = 128;
        // Over 100 MiB of heavy loss, a run of lost retransmissions comes sooner or later: smoltcp backs its RTO
        // off up to 60 s and keeps it there until new data is acknowledged (RFC 6298, Karn's algorithm), so two
        // in a row outlast the default 90 s timeout (at 10% loss, after ~45 MiB with this seed). The long runs
        // test integrity over volume, with a timeout of 10 minutes.
        for i in 0..2 {
            let net = sim.net(i);
            let mut stack = net.lock();
            let options = SocketOptions { tcp_timeout_ms: Some(600_000), ..stack.socket_options() };
            stack.set_socket_options(options);
        }
    }
    let budget = p.budget_ms * (bytes / QUICK);
    sim.limit_us = sim.limit_us.max(2 * budget * 1000);
    let t = bulk(&mut sim, 0, 1, 5001, bytes, 301);
    assert!(t.is_clean(bytes), "{profile}: {t:?}");
    assert!(t.sim_ms <= budget, "{profile}: {} ms of simulated time, over the budget of {budget} ms", t.sim_ms);
    let flow = upload_flow(&sim);
    assert_eq!(flow.bytes, bytes, "{profile}: the capture disagrees on what was sent");
    assert_eq!(flow.unprovoked_dup_acks, 0, "{profile}: duplicate ACKs no segment asked for");
    settle_and_assert_clean(&mut sim);
}

macro_rules! matrix {
    ($($quick:ident, $long:ident: $profile:expr;)*) => {
        $(
            #[test]
            fn $quick() {
                run($profile, QUICK);
            }

            #[test]
            #[ignore = "100 MiB: cargo test --release -p sirocco-vnetif --test bulk -- --ignored"]
            fn $long() {
                run($profile, 100 * QUICK);
            }
        )*

        /// Every profile of the matrix has its tests.
        #[test]
        fn the_whole_matrix_is_covered() {
            let covered = [$($profile),*];
            for p in sirocco_vnetif::profile::MATRIX {
                assert!(covered.contains(&p.name), "no test for profile {:?}", p.name);
            }
        }
    };
}

matrix! {
    quick_clean_lan, long_clean_lan: "clean LAN";
    quick_loss_1_percent, long_loss_1_percent: "loss 1%";
    quick_loss_10_percent, long_loss_10_percent: "loss 10%";
    quick_data_loss_5_percent, long_data_loss_5_percent: "data loss 5%";
    quick_duplicate_5_percent, long_duplicate_5_percent: "duplicate 5%";
    quick_reorder_5_percent, long_reorder_5_percent: "reorder 5%";
    quick_wan_with_jitter, long_wan_with_jitter: "WAN 20 ms, jitter 5 ms";
    quick_10_mbit_bottleneck, long_10_mbit_bottleneck: "10 Mbit/s bottleneck";
    quick_linux_receiver_clean, long_linux_receiver_clean: "to a Linux-like receiver, clean";
    quick_linux_receiver_loss_1, long_linux_receiver_loss_1: "to a Linux-like receiver, loss 1%";
    quick_linux_receiver_loss_2, long_linux_receiver_loss_2: "to a Linux-like receiver, loss 2%";
    quick_linux_receiver_loss_5, long_linux_receiver_loss_5: "to a Linux-like receiver, loss 5%";
    quick_shallow_bottleneck_queue, long_shallow_bottleneck_queue: "10 Mbit/s, 16 KiB queue";
    quick_bad_wifi, long_bad_wifi: "bad wifi";
    quick_jumbo_frames, long_jumbo_frames: "jumbo frames (MTU 9000)";
}
