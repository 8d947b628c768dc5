//! [`Vif`] (netfront as a `NetDevice`) and the stack over it, against the fake netback in its hostile modes: a
//! backend controls how much work a receive does only up to the poll budget.

use sirocco_drivers::netfront::fake::{bad_id, connected, FakeNetback};
use sirocco_drivers::netfront::Features;
use sirocco_net::{NetConfig, NetDevice, Stack, Vif};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const SG: Features = Features::SG;
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

// ----- transmit offloads (TSO) -----

const GSO: Features = Features { gso_tcpv4: true, ..Features::SG };

/// A TCP segment from 10.0.0.2:80 to 10.0.0.1:5000 (IPv4) or fd00::2 to fd00::1 (IPv6) carrying `payload`
/// bytes, its checksum field 0 (as smoltcp leaves it for an offloading device).
fn tcp_frame(v6: bool, payload: usize) -> Vec<u8> {
    use sirocco_net::smoltcp::phy::{Checksum, ChecksumCapabilities};
    use sirocco_net::smoltcp::wire::*;
    let data: Vec<u8> = (0..payload).map(|i| (i * 7) as u8).collect();
    let tcp = TcpRepr {
        src_port: 80,
        dst_port: 5000,
        control: TcpControl::Psh,
        seq_number: TcpSeqNumber(1000),
        ack_number: Some(TcpSeqNumber(2000)),
        window_len: 1024,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &data,
    };
    let mut caps = ChecksumCapabilities::default();
    caps.tcp = Checksum::Rx;
    let (src, dst): (IpAddress, IpAddress) = if v6 {
        (Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).into(), Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into())
    } else {
        (Ipv4Address::new(10, 0, 0, 2).into(), Ipv4Address::new(10, 0, 0, 1).into())
    };
    let ip = IpRepr::new(src, dst, IpProtocol::Tcp, tcp.buffer_len(), 64);
    let mut frame = vec![0u8; 14 + ip.buffer_len()]; // `buffer_len` counts the IP payload (the TCP segment)
    frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    frame[12..14].copy_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    ip.emit(&mut frame[14..], &caps);
    let at = 14 + ip.header_len();
    tcp.emit(&mut TcpPacket::new_unchecked(&mut frame[at..]), &src, &dst, &caps);
    frame
}

/// Completes a csum_blank frame's TCP checksum as netback would (the field holds the pseudo-header sum).
fn complete_as_backend(frame: &mut [u8], ihl: usize) {
    let start = 14 + ihl;
    let mut sum = 0u32;
    for pair in frame[start..].chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    frame[start + 16..start + 18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

#[test]
fn tso_is_offered_only_with_gso_negotiated_and_enough_buffers() {
    let h = connected(GSO, 64, 8);
    let vif: TestVif = Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf };
    assert_eq!(vif.tso_tcpv4_max(), Some(65535));
    let h = connected(SG, 64, 8);
    assert_eq!(Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }.tso_tcpv4_max(), None);
    let h = connected(GSO, 32, 8);
    assert_eq!(Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }.tso_tcpv4_max(), None, "32 buffers: 2 segments");
}

#[test]
fn offloaded_frames_leave_with_the_right_checksum_flags_and_gso_slots() {
    use sirocco_drivers::netfront::csum::transport_checksum_ok;
    use sirocco_drivers::netfront::wire::{NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_EXTRA_INFO};
    let h = connected(GSO, 64, 8);
    let (mut vif, mut nb): (TestVif, _) = (Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }, h.nb);
    let mut big = tcp_frame(false, 20_000);
    let mut small = tcp_frame(false, 100);
    let mut six = tcp_frame(true, 100);
    vif.transmit_offloaded(&mut big, Some(1460)).unwrap();
    vif.transmit_offloaded(&mut small, Some(1460)).unwrap();
    vif.transmit_offloaded(&mut six, None).unwrap();
    assert_eq!(nb.consume_tx(), 3);
    // The big IPv4 segment: csum_blank, a GSO extra slot of MSS 1460, a partial sum netback can complete.
    let s = &nb.sent[0];
    assert_eq!(s.flags & (NETTXF_CSUM_BLANK | NETTXF_EXTRA_INFO), NETTXF_CSUM_BLANK | NETTXF_EXTRA_INFO);
    assert_eq!((s.extras.len(), u16::from_le_bytes([s.extras[0].data[0], s.extras[0].data[1]])), (1, 1460));
    let mut done = s.data.clone();
    complete_as_backend(&mut done, 20);
    assert_eq!(transport_checksum_ok(&done), Ok(true));
    // One that fits the MTU: csum_blank, no extra slot, whatever smoltcp asked.
    let s = &nb.sent[1];
    assert_eq!((s.flags & NETTXF_CSUM_BLANK, s.extras.len()), (NETTXF_CSUM_BLANK, 0));
    let mut done = s.data.clone();
    complete_as_backend(&mut done, 20);
    assert_eq!(transport_checksum_ok(&done), Ok(true));
    // IPv6: computed here, sent as valid.
    let s = &nb.sent[2];
    assert_eq!(s.flags, NETTXF_DATA_VALIDATED);
    assert_eq!(transport_checksum_ok(&s.data), Ok(true));
    assert_eq!(vif.driver.counters().tx_gso_packets, 1);
}

