//! Interface configuration from the guest command line.
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `ip` | `10.0.0.2/24`, `dhcp` (default), `off` | static IPv4 address and prefix, DHCPv4 client, or no IPv4 |
//! | `gw` | `10.0.0.1` | IPv4 default router; only with a static `ip=`, and inside its subnet |
//! | `ip6` | `fd00::2/64` | static IPv6 address and prefix, in addition to the link-local one |
//! | `gw6` | `fd00::1` or `fe80::1` | IPv6 default router: link-local, or inside the `ip6=` subnet |
//! | `slaac` | `on` (default), `off` | IPv6 addresses and router from router advertisements |
//! | `tso` | `on` (default), `off` | hand the backend TCP segments of up to 64 KiB to cut up (IPv4, and IPv6 if it offers to) |
//! | `lro` | `on` (default), `off` | take large TCP segments (IPv4 and IPv6) from the backend whole (large receive) |
//!
//! The IPv6 link-local address (`fe80::/64` + EUI-64 of the MAC) is always configured.
//! [`NetConfig::from_lookup`] takes any `key -> value` lookup, e.g. `|k| cmdline.get(k)`.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{IpCidr, Ipv4Cidr, Ipv6Cidr};

/// How the interface gets its addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// IPv4: static, DHCP, or none.
    pub ipv4: Ipv4Config,
    /// A static IPv6 address (the link-local address is always there as well).
    pub ipv6_address: Option<Ipv6Cidr>,
    /// A static IPv6 default router: link-local, or inside `ipv6_address`'s subnet. It takes precedence over
    /// routers learnt from advertisements.
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// Configure an IPv6 address and the default router from router advertisements (SLAAC).
    pub slaac: bool,
    /// Ask for TCP segmentation offload on transmit (for each IP version the backend offers it for:
    /// `feature-gso-tcpv4`, `feature-gso-tcpv6` with `feature-ipv6-csum-offload`).
    pub tso: bool,
    /// Ask for large receive: the backend may deliver TCP segments (IPv4 and IPv6) of up to 64 KiB whole (fewer
    /// packets for dom0 and for us; off, it cuts them into MTU-sized frames first).
    pub lro: bool,
    /// Use split event channels where the backend offers them (`split-evtchn=on`): one port per ring, so a kick
    /// for one ring runs only that ring's handler in netback. Off by default: in the lab (four rounds in A-B-B-A
    /// order) one shared port moved TCP about a fifth faster into the guest and an eighth faster out of it.
    pub split_evtchn: bool,
}

/// IPv4 configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Config {
    /// Run a DHCPv4 client and apply its leases.
    Dhcp,
    /// A fixed address, with an optional default router.
    Static {
        /// Address and prefix length.
        address: Ipv4Cidr,
        /// Default router, inside `address`'s subnet.
        gateway: Option<Ipv4Addr>,
    },
    /// No IPv4 at all.
    Off,
}

impl Default for NetConfig {
    /// DHCPv4, link-local IPv6 and SLAAC, both offloads asked for, one event channel: what a guest gets with
    /// nothing on its command line.
    fn default() -> Self {
        NetConfig {
            ipv4: Ipv4Config::Dhcp,
            ipv6_address: None,
            ipv6_gateway: None,
            slaac: true,
            tso: true,
            lro: true,
            split_evtchn: false,
        }
    }
}

/// A command-line value that could not be used: `key=value: problem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError<'a> {
    /// The key (`ip`, `gw`, `ip6`, `gw6`, `slaac`, `tso`, `lro`).
    pub key: &'static str,
    /// The value as given.
    pub value: &'a str,
    /// What is wrong with it.
    pub problem: ConfigProblem,
}

