//! IPv6 stateless address autoconfiguration (RFC 4862) and router discovery (RFC 4861 §6.3), host side.
//!
//! smoltcp 0.14 has a `proto-ipv6-slaac` feature, but its scheduling is unusable for a guest that sleeps until
//! the next deadline: after three unanswered router solicitations `Interface::poll_at` returns the same past
//! instant forever (a busy loop, hiding every other timer), and when no socket has a deadline the SLAAC one is
//! dropped (`Option::min` prefers `None`). So the stack does it here instead, with smoltcp's wire types:
//! the device adapter picks router advertisements out of received frames ([`parse_router_advert`]), this state
//! machine decides, and [`crate::Stack`] applies the result to the interface.
//!
//! Scope: one autoconfigured prefix (`/64`, address = prefix + EUI-64 of the MAC) and one default router, with
//! their lifetimes and RFC 4862 §5.5.3's two-hour rule. Not done: duplicate address detection (smoltcp has no
//! DAD either), deprecation by preferred lifetime, privacy addresses (RFC 8981), DHCPv6, RDNSS.

use alloc::vec::Vec;
use core::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Cidr,
    Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscPrefixInfoFlags, NdiscRepr,
};

use crate::config::{eui64_interface_id, is_link_local};

/// Router solicitations sent before giving up (RFC 4861 `MAX_RTR_SOLICITATIONS`).
pub const MAX_SOLICITATIONS: u8 = 3;
/// Time between router solicitations (RFC 4861 `RTR_SOLICITATION_INTERVAL`).
pub const SOLICITATION_INTERVAL_MS: u64 = 4_000;
/// RFC 4862 §5.5.3 e): an advertisement cannot cut a prefix's remaining valid lifetime below two hours.
const TWO_HOURS_MS: u64 = 2 * 3600 * 1000;
/// `0xffff_ffff` seconds means "forever" in a prefix information option.
const INFINITE_S: u64 = 0xffff_ffff;

/// The parts of a router advertisement SLAAC uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterAdvert {
    /// The router's link-local address (the advertisement's source).
    pub router: Ipv6Addr,
    /// How long the router serves as a default router, in seconds; 0: not a default router.
    pub router_lifetime_s: u64,
    /// The first prefix information option, if any.
    pub prefix: Option<PrefixInfo>,
}

/// A prefix information option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The prefix (bits past `len` are ignored).
    pub prefix: Ipv6Addr,
    /// Prefix length.
    pub len: u8,
    /// The A flag: hosts may form addresses in this prefix.
    pub autonomous: bool,
    /// Valid lifetime in seconds (`0xffff_ffff`: forever).
    pub valid_s: u64,
    /// Preferred lifetime in seconds.
    pub preferred_s: u64,
}

/// Recognises an ICMPv6 router advertisement in an Ethernet frame, checking what RFC 4861 §6.1.2 asks of a
/// host: link-local source, hop limit 255, code 0 and a correct checksum.
pub fn parse_router_advert(frame: &[u8]) -> Option<RouterAdvert> {
    // Cheap filter first: every received frame passes through here.
    // EtherType IPv6 at 12, next header (ICMPv6 = 58) at 14 + 6, ICMPv6 type (134) at 14 + 40.
    if frame.len() < 14 + 40 + 16 || frame[12..14] != [0x86, 0xdd] || frame[20] != 58 || frame[54] != 134 {
        return None;
    }
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    let ip_repr = Ipv6Repr::parse(&ip).ok()?;
    if ip_repr.next_header != IpProtocol::Icmpv6 || ip_repr.hop_limit != 255 || !is_link_local(ip_repr.src_addr) {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    let repr = Icmpv6Repr::parse(&ip_repr.src_addr, &ip_repr.dst_addr, &icmp, &ChecksumCapabilities::default()).ok()?;
    let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert { router_lifetime, prefix_info, .. }) = repr else {
        return None;
    };
    Some(RouterAdvert {
        router: ip_repr.src_addr,
        router_lifetime_s: router_lifetime.secs(),
        prefix: prefix_info.map(|p| PrefixInfo {
            prefix: p.prefix,
            len: p.prefix_len,
            autonomous: p.flags.contains(NdiscPrefixInfoFlags::ADDRCONF),
            valid_s: p.valid_lifetime.secs(),
            preferred_s: p.preferred_lifetime.secs(),
        }),
    })
}

