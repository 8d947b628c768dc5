//! A minimal DHCPv4 server working on raw frames: the wire hook hands it every frame, it answers DISCOVER
//! with OFFER and REQUEST with ACK (or NAK for another address), always by broadcast.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sirocco_net::smoltcp::phy::ChecksumCapabilities;
use sirocco_net::smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol,
    Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

#[derive(Clone)]
pub struct DhcpServer {
    pub mac: [u8; 6],
    pub server: Ipv4Addr,
    pub offer: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Ipv4Addr,
    pub dns: Ipv4Addr,
    pub lease_s: u32,
    /// Cleared to make the server vanish (it then drops every DHCP frame).
    pub enabled: Arc<AtomicBool>,
    pub acks: Arc<AtomicUsize>,
}

impl DhcpServer {
    pub fn new(server: Ipv4Addr, offer: Ipv4Addr, lease_s: u32) -> Self {
        DhcpServer {
            mac: [0x02, 0, 0, 0, 0, 0xdc],
            server,
            offer,
            prefix_len: 24,
            router: server,
            dns: Ipv4Addr::new(10, 0, 0, 53),
            lease_s,
            enabled: Arc::new(AtomicBool::new(true)),
            acks: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// `None`: not a DHCP frame for a server. `Some(None)`: one, but no answer. `Some(Some(f))`: the answer.
    pub fn handle(&self, frame: &[u8]) -> Option<Option<Vec<u8>>> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Udp {
            return None;
        }
        let udp = UdpPacket::new_checked(ip.payload()).ok()?;
        if udp.dst_port() != 67 {
            return None;
        }
        if !self.enabled.load(Ordering::SeqCst) {
            return Some(None);
        }
        let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
        let req = DhcpRepr::parse(&dhcp).ok()?;
        let kind = match req.message_type {
            DhcpMessageType::Discover => DhcpMessageType::Offer,
            DhcpMessageType::Request if req.requested_ip.unwrap_or(req.client_ip) == self.offer => {
                self.acks.fetch_add(1, Ordering::SeqCst);
                DhcpMessageType::Ack
            }
            DhcpMessageType::Request => DhcpMessageType::Nak,
            _ => return Some(None),
        };
        let mask = u32::MAX << (32 - self.prefix_len);
        // The option's list type comes from smoltcp's heapless dependency: reuse the request's.
        let mut dns = req.dns_servers.clone().unwrap_or_default();
        dns.clear();
        dns.push(self.dns).unwrap();
        let reply = DhcpRepr {
            message_type: kind,
            transaction_id: req.transaction_id,
            secs: 0,
            client_hardware_address: req.client_hardware_address,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: if kind == DhcpMessageType::Nak { Ipv4Addr::UNSPECIFIED } else { self.offer },
            server_ip: self.server,
            router: Some(self.router),
            subnet_mask: Some(Ipv4Addr::from(mask)),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(self.server),
            parameter_request_list: None,
            dns_servers: Some(dns),
            max_size: None,
            lease_duration: Some(self.lease_s),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        Some(Some(self.frame(&reply)))
    }

    fn frame(&self, reply: &DhcpRepr) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        let udp = UdpRepr { src_port: 67, dst_port: 68 };
        let udp_len = 8 + reply.buffer_len();
        let ip = Ipv4Repr {
            src_addr: self.server,
            dst_addr: Ipv4Addr::BROADCAST,
            next_header: IpProtocol::Udp,
            payload_len: udp_len,
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress(self.mac),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut out = vec![0u8; 14 + ip.buffer_len() + udp_len];
        let mut e = EthernetFrame::new_unchecked(&mut out[..]);
        eth.emit(&mut e);
        let mut i = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut i, &caps);
        let mut u = UdpPacket::new_unchecked(i.payload_mut());
        udp.emit(
            &mut u,
            &self.server.into(),
            &Ipv4Addr::BROADCAST.into(),
            reply.buffer_len(),
            |buf| reply.emit(&mut DhcpPacket::new_unchecked(buf)).unwrap(),
            &caps,
        );
        out
    }
}