/// With the backend's `feature-gso-tcpv6` (and `feature-ipv6-csum-offload`) IPv6 TCP goes out as IPv4 TCP does: a
/// segment over the MTU with a TCPv6 GSO slot, every one with a partial checksum the backend completes.
#[test]
fn ipv6_tcp_is_offloaded_when_the_backend_takes_it() {
    use sirocco_drivers::netfront::csum::transport_checksum_ok;
    use sirocco_drivers::netfront::wire::{GSO_TYPE_TCPV6, NETTXF_CSUM_BLANK, NETTXF_EXTRA_INFO};
    let six = Features { gso_tcpv6: true, ..GSO };
    let h = connected(six, 64, 8);
    let (mut vif, mut nb): (TestVif, _) = (Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }, h.nb);
    assert_eq!(vif.tso_tcpv6_max(), Some(65535));
    let mut big = tcp_frame(true, 20_000);
    let mut small = tcp_frame(true, 100);
    vif.transmit_offloaded(&mut big, Some(1440)).unwrap();
    vif.transmit_offloaded(&mut small, Some(1440)).unwrap();
    assert_eq!(nb.consume_tx(), 2);
    let s = &nb.sent[0];
    assert_eq!(s.flags & (NETTXF_CSUM_BLANK | NETTXF_EXTRA_INFO), NETTXF_CSUM_BLANK | NETTXF_EXTRA_INFO);
    assert_eq!((s.extras.len(), s.extras[0].data[2]), (1, GSO_TYPE_TCPV6));
    for s in &nb.sent {
        let mut done = s.data.clone();
        complete_as_backend(&mut done, 40);
        assert_eq!(transport_checksum_ok(&done), Ok(true));
    }
    assert_eq!(nb.sent[1].extras.len(), 0);
    // Without it (the IPv4-only GSO features): no IPv6 TSO offered.
    let h = connected(GSO, 64, 8);
    assert_eq!(Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }.tso_tcpv6_max(), None);
}

#[test]
fn an_offloaded_ipv4_tcp_frame_whose_checksum_cannot_be_set_up_is_dropped_not_vouched_for() {
    let h = connected(GSO, 64, 8);
    let (mut vif, mut nb): (TestVif, _) = (Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }, h.nb);
    // An IPv4 fragment (more-fragments set): its checksum covers a datagram this frame does not hold.
    let mut frag = tcp_frame(false, 100);
    frag[20] |= 0x20;
    vif.transmit_offloaded(&mut frag, None).unwrap();
    assert_eq!(nb.consume_tx(), 0, "nothing sent with a checksum nobody computed");
    assert_eq!(vif.driver.counters().tx_packets, 0);
}

/// Large receive: with `lro` asked for, netback hands over a sender's 60 KB TCP segment whole (page-sized slots, a
/// GSO extra info slot, the checksum blank); the vif gives the stack that one frame, its checksum now whole.
#[test]
fn a_large_received_segment_reaches_the_stack_whole_with_a_valid_checksum() {
    use sirocco_drivers::netfront::csum::{fill_partial_checksum, transport_checksum_ok};
    use sirocco_drivers::netfront::wire::{
        NetifExtraInfo, EXTRA_TYPE_GSO, GSO_TYPE_TCPV4, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, PAGE_SIZE,
    };
    let lro = Features { gso_rx_tcpv4: true, ..GSO };
    let h = connected(lro, 8, 32);
    let (mut vif, mut nb): (TestVif, _) = (Vif { id: 0, mac: MAC, mtu: 1500, driver: h.nf }, h.nb);
    let mut segment = tcp_frame(false, 60_000);
    fill_partial_checksum(&mut segment).unwrap();
    let gso = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: 0, data: [0xb4, 0x05, GSO_TYPE_TCPV4, 0, 0, 0] };
    let slot = PAGE_SIZE - usize::from(nb.rx_offset);
    assert!(nb.deliver_slots(&segment, NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED, slot, &[gso]));
    let got = vif.receive().unwrap_or_else(|| panic!("dropped: {}", vif.driver.counters()));
    assert_eq!(got.len(), segment.len());
    assert_eq!(transport_checksum_ok(&got), Ok(true));
    assert_eq!(got[54..], segment[54..], "the payload");
    assert_eq!(vif.driver.counters().rx_gso_packets, 1);
    assert_eq!(vif.receive(), None);
}

/// Issue 12: a TCP receive window larger than the RX buffers posted to the backend can take in one burst only gets
/// data dropped (256 KiB buffers over 128 posted RX buffers ran slower than 64 KiB); the stack cuts it to what
/// they carry.
#[test]
fn the_tcp_receive_window_is_kept_within_the_posted_rx_buffers() {
    let (vif, _nb) = vif();
    assert_eq!(vif.rx_frames(), Some(usize::from(RX_BUFFERS)));
    let config = NetConfig::from_lookup(|k| (k == "slaac").then_some("0")).unwrap();
    let mut stack = Stack::new(vif, &config, 7, 0).unwrap();
    let carried = usize::from(RX_BUFFERS) * 1460;
    assert_eq!(stack.max_tcp_window(), Some(carried));
    // The default 64 KiB is more than 32 buffers hold: cut from the start, not only when an app sets options.
    assert_eq!(stack.socket_options().tcp_rx_buffer, carried, "the default options were not cut");
    let options = stack.socket_options();
    stack.set_socket_options(sirocco_net::SocketOptions { tcp_rx_buffer: 1 << 20, ..options });
    assert_eq!(stack.socket_options().tcp_rx_buffer, carried);
    stack.set_socket_options(sirocco_net::SocketOptions { tcp_rx_buffer: 8192, ..options });
    assert_eq!(stack.socket_options().tcp_rx_buffer, 8192, "a smaller buffer is kept");
}