/// A router solicitation from `mac`/`link_local` to all routers (`ff02::2`), as a complete Ethernet frame.
pub fn router_solicitation(mac: EthernetAddress, link_local: Ipv6Addr) -> Vec<u8> {
    const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    ndisc_frame(mac, link_local, ALL_ROUTERS, NdiscRepr::RouterSolicit { lladdr: Some(mac.into()) })
}

/// An unsolicited neighbour advertisement of `target` (one of our addresses) from `mac` to all nodes (`ff02::1`),
/// with the override flag and our link-layer address (RFC 4861 §7.2.6): after the guest moved (a migration),
/// neighbours and the bridge learn where it is now, as Linux's `netdev_notify_peers` does.
pub fn unsolicited_neighbor_advert(mac: EthernetAddress, target: Ipv6Addr) -> Vec<u8> {
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let advert = NdiscRepr::NeighborAdvert {
        flags: NdiscNeighborFlags::OVERRIDE,
        target_addr: target,
        lladdr: Some(mac.into()),
    };
    ndisc_frame(mac, target, ALL_NODES, advert)
}

/// A neighbour discovery message from `mac`/`src` to the multicast group `dst`, as a complete Ethernet frame.
fn ndisc_frame(mac: EthernetAddress, src: Ipv6Addr, dst: Ipv6Addr, message: NdiscRepr) -> Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(message);
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    // 33:33 followed by the low 32 bits of the group (RFC 2464 §7).
    let group = dst.octets();
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress([0x33, 0x33, group[12], group[13], group[14], group[15]]),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut frame = alloc::vec![0u8; eth.buffer_len() + ip.buffer_len() + icmp.buffer_len()];
    let mut eth_frame = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut eth_frame);
    let mut ip_packet = Ipv6Packet::new_unchecked(eth_frame.payload_mut());
    ip.emit(&mut ip_packet);
    let mut icmp_packet = Icmpv6Packet::new_unchecked(ip_packet.payload_mut());
    icmp.emit(&src, &dst, &mut icmp_packet, &ChecksumCapabilities::default());
    frame
}

/// An autoconfigured address and when it stops being valid (`None`: never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaacAddress {
    /// Prefix + interface identifier, with the prefix length.
    pub cidr: Ipv6Cidr,
    /// End of the valid lifetime, in the stack's milliseconds.
    pub valid_until_ms: Option<u64>,
}

/// A default router learnt from advertisements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaacRouter {
    /// Its link-local address.
    pub address: Ipv6Addr,
    /// End of its router lifetime.
    pub until_ms: u64,
}

/// The SLAAC and router-discovery state of one interface.
#[derive(Debug)]
pub struct Slaac {
    interface_id: [u8; 8],
    solicitations_left: u8,
    next_solicitation_ms: u64,
    address: Option<SlaacAddress>,
    router: Option<SlaacRouter>,
}

impl Slaac {
    /// Starts soliciting at once, for an interface with this MAC.
    pub fn new(mac: [u8; 6]) -> Slaac {
        Slaac {
            interface_id: eui64_interface_id(mac),
            solicitations_left: MAX_SOLICITATIONS,
            next_solicitation_ms: 0,
            address: None,
            router: None,
        }
    }

    /// The current autoconfigured address.
    pub fn address(&self) -> Option<SlaacAddress> {
        self.address
    }

    /// The current default router.
    pub fn router(&self) -> Option<SlaacRouter> {
        self.router
    }

    /// Whether a router solicitation is due at `now_ms`.
    pub fn solicitation_due(&self, now_ms: u64) -> bool {
        self.solicitations_left > 0 && now_ms >= self.next_solicitation_ms
    }

