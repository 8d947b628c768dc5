//! The stack reclaims transmit room before it polls (`NetDevice::reap`): regression test for a stall seen in the
//! lab, where a netfront whose TX buffers were all in flight was never asked to reap them, because the adapter
//! only takes received frames while the device can transmit.

use std::collections::VecDeque;

use sirocco_net::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Ipv4Address,
};
use sirocco_net::{NetConfig, NetDevice, Stack, TxFull};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

/// Like netfront: a transmitted frame holds one of `slots` buffers until the backend has sent it, and the
/// buffer comes back only when the driver reaps completions.
struct InFlightDevice {
    rx: VecDeque<Vec<u8>>,
    in_flight: Vec<Vec<u8>>,
    sent: Vec<Vec<u8>>,
    slots: usize,
    reaps: usize,
}

impl NetDevice for InFlightDevice {
    fn mac(&self) -> [u8; 6] {
        MAC
    }
    fn mtu(&self) -> usize {
        1500
    }
    fn reap(&mut self) {
        self.reaps += 1;
        self.sent.append(&mut self.in_flight);
    }
    fn receive(&mut self) -> Option<Vec<u8>> {
        self.rx.pop_front()
    }
    fn can_transmit(&self) -> bool {
        self.in_flight.len() < self.slots
    }
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxFull> {
        if !self.can_transmit() {
            return Err(TxFull);
        }
        self.in_flight.push(frame.to_vec());
        Ok(())
    }
}

fn arp_request(sender: u8) -> Vec<u8> {
    let sender_mac = EthernetAddress([0x02, 0, 0, 0, 1, sender]);
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: sender_mac,
        source_protocol_addr: Ipv4Address::new(10, 0, 0, 100 + sender),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Address::new(10, 0, 0, 2),
    };
    let eth =
        EthernetRepr { src_addr: sender_mac, dst_addr: EthernetAddress::BROADCAST, ethertype: EthernetProtocol::Arp };
    let mut buf = vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

fn is_arp_reply_to(frame: &[u8], sender: u8) -> bool {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    eth.ethertype() == EthernetProtocol::Arp
        && ArpPacket::new_checked(eth.payload()).unwrap().operation() == ArpOperation::Reply
        && eth.dst_addr() == EthernetAddress([0x02, 0, 0, 0, 1, sender])
}

#[test]
fn replies_keep_flowing_when_transmit_room_comes_back_only_by_reaping() {
    let config = NetConfig::from_lookup(|k| match k {
        "ip" => Some("10.0.0.2/24"),
        "slaac" => Some("0"),
        _ => None,
    })
    .unwrap();
    let rx = (1..=20).map(arp_request).collect();
    let dev = InFlightDevice { rx, in_flight: Vec::new(), sent: Vec::new(), slots: 2, reaps: 0 };
    let mut stack = Stack::new(dev, &config, 1, 0).unwrap();
    // Each poll may fill both slots; the next poll must reap them before it can take more frames.
    for now in 0..40 {
        stack.poll(now);
        if stack.device().rx.is_empty() && stack.device().in_flight.is_empty() {
            break;
        }
    }
    let dev = stack.device();
    assert!(dev.rx.is_empty(), "{} ARP requests never processed: the stack stalled on a full device", dev.rx.len());
    for sender in 1..=20 {
        let replies = dev.sent.iter().chain(&dev.in_flight).filter(|f| is_arp_reply_to(f, sender)).count();
        assert_eq!(replies, 1, "ARP replies to sender {sender}");
    }
    assert!(dev.reaps > 0);
}