/// What is wrong with a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigProblem {
    /// Not `a.b.c.d/n` (n in 1..=32), `dhcp` or `off`.
    NotIpv4Cidr,
    /// Not an IPv4 address.
    NotIpv4Address,
    /// Not an IPv6 `address/n` (n in 1..=128).
    NotIpv6Cidr,
    /// Not an IPv6 address.
    NotIpv6Address,
    /// Unspecified, loopback, multicast or broadcast: not usable as an interface address or router.
    NotUnicast,
    /// The subnet's own network or broadcast address.
    NotHostAddress,
    /// A router outside the interface's subnet (no way to reach it without a router).
    OutsideSubnet(IpCidr),
    /// A router that is the interface's own address.
    OwnAddress,
    /// A router given without the static address it needs (`gw=` without `ip=a.b.c.d/n`, `gw6=` with a
    /// non-link-local address and no `ip6=`).
    WithoutAddress,
    /// Not `on`/`off` (or `1`/`0`, `yes`/`no`, `true`/`false`).
    NotOnOff,
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}: ", self.key, self.value)?;
        match self.problem {
            ConfigProblem::NotIpv4Cidr => f.write_str("not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off"),
            ConfigProblem::NotIpv4Address => f.write_str("not an IPv4 address"),
            ConfigProblem::NotIpv6Cidr => f.write_str("not an IPv6 address/prefix (e.g. fd00::2/64)"),
            ConfigProblem::NotIpv6Address => f.write_str("not an IPv6 address"),
            ConfigProblem::NotUnicast => f.write_str("not a unicast address"),
            ConfigProblem::NotHostAddress => f.write_str("is the subnet's network or broadcast address"),
            ConfigProblem::OutsideSubnet(cidr) => write!(f, "not inside the subnet of {cidr}"),
            ConfigProblem::OwnAddress => f.write_str("is the interface's own address"),
            ConfigProblem::WithoutAddress => f.write_str(if self.key == "gw" {
                "needs a static ip=a.b.c.d/n (with DHCP the lease names the router)"
            } else {
                "needs ip6=... or a link-local (fe80::) router address"
            }),
            ConfigProblem::NotOnOff => f.write_str("expected on or off"),
        }
    }
}

impl core::error::Error for ConfigError<'_> {}

impl NetConfig {
    /// Reads `ip=`, `gw=`, `ip6=`, `gw6=`, `slaac=`, `tso=` and `lro=` through `get` (e.g. `|k| cmdline.get(k)`).
    pub fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<NetConfig, ConfigError<'a>> {
        let err = |key, value, problem| ConfigError { key, value, problem };

        let ipv4 = match get("ip") {
            None | Some("dhcp") => Ipv4Config::Dhcp,
            Some("off") | Some("none") => Ipv4Config::Off,
            Some(v) => {
                let address = parse_ipv4_cidr(v).map_err(|p| err("ip", v, p))?;
                Ipv4Config::Static { address, gateway: None }
            }
        };
        let ipv4 = match (ipv4, get("gw")) {
            (_, None) => ipv4,
            (Ipv4Config::Static { address, .. }, Some(v)) => {
                let gw: Ipv4Addr = v.parse().map_err(|_| err("gw", v, ConfigProblem::NotIpv4Address))?;
                check_ipv4_unicast(gw).map_err(|p| err("gw", v, p))?;
                if !address.contains_addr(&gw) {
                    return Err(err("gw", v, ConfigProblem::OutsideSubnet(IpCidr::Ipv4(address))));
                }
                if gw == address.address() {
                    return Err(err("gw", v, ConfigProblem::OwnAddress));
                }
                Ipv4Config::Static { address, gateway: Some(gw) }
            }
            (_, Some(v)) => return Err(err("gw", v, ConfigProblem::WithoutAddress)),
        };

        let ip6 = match get("ip6") {
            None => None,
            Some(v) => Some(parse_ipv6_cidr(v).map_err(|p| err("ip6", v, p))?),
        };
        let gw6 = match get("gw6") {
            None => None,
            Some(v) => {
                let gw: Ipv6Addr = v.parse().map_err(|_| err("gw6", v, ConfigProblem::NotIpv6Address))?;
                check_ipv6_unicast(gw).map_err(|p| err("gw6", v, p))?;
                match ip6 {
                    _ if is_link_local(gw) => {}
                    None => return Err(err("gw6", v, ConfigProblem::WithoutAddress)),
                    Some(cidr) if !cidr.contains_addr(&gw) => {
                        return Err(err("gw6", v, ConfigProblem::OutsideSubnet(IpCidr::Ipv6(cidr))))
                    }
                    Some(cidr) if cidr.address() == gw => return Err(err("gw6", v, ConfigProblem::OwnAddress)),
                    Some(_) => {}
                }
                Some(gw)
            }
        };
        let on_off_or = |key: &'static str, absent: bool| match get(key) {
            None => Ok(absent),
            Some("on" | "1" | "yes" | "true") => Ok(true),
            Some("off" | "0" | "no" | "false") => Ok(false),
            Some(v) => Err(err(key, v, ConfigProblem::NotOnOff)),
        };
        let on_off = |key: &'static str| on_off_or(key, true);
        let (slaac, tso, lro) = (on_off("slaac")?, on_off("tso")?, on_off("lro")?);
        let split_evtchn = on_off_or("split-evtchn", false)?;
        Ok(NetConfig { ipv4, ipv6_address: ip6, ipv6_gateway: gw6, slaac, tso, lro, split_evtchn })
    }
}