    /// Solicits again at once, as at start: the interface moved to another link (a migration), whose router
    /// may differ. What was learnt stays until its lifetime ends or a new advertisement replaces it.
    pub fn solicit_again(&mut self) {
        self.solicitations_left = MAX_SOLICITATIONS;
        self.next_solicitation_ms = 0;
    }

    /// Records that a solicitation went out at `now_ms`.
    pub fn solicitation_sent(&mut self, now_ms: u64) {
        self.solicitations_left = self.solicitations_left.saturating_sub(1);
        self.next_solicitation_ms = now_ms + SOLICITATION_INTERVAL_MS;
    }

    /// Takes in an advertisement; true when the address or router changed.
    pub fn on_advert(&mut self, ra: &RouterAdvert, now_ms: u64) -> bool {
        let before = (self.address.map(|a| a.cidr), self.router.map(|r| r.address));
        if let Some(p) = ra.prefix {
            self.on_prefix(&p, now_ms);
        }
        let offered = SlaacRouter { address: ra.router, until_ms: now_ms + ra.router_lifetime_s * 1000 };
        self.router = match self.router {
            Some(r) if r.address == ra.router => (ra.router_lifetime_s > 0).then_some(offered),
            // One default router: keep the one we have while it is valid.
            Some(r) if r.until_ms > now_ms => Some(r),
            _ if ra.router_lifetime_s > 0 => Some(offered),
            current => current,
        };
        if ra.router_lifetime_s > 0 {
            // RFC 4861 §6.3.7: stop soliciting once a router has answered.
            self.solicitations_left = 0;
        }
        before != (self.address.map(|a| a.cidr), self.router.map(|r| r.address))
    }

    fn on_prefix(&mut self, p: &PrefixInfo, now_ms: u64) {
        // RFC 4862 §5.5.3 a)-c), plus the /64 that an EUI-64 interface identifier needs.
        let bits = p.prefix.octets();
        if !p.autonomous || is_link_local(p.prefix) || p.preferred_s > p.valid_s || p.len != 64 {
            return;
        }
        let mut octets = [0u8; 16];
        octets[..8].copy_from_slice(&bits[..8]);
        octets[8..].copy_from_slice(&self.interface_id);
        let cidr = Ipv6Cidr::new(Ipv6Addr::from(octets), 64);
        let received = if p.valid_s >= INFINITE_S { None } else { Some(now_ms + p.valid_s * 1000) };
        match self.address {
            Some(a) if a.cidr == cidr => {
                // §5.5.3 e): the two-hour rule against a forged advertisement cutting the lifetime short.
                let remaining = a.valid_until_ms.map(|u| u.saturating_sub(now_ms));
                let new_ms = p.valid_s.saturating_mul(1000);
                let valid_until_ms = match (received, remaining) {
                    (None, _) => None,
                    // Currently infinite: nothing is "greater than" the remaining lifetime.
                    (Some(_), None) if new_ms > TWO_HOURS_MS => received,
                    (Some(_), None) => Some(now_ms + TWO_HOURS_MS),
                    (Some(_), Some(r)) if new_ms > TWO_HOURS_MS || new_ms > r => received,
                    (Some(_), Some(r)) if r <= TWO_HOURS_MS => a.valid_until_ms,
                    (Some(_), Some(_)) => Some(now_ms + TWO_HOURS_MS),
                };
                self.address = Some(SlaacAddress { cidr, valid_until_ms });
            }
            // Only one autoconfigured prefix: a second one is ignored while the first is valid.
            Some(_) => {}
            None if p.valid_s > 0 => self.address = Some(SlaacAddress { cidr, valid_until_ms: received }),
            None => {}
        }
    }

