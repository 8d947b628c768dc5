//! [`Vif`] (netfront as a `NetDevice`) and the stack over it, against the fake netback in its hostile modes: a
//! backend controls how much work a receive does only up to the poll budget.

use sirocco_drivers::netfront::fake::{bad_id, connected, FakeNetback};
use sirocco_drivers::netfront::Features;
use sirocco_net::{NetConfig, NetDevice, Stack, Vif};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const SG: Features = Features { sg: true, csum_offload: true };
/// RX buffers posted to the backend.
const RX_BUFFERS: u16 = 32;
/// The most responses one poll may take from a backend flooding us: the budget, plus the buffers the backend
/// may have answered ahead of us.
const MOST_PER_POLL: u64 = 64 + RX_BUFFERS as u64;
/// The hostile backend goes silent after this many responses, so a receive without a budget ends (and fails).
const FLOOD: u64 = 200_000;

type TestVif = Vif<
    sirocco_drivers::ring::testing::HeapRing,
    sirocco_drivers::netfront::fake::FakeBuffers,
    sirocco_drivers::netfront::fake::FakeEvtchn,
>;

fn vif() -> (TestVif, FakeNetback) {
    let h = connected(SG, 8, RX_BUFFERS);
    (Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }, h.nb)
}

#[test]
fn receive_returns_after_a_bounded_amount_of_work_when_every_id_is_bad() {
    // Issue 10.6: the backend answers each posted buffer the moment it is posted, always with the wrong id.
    let (mut vif, mut nb) = vif();
    let made = nb.answer_rx_forever(FLOOD, bad_id);
    assert_eq!(vif.receive(), None);
    assert!(made.get() <= MOST_PER_POLL, "one receive() took {} bad responses", made.get());
    let c = vif.driver.counters();
    assert!(c.rx_bad_id > 0 && c.rx_bad_id <= 64, "{c}");
    assert_eq!(c.rx_packets, 0);
}

/// DHCP DISCOVERs (UDP to port 67) among the frames the backend took off the TX ring.
fn discovers(nb: &FakeNetback) -> usize {
    nb.sent
        .iter()
        .filter(|s| {
            let d = &s.data;
            d.len() > 42 && d[12..14] == [0x08, 0x00] && d[23] == 17 && d[36..38] == [0, 67]
        })
        .count()
}

#[test]
fn the_stack_keeps_its_timers_while_the_backend_floods_it_with_bad_ids() {
    let (vif, mut nb) = vif();
    let made = nb.answer_rx_forever(FLOOD, bad_id);
    let config = NetConfig::from_lookup(|k| (k == "slaac").then_some("0")).unwrap();
    let mut stack = Stack::new(vif, &config, 7, 0).unwrap();
    let mut polls = 0;
    for now in (0..=12_000u64).step_by(100) {
        let before = made.get();
        let next = stack.poll(now);
        polls += 1;
        let took = made.get() - before;
        assert!(took <= MOST_PER_POLL, "Stack::poll at {now} ms took {took} bad responses");
        assert_eq!(next, Some(now), "the flood is not over: poll again at once (and let other tasks run)");
        nb.consume_tx();
    }
    // smoltcp's DHCP client sends a DISCOVER at once and again after 10 s: both went out despite the flood.
    assert!(discovers(&nb) >= 2, "DHCP DISCOVERs sent: {} in {polls} polls", discovers(&nb));
    assert!(stack.device().driver.counters().rx_bad_id >= polls, "the flood was being taken all along");
}