fn parse_ipv4_cidr(v: &str) -> Result<Ipv4Cidr, ConfigProblem> {
    let (addr, len) = v.split_once('/').ok_or(ConfigProblem::NotIpv4Cidr)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| ConfigProblem::NotIpv4Cidr)?;
    let len: u8 = parse_prefix_len(len, 32).ok_or(ConfigProblem::NotIpv4Cidr)?;
    check_ipv4_unicast(addr)?;
    let cidr = Ipv4Cidr::new(addr, len);
    if len <= 30 && (addr == cidr.network().address() || Some(addr) == cidr.broadcast()) {
        return Err(ConfigProblem::NotHostAddress);
    }
    Ok(cidr)
}

fn parse_ipv6_cidr(v: &str) -> Result<Ipv6Cidr, ConfigProblem> {
    let (addr, len) = v.split_once('/').ok_or(ConfigProblem::NotIpv6Cidr)?;
    let addr: Ipv6Addr = addr.parse().map_err(|_| ConfigProblem::NotIpv6Cidr)?;
    let len: u8 = parse_prefix_len(len, 128).ok_or(ConfigProblem::NotIpv6Cidr)?;
    check_ipv6_unicast(addr)?;
    Ok(Ipv6Cidr::new(addr, len))
}

/// A decimal prefix length in `1..=max`, without sign or leading zeros.
fn parse_prefix_len(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    let n: u8 = s.parse().ok()?;
    (1..=max).contains(&n).then_some(n)
}

fn check_ipv4_unicast(a: Ipv4Addr) -> Result<(), ConfigProblem> {
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast() {
        return Err(ConfigProblem::NotUnicast);
    }
    Ok(())
}

fn check_ipv6_unicast(a: Ipv6Addr) -> Result<(), ConfigProblem> {
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Err(ConfigProblem::NotUnicast);
    }
    Ok(())
}

/// Whether `a` is in `fe80::/10`.
pub(crate) fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The interface identifier of `mac` in modified EUI-64 form (RFC 4291 appendix A): the universal/local bit
/// flipped and `ff:fe` in the middle.
pub fn eui64_interface_id(mac: [u8; 6]) -> [u8; 8] {
    [mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]]
}