    /// Drops what has expired by `now_ms`; true when the address or router changed.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let mut changed = false;
        if self.address.is_some_and(|a| a.valid_until_ms.is_some_and(|u| u <= now_ms)) {
            self.address = None;
            changed = true;
        }
        if self.router.is_some_and(|r| r.until_ms <= now_ms) {
            self.router = None;
            changed = true;
        }
        changed
    }

    /// The next instant at which [`Slaac::solicitation_due`] or [`Slaac::expire`] has something to do.
    pub fn poll_at(&self) -> Option<u64> {
        let rs = (self.solicitations_left > 0).then_some(self.next_solicitation_ms);
        let addr = self.address.and_then(|a| a.valid_until_ms);
        let router = self.router.map(|r| r.until_ms);
        [rs, addr, router].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::time::Duration;
    use smoltcp::wire::NdiscPrefixInformation;
    use smoltcp::wire::NdiscRouterFlags;

    const MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
    const ROUTER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

    fn ra(router_lifetime_s: u64, valid_s: u64) -> RouterAdvert {
        RouterAdvert {
            router: ROUTER,
            router_lifetime_s,
            prefix: Some(PrefixInfo {
                prefix: "2001:db8:1:2::".parse().unwrap(),
                len: 64,
                autonomous: true,
                valid_s,
                preferred_s: valid_s.min(600),
            }),
        }
    }

    fn expected() -> Ipv6Cidr {
        Ipv6Cidr::new("2001:db8:1:2:216:3eff:fe12:3456".parse().unwrap(), 64)
    }

    /// A router advertisement frame as radvd would send it.
    fn ra_frame(src: Ipv6Addr, hop_limit: u8, corrupt_checksum: bool) -> Vec<u8> {
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
            hop_limit: 64,
            flags: NdiscRouterFlags::empty(),
            router_lifetime: Duration::from_secs(1800),
            reachable_time: Duration::ZERO,
            retrans_time: Duration::ZERO,
            lladdr: Some(EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]).into()),
            mtu: Some(1500),
            prefix_info: Some(NdiscPrefixInformation {
                prefix_len: 64,
                flags: NdiscPrefixInfoFlags::ADDRCONF | NdiscPrefixInfoFlags::ON_LINK,
                valid_lifetime: Duration::from_secs(86400),
                preferred_lifetime: Duration::from_secs(14400),
                prefix: "2001:db8:1:2::".parse().unwrap(),
            }),
        });
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]),
            dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv6,
        };
        let mut frame = alloc::vec![0u8; 14 + ip.buffer_len() + icmp.buffer_len()];
        let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.emit(&mut e);
        let mut i = Ipv6Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut i);
        let mut c = Icmpv6Packet::new_unchecked(i.payload_mut());
        icmp.emit(&src, &dst, &mut c, &ChecksumCapabilities::default());
        if corrupt_checksum {
            let n = frame.len();
            frame[n - 1] ^= 0xff;
        }
        frame
    }

    #[test]
    fn parses_a_valid_advertisement_and_rejects_forgeries() {
        let parsed = parse_router_advert(&ra_frame(ROUTER, 255, false)).expect("valid RA");
        assert_eq!(parsed.router, ROUTER);
        assert_eq!(parsed.router_lifetime_s, 1800);
        let p = parsed.prefix.unwrap();
        assert_eq!(
            (p.prefix, p.len, p.autonomous, p.valid_s, p.preferred_s),
            ("2001:db8:1:2::".parse().unwrap(), 64, true, 86400, 14400)
        );
        // Routed from elsewhere (hop limit decremented), not from a link-local source, or damaged.
        assert_eq!(parse_router_advert(&ra_frame(ROUTER, 254, false)), None);
        assert_eq!(parse_router_advert(&ra_frame("2001:db8::1".parse().unwrap(), 255, false)), None);
        assert_eq!(parse_router_advert(&ra_frame(ROUTER, 255, true)), None);
        assert_eq!(parse_router_advert(&[0u8; 60]), None);
    }

    #[test]
    fn solicitation_frame_is_well_formed() {
        let ll = crate::config::link_local_address(MAC);
        let frame = router_solicitation(EthernetAddress(MAC), ll);
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.dst_addr(), EthernetAddress([0x33, 0x33, 0, 0, 0, 2]));
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (ll, "ff02::2".parse().unwrap(), 255));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(&ip.src_addr(), &ip.dst_addr(), &icmp, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr, Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit { lladdr: Some(EthernetAddress(MAC).into()) }));
    }

    #[test]
    fn solicits_three_times_four_seconds_apart_then_stops() {
        let mut s = Slaac::new(MAC);
        let mut sent = Vec::new();
        let mut now = 0;
        while let Some(at) = s.poll_at() {
            now = now.max(at);
            assert!(s.solicitation_due(now));
            s.solicitation_sent(now);
            sent.push(now);
        }
        assert_eq!(sent, [0, 4_000, 8_000]);
        assert!(!s.solicitation_due(1_000_000));
    }

    #[test]
    fn advert_configures_address_and_router_and_stops_solicitation() {
        let mut s = Slaac::new(MAC);
        s.solicitation_sent(0);
        assert!(s.on_advert(&ra(1800, 86400), 1_000));
        assert_eq!(s.address(), Some(SlaacAddress { cidr: expected(), valid_until_ms: Some(1_000 + 86_400_000) }));
        assert_eq!(s.router(), Some(SlaacRouter { address: ROUTER, until_ms: 1_000 + 1_800_000 }));
        assert!(!s.solicitation_due(10_000));
        assert_eq!(s.poll_at(), Some(1_801_000));
        // A repeat changes nothing visible.
        assert!(!s.on_advert(&ra(1800, 86400), 2_000));
    }

    #[test]
    fn lifetimes_expire() {
        let mut s = Slaac::new(MAC);
        s.on_advert(&ra(60, 7200), 0);
        assert!(!s.expire(59_999));
        assert!(s.expire(60_000));
        assert_eq!(s.router(), None);
        assert!(s.address().is_some());
        assert_eq!(s.poll_at(), Some(7_200_000));
        assert!(s.expire(7_200_000));
        assert_eq!(s.address(), None);
        assert_eq!(s.poll_at(), None);
    }

    #[test]
    fn two_hour_rule_limits_shortening() {
        let mut s = Slaac::new(MAC);
        s.on_advert(&ra(0, 86400), 0);
        // A forged "valid for 10 s" cannot cut a day down below two hours...
        s.on_advert(&ra(0, 10), 1_000);
        assert_eq!(s.address().unwrap().valid_until_ms, Some(1_000 + TWO_HOURS_MS));
        // ...and once two hours or less remain, short lifetimes are ignored altogether.
        s.on_advert(&ra(0, 0), 2_000);
        assert_eq!(s.address().unwrap().valid_until_ms, Some(1_000 + TWO_HOURS_MS));
        // Longer ones are always taken.
        s.on_advert(&ra(0, 3 * 3600), 3_000);
        assert_eq!(s.address().unwrap().valid_until_ms, Some(3_000 + 3 * 3600 * 1000));
    }

    #[test]
    fn router_lifetime_zero_withdraws_the_router() {
        let mut s = Slaac::new(MAC);
        s.on_advert(&ra(1800, 86400), 0);
        assert!(s.on_advert(&ra(0, 86400), 1_000));
        assert_eq!(s.router(), None);
        assert_eq!(s.address().map(|a| a.cidr), Some(expected()));
    }

    #[test]
    fn unusable_prefixes_are_ignored() {
        let mut s = Slaac::new(MAC);
        let mut bad = ra(0, 86400);
        bad.prefix.as_mut().unwrap().autonomous = false;
        assert!(!s.on_advert(&bad, 0));
        let mut bad = ra(0, 86400);
        bad.prefix.as_mut().unwrap().len = 48;
        assert!(!s.on_advert(&bad, 0));
        let mut bad = ra(0, 86400);
        bad.prefix.as_mut().unwrap().preferred_s = 90000;
        assert!(!s.on_advert(&bad, 0));
        let mut bad = ra(0, 86400);
        bad.prefix.as_mut().unwrap().prefix = "fe80::".parse().unwrap();
        assert!(!s.on_advert(&bad, 0));
        assert_eq!(s.address(), None);
    }
}