/// The IPv6 link-local address of `mac`: `fe80::/64` followed by its EUI-64 interface identifier.
pub fn link_local_address(mac: [u8; 6]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&eui64_interface_id(mac));
    Ipv6Addr::from(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn parse(line: &str) -> Result<NetConfig, ConfigError<'_>> {
        NetConfig::from_lookup(|k| {
            line.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .filter(|(key, _)| *key == k)
                .map(|(_, v)| v)
                .next_back()
        })
    }

    fn error(line: &str) -> alloc::string::String {
        parse(line).expect_err(line).to_string()
    }

    #[test]
    fn nothing_means_dhcp_link_local_and_slaac() {
        let none = parse("").unwrap();
        assert_eq!((none.ipv4, none.ipv6_address, none.ipv6_gateway), (Ipv4Config::Dhcp, None, None));
        assert_eq!((none.slaac, none.tso, none.lro, none.split_evtchn), (true, true, true, false));
        assert_eq!(none, NetConfig::default());
        assert_eq!(parse("ip=dhcp").unwrap(), NetConfig::default());
    }

    #[test]
    fn static_addresses_and_routers() {
        let c = parse("ip=10.0.0.2/24 gw=10.0.0.1 ip6=fd00::2/64 gw6=fd00::1 slaac=off").unwrap();
        assert_eq!(
            c.ipv4,
            Ipv4Config::Static {
                address: Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 2), 24),
                gateway: Some(Ipv4Addr::new(10, 0, 0, 1))
            }
        );
        assert_eq!(c.ipv6_address, Some(Ipv6Cidr::new("fd00::2".parse().unwrap(), 64)));
        assert_eq!(c.ipv6_gateway, Some("fd00::1".parse().unwrap()));
        assert!(!c.slaac);
        assert_eq!(parse("ip=off").unwrap().ipv4, Ipv4Config::Off);
    }

    #[test]
    fn offloads_are_on_unless_turned_off() {
        let c = parse("tso=off lro=0").unwrap();
        assert_eq!((c.tso, c.lro, c.slaac), (false, false, true));
        let c = parse("tso=yes").unwrap();
        assert_eq!((c.tso, c.lro), (true, true));
        assert_eq!(error("lro=maybe"), "lro=maybe: expected on or off");
        assert_eq!(error("tso="), "tso=: expected on or off");
        assert!(!parse("").unwrap().split_evtchn, "one event channel unless asked");
        assert!(parse("split-evtchn=on").unwrap().split_evtchn);
        assert!(!parse("split-evtchn=off").unwrap().split_evtchn);
        assert_eq!(error("split-evtchn=2"), "split-evtchn=2: expected on or off");
    }

    #[test]
    fn link_local_router_without_static_ipv6() {
        let c = parse("gw6=fe80::1").unwrap();
        assert_eq!(c.ipv6_address, None);
        assert_eq!(c.ipv6_gateway, Some("fe80::1".parse().unwrap()));
    }

    #[test]
    fn errors_name_key_value_and_problem() {
        assert_eq!(
            error("ip=10.0.0.300/24"),
            "ip=10.0.0.300/24: not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off"
        );
        assert_eq!(error("ip=10.0.0.2"), "ip=10.0.0.2: not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off");
        assert_eq!(
            error("ip=10.0.0.2/33"),
            "ip=10.0.0.2/33: not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off"
        );
        assert_eq!(
            error("ip=10.0.0.2/024"),
            "ip=10.0.0.2/024: not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off"
        );
        assert_eq!(error("ip=10.0.0.2/0"), "ip=10.0.0.2/0: not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off");
        assert_eq!(error("ip=224.0.0.1/24"), "ip=224.0.0.1/24: not a unicast address");
        assert_eq!(error("ip=10.0.0.255/24"), "ip=10.0.0.255/24: is the subnet's network or broadcast address");
        assert_eq!(error("ip=10.0.0.0/24"), "ip=10.0.0.0/24: is the subnet's network or broadcast address");
        assert_eq!(error("ip=10.0.0.2/24 gw=10.0.1.1"), "gw=10.0.1.1: not inside the subnet of 10.0.0.2/24");
        assert_eq!(error("ip=10.0.0.2/24 gw=10.0.0.2"), "gw=10.0.0.2: is the interface's own address");
        assert_eq!(error("ip=10.0.0.2/24 gw=router"), "gw=router: not an IPv4 address");
        assert_eq!(
            error("gw=10.0.0.1"),
            "gw=10.0.0.1: needs a static ip=a.b.c.d/n (with DHCP the lease names the router)"
        );
        assert_eq!(error("ip6=fd00::2"), "ip6=fd00::2: not an IPv6 address/prefix (e.g. fd00::2/64)");
        assert_eq!(error("ip6=fd00::g/64"), "ip6=fd00::g/64: not an IPv6 address/prefix (e.g. fd00::2/64)");
        assert_eq!(error("ip6=ff02::1/64"), "ip6=ff02::1/64: not a unicast address");
        assert_eq!(error("ip6=fd00::2/64 gw6=fd01::1"), "gw6=fd01::1: not inside the subnet of fd00::2/64");
        assert_eq!(error("gw6=fd00::1"), "gw6=fd00::1: needs ip6=... or a link-local (fe80::) router address");
        assert_eq!(error("slaac=maybe"), "slaac=maybe: expected on or off");
    }

    #[test]
    fn link_local_is_eui64_of_the_mac() {
        // Xen's OUI: 00 becomes 02 (universal/local bit), ff:fe goes in the middle.
        let mac = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
        assert_eq!(link_local_address(mac), "fe80::216:3eff:fe12:3456".parse::<Ipv6Addr>().unwrap());
        assert_eq!(eui64_interface_id([0x02, 0, 0, 0, 0, 1]), [0, 0, 0, 0xff, 0xfe, 0, 0, 1]);
        assert!(is_link_local(link_local_address(mac)));
        assert!(!is_link_local("fd00::1".parse().unwrap()));
    }
}
