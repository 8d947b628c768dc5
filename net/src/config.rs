//! Interface configuration, built in code or read from the guest command line.
//!
//! [`NetConfig`] is one vif's configuration; [`VifConfigs`] every vif's, by index (0: the first vif in xenstore
//! order). Both are plain structs with a [`Default`] (DHCPv4, link-local IPv6 and SLAAC, both offloads, one event
//! channel), to be built in code or read from the command line, which is one source of them among others:
//! [`NetConfig::from_cmdline`] reads vif 0's keys, [`VifConfigs::from_cmdline`] every vif's, and a program may
//! read them and then change what it likes. [`NetConfig::check`] holds a configuration built in code to the rules
//! the command line's values are held to.
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
//! | `split-evtchn` | `on`, `off` (default) | one event channel per ring where the backend offers it |
//!
//! These keys configure vif 0; vif N takes them with N appended (`ip1=10.0.1.2/24`, `tso2=off`). A key is read
//! as the longest setting it starts with, so `ip6=` is vif 0's IPv6 address, never vif 6's IPv4 one: vif 6's
//! (and vifs 60 to 69's) `ip` and `gw` can be set only in code.
//!
//! The IPv6 link-local address (`fe80::/64` + EUI-64 of the MAC) is always configured.
//! [`NetConfig::from_lookup`] takes any `key -> value` lookup, e.g. `|k| cmdline.get(k)`.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::format;
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use sirocco_boot_logic::cmdline::Cmdline;
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
        describe(self.key, self.problem, f)
    }
}

/// What is wrong with a value of `key`, as a phrase.
fn describe(key: &str, problem: ConfigProblem, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match problem {
        ConfigProblem::NotIpv4Cidr => f.write_str("not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off"),
        ConfigProblem::NotIpv4Address => f.write_str("not an IPv4 address"),
        ConfigProblem::NotIpv6Cidr => f.write_str("not an IPv6 address/prefix (e.g. fd00::2/64)"),
        ConfigProblem::NotIpv6Address => f.write_str("not an IPv6 address"),
        ConfigProblem::NotUnicast => f.write_str("not a unicast address"),
        ConfigProblem::NotHostAddress => f.write_str("is the subnet's network or broadcast address"),
        ConfigProblem::OutsideSubnet(cidr) => write!(f, "not inside the subnet of {cidr}"),
        ConfigProblem::OwnAddress => f.write_str("is the interface's own address"),
        ConfigProblem::WithoutAddress => f.write_str(if key == "gw" {
            "needs a static ip=a.b.c.d/n (with DHCP the lease names the router)"
        } else {
            "needs ip6=... or a link-local (fe80::) router address"
        }),
        ConfigProblem::NotOnOff => f.write_str("expected on or off"),
    }
}

impl core::error::Error for ConfigError<'_> {}

impl NetConfig {
    /// A vif's settings, by their command-line keys (vif 0's; vif N appends N).
    pub const KEYS: [&'static str; 8] = ["ip", "gw", "ip6", "gw6", "slaac", "tso", "lro", "split-evtchn"];

    /// Reads `ip=`, `gw=`, `ip6=`, `gw6=`, `slaac=`, `tso=`, `lro=` and `split-evtchn=` through `get` (e.g.
    /// `|k| cmdline.get(k)`); an absent key keeps its [`Default`].
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
                check_ipv4_gateway(address, gw).map_err(|p| err("gw", v, p))?;
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
                check_ipv6_gateway(ip6, gw).map_err(|p| err("gw6", v, p))?;
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

    /// Vif 0's keys from the command line (what [`VifConfigs::from_cmdline`] gives vif 0).
    pub fn from_cmdline<'a>(cmdline: &Cmdline<'a>) -> Result<NetConfig, ConfigError<'a>> {
        NetConfig::from_lookup(|key| cmdline.get(key))
    }

    /// Checks a configuration built in code against the rules a command-line value must pass: unicast host
    /// addresses with a prefix length of at least 1, each router inside its address's subnet (an IPv6 router may
    /// be link-local instead) and not the address itself, no IPv4 router without a static address. The error
    /// names the setting by its command-line key, for vif 0 (see [`VifConfigError::vif`]).
    pub fn check(&self) -> Result<(), VifConfigError<'static>> {
        let err = |key, value: &dyn fmt::Display, problem| VifConfigError {
            vif: 0,
            key,
            value: Cow::Owned(format!("{value}")),
            problem,
        };
        if let Ipv4Config::Static { address, gateway } = self.ipv4 {
            check_ipv4_address(address).map_err(|p| err("ip", &address, p))?;
            if let Some(gw) = gateway {
                check_ipv4_gateway(address, gw).map_err(|p| err("gw", &gw, p))?;
            }
        }
        if let Some(address) = self.ipv6_address {
            check_ipv6_address(address).map_err(|p| err("ip6", &address, p))?;
        }
        if let Some(gw) = self.ipv6_gateway {
            check_ipv6_gateway(self.ipv6_address, gw).map_err(|p| err("gw6", &gw, p))?;
        }
        Ok(())
    }
}

/// Every vif's configuration: `vifs[&n]` for vif n (0: the first in xenstore order), `others` for any vif without
/// an entry. Built in code (a plain struct, [`VifConfigs::new`], [`VifConfigs::with_vif`], or `From<NetConfig>` for
/// vif 0 alone) or read from the command line ([`VifConfigs::from_cmdline`]). Two are equal when they give every
/// vif the same configuration (an entry equal to `others` is as good as none).
#[derive(Clone, Debug, Default)]
pub struct VifConfigs {
    /// The vifs configured one by one, by index.
    pub vifs: BTreeMap<usize, NetConfig>,
    /// Every other vif's configuration ([`NetConfig::default`] unless set).
    pub others: NetConfig,
}

impl PartialEq for VifConfigs {
    fn eq(&self, other: &Self) -> bool {
        self.others == other.others
            && self.vifs.keys().chain(other.vifs.keys()).all(|&vif| self.get(vif) == other.get(vif))
    }
}

impl Eq for VifConfigs {}

/// Vif 0 takes `config`; any other vif the default (DHCPv4, SLAAC...).
impl From<NetConfig> for VifConfigs {
    fn from(config: NetConfig) -> Self {
        VifConfigs::new([config])
    }
}

impl VifConfigs {
    /// `configs` for vifs 0, 1, 2... in order; every other vif the default.
    pub fn new(configs: impl IntoIterator<Item = NetConfig>) -> VifConfigs {
        VifConfigs { vifs: configs.into_iter().enumerate().collect(), others: NetConfig::default() }
    }

    /// These configurations, with `config` for vif `index`.
    pub fn with_vif(mut self, index: usize, config: NetConfig) -> VifConfigs {
        self.vifs.insert(index, config);
        self
    }

    /// Vif `index`'s configuration.
    pub fn get(&self, index: usize) -> &NetConfig {
        self.vifs.get(&index).unwrap_or(&self.others)
    }

    /// Vif `index`'s configuration, checked ([`NetConfig::check`]; the error names vif `index`'s key).
    pub fn checked(&self, index: usize) -> Result<NetConfig, VifConfigError<'static>> {
        let config = *self.get(index);
        config.check().map_err(|e| VifConfigError { vif: index, ..e })?;
        Ok(config)
    }

    /// Every vif's keys from the command line: [`NetConfig::KEYS`] for vif 0, with the vif's index appended for the
    /// others (no leading zero). A key is read as the longest setting it starts with (`ip61=` is vif 1's `ip6`), the
    /// last of a repeated key wins, and words that are no vif's setting are left alone; vifs without keys get the
    /// default. A bad value is an error even for a vif the domain does not have.
    pub fn from_cmdline<'a>(cmdline: &Cmdline<'a>) -> Result<VifConfigs, VifConfigError<'a>> {
        VifConfigs::from_args(cmdline.args().filter_map(|arg| Some((arg.key, arg.value?))))
    }

    /// As [`VifConfigs::from_cmdline`], from `key=value` pairs in command-line order.
    pub fn from_args<'a>(args: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<VifConfigs, VifConfigError<'a>> {
        let mut settings: BTreeMap<usize, BTreeMap<&'static str, &'a str>> = BTreeMap::new();
        for (key, value) in args {
            if let Some((setting, vif)) = vif_key(key) {
                settings.entry(vif).or_default().insert(setting, value);
            }
        }
        let mut configs = VifConfigs::default();
        for (vif, keys) in settings {
            let config = NetConfig::from_lookup(|key| keys.get(key).copied())
                .map_err(|e| VifConfigError { vif, ..VifConfigError::from(e) })?;
            configs.vifs.insert(vif, config);
        }
        Ok(configs)
    }

    /// The first vif whose configuration here differs from `applied[vif]` (what each vif came up with), if any:
    /// two sets of configurations are the same for a domain when every vif it has gets the same one.
    pub fn first_difference(&self, applied: &[NetConfig]) -> Option<usize> {
        applied.iter().enumerate().position(|(vif, config)| self.get(vif) != config)
    }
}

/// `key` as (setting, vif): the longest of [`NetConfig::KEYS`] it starts with, then nothing (vif 0) or the vif's
/// index.
fn vif_key(key: &str) -> Option<(&'static str, usize)> {
    let (setting, index) = NetConfig::KEYS
        .iter()
        .filter_map(|setting| Some((*setting, key.strip_prefix(setting)?)))
        .max_by_key(|(setting, _)| setting.len())?;
    if index.is_empty() {
        return Some((setting, 0));
    }
    if index.starts_with('0') || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((setting, index.parse().ok()?))
}

/// A vif setting that cannot be used, from the command line or built in code: `key=value: problem`, the key
/// being the one the command line would give it (`ip1=` for vif 1's IPv4 address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VifConfigError<'a> {
    /// The vif's index (0: the first).
    pub vif: usize,
    /// The setting's key, without the vif's index (`ip`, `gw`, `ip6`, `gw6`, `slaac`, `tso`, `lro`,
    /// `split-evtchn`).
    pub key: &'static str,
    /// The value: as given on the command line, or written out from the configuration.
    pub value: Cow<'a, str>,
    /// What is wrong with it.
    pub problem: ConfigProblem,
}

/// Vif 0's error.
impl<'a> From<ConfigError<'a>> for VifConfigError<'a> {
    fn from(e: ConfigError<'a>) -> Self {
        VifConfigError { vif: 0, key: e.key, value: Cow::Borrowed(e.value), problem: e.problem }
    }
}

impl VifConfigError<'_> {
    /// The error with its value copied, free of the command line's lifetime.
    pub fn into_owned(self) -> VifConfigError<'static> {
        VifConfigError { value: Cow::Owned(self.value.into_owned()), ..self }
    }
}

impl fmt::Display for VifConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key)?;
        if self.vif != 0 {
            write!(f, "{}", self.vif)?;
        }
        write!(f, "={}: ", self.value)?;
        describe(self.key, self.problem, f)
    }
}

impl core::error::Error for VifConfigError<'_> {}

fn parse_ipv4_cidr(v: &str) -> Result<Ipv4Cidr, ConfigProblem> {
    let (addr, len) = v.split_once('/').ok_or(ConfigProblem::NotIpv4Cidr)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| ConfigProblem::NotIpv4Cidr)?;
    let len: u8 = parse_prefix_len(len, 32).ok_or(ConfigProblem::NotIpv4Cidr)?;
    let cidr = Ipv4Cidr::new(addr, len);
    check_ipv4_address(cidr)?;
    Ok(cidr)
}

fn parse_ipv6_cidr(v: &str) -> Result<Ipv6Cidr, ConfigProblem> {
    let (addr, len) = v.split_once('/').ok_or(ConfigProblem::NotIpv6Cidr)?;
    let addr: Ipv6Addr = addr.parse().map_err(|_| ConfigProblem::NotIpv6Cidr)?;
    let len: u8 = parse_prefix_len(len, 128).ok_or(ConfigProblem::NotIpv6Cidr)?;
    let cidr = Ipv6Cidr::new(addr, len);
    check_ipv6_address(cidr)?;
    Ok(cidr)
}

/// A decimal prefix length in `1..=max`, without sign or leading zeros.
fn parse_prefix_len(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    let n: u8 = s.parse().ok()?;
    (1..=max).contains(&n).then_some(n)
}

/// A static IPv4 address: a prefix length of at least 1, unicast, and (in a subnet with room for them) neither
/// the network nor the broadcast address.
fn check_ipv4_address(cidr: Ipv4Cidr) -> Result<(), ConfigProblem> {
    let addr = cidr.address();
    if cidr.prefix_len() == 0 {
        return Err(ConfigProblem::NotIpv4Cidr);
    }
    check_ipv4_unicast(addr)?;
    if cidr.prefix_len() <= 30 && (addr == cidr.network().address() || Some(addr) == cidr.broadcast()) {
        return Err(ConfigProblem::NotHostAddress);
    }
    Ok(())
}

/// An IPv4 default router: unicast, inside `address`'s subnet, not `address` itself.
fn check_ipv4_gateway(address: Ipv4Cidr, gw: Ipv4Addr) -> Result<(), ConfigProblem> {
    check_ipv4_unicast(gw)?;
    if !address.contains_addr(&gw) {
        return Err(ConfigProblem::OutsideSubnet(IpCidr::Ipv4(address)));
    }
    if gw == address.address() {
        return Err(ConfigProblem::OwnAddress);
    }
    Ok(())
}

/// A static IPv6 address: a prefix length of at least 1, unicast.
fn check_ipv6_address(cidr: Ipv6Cidr) -> Result<(), ConfigProblem> {
    if cidr.prefix_len() == 0 {
        return Err(ConfigProblem::NotIpv6Cidr);
    }
    check_ipv6_unicast(cidr.address())
}

/// An IPv6 default router: unicast, and link-local or inside the static address's subnet (not the address).
fn check_ipv6_gateway(address: Option<Ipv6Cidr>, gw: Ipv6Addr) -> Result<(), ConfigProblem> {
    check_ipv6_unicast(gw)?;
    match address {
        _ if is_link_local(gw) => Ok(()),
        None => Err(ConfigProblem::WithoutAddress),
        Some(cidr) if !cidr.contains_addr(&gw) => Err(ConfigProblem::OutsideSubnet(IpCidr::Ipv6(cidr))),
        Some(cidr) if cidr.address() == gw => Err(ConfigProblem::OwnAddress),
        Some(_) => Ok(()),
    }
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

    fn cmdline(line: &str) -> Result<VifConfigs, VifConfigError<'_>> {
        VifConfigs::from_cmdline(&Cmdline::parse(line).unwrap())
    }

    fn static_v4(address: &str, gateway: Option<&str>) -> Ipv4Config {
        Ipv4Config::Static { address: address.parse().unwrap(), gateway: gateway.map(|g| g.parse().unwrap()) }
    }

    #[test]
    fn command_line_equals_the_configuration_built_in_code() {
        let line = "log=info ip=10.0.0.2/24 gw=10.0.0.1 ip6=fd00::2/64 slaac=off tso=off \
                    ip1=10.0.1.2/24 lro1=off split-evtchn1=on ip3=off greet=you";
        let built = VifConfigs::new([
            NetConfig {
                ipv4: static_v4("10.0.0.2/24", Some("10.0.0.1")),
                ipv6_address: Some("fd00::2/64".parse().unwrap()),
                slaac: false,
                tso: false,
                ..NetConfig::default()
            },
            NetConfig { ipv4: static_v4("10.0.1.2/24", None), lro: false, split_evtchn: true, ..NetConfig::default() },
        ])
        .with_vif(3, NetConfig { ipv4: Ipv4Config::Off, ..NetConfig::default() });
        assert_eq!(cmdline(line).unwrap(), built);
        assert_eq!(*built.get(2), NetConfig::default(), "a vif without keys gets the default");
        assert_eq!(*built.get(7), NetConfig::default());
        assert_eq!(NetConfig::from_cmdline(&Cmdline::parse(line).unwrap()).unwrap(), *built.get(0));
        // Nothing on the command line: every vif the default.
        assert_eq!(cmdline("log=debug").unwrap(), VifConfigs::default());
        assert_eq!(VifConfigs::from(NetConfig::default()), VifConfigs::new([NetConfig::default()]));
    }

    #[test]
    fn a_key_is_the_longest_setting_it_starts_with() {
        // `ip6=` is vif 0's IPv6 address, not vif 6's IPv4 one; `ip61=` vif 1's IPv6 address.
        let c = cmdline("ip6=fd00::2/64 ip61=fd01::2/64 gw61=fe80::1 tso12=off").unwrap();
        assert_eq!(c.vifs.keys().copied().collect::<alloc::vec::Vec<_>>(), [0, 1, 12]);
        assert_eq!(c.get(0).ipv6_address, Some("fd00::2/64".parse().unwrap()));
        assert_eq!(c.get(0).ipv4, Ipv4Config::Dhcp);
        assert_eq!(c.get(1).ipv6_gateway, Some("fe80::1".parse().unwrap()));
        assert!(!c.get(12).tso);
        assert_eq!(*c.get(6), NetConfig::default());
        // No leading zeros, no vif keys from other words; the last of a repeated key wins.
        let c = cmdline("ip01=10.0.0.2/24 ipx=1 tso0=off iptables=on tso1=off tso1=on").unwrap();
        assert_eq!(c, VifConfigs::new([NetConfig::default(), NetConfig::default()]));
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_vifs_key() {
        let e = cmdline("ip=10.0.0.2/24 ip1=10.0.1.300/24").unwrap_err();
        assert_eq!((e.vif, e.key), (1, "ip"));
        assert_eq!(e.to_string(), "ip1=10.0.1.300/24: not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off");
        assert_eq!(cmdline("tso2=maybe").unwrap_err().to_string(), "tso2=maybe: expected on or off");
        assert_eq!(
            cmdline("gw=10.0.0.1").unwrap_err().to_string(),
            "gw=10.0.0.1: needs a static ip=a.b.c.d/n (with DHCP the lease names the router)"
        );
        let e = cmdline("ip61=fd01::2/64 gw61=fd02::1").unwrap_err();
        assert_eq!(e.to_string(), "gw61=fd02::1: not inside the subnet of fd01::2/64");
        assert_eq!(e.clone().into_owned(), e);
    }

    #[test]
    fn a_configuration_built_in_code_is_checked_as_the_command_line_is() {
        let error = |config: NetConfig| config.check().unwrap_err().to_string();
        let v4 = |address, gateway| NetConfig { ipv4: static_v4(address, gateway), ..NetConfig::default() };
        assert_eq!(error(v4("10.0.0.2/24", Some("10.0.1.1"))), "gw=10.0.1.1: not inside the subnet of 10.0.0.2/24");
        assert_eq!(error(v4("10.0.0.2/24", Some("10.0.0.2"))), "gw=10.0.0.2: is the interface's own address");
        assert_eq!(error(v4("10.0.0.255/24", None)), "ip=10.0.0.255/24: is the subnet's network or broadcast address");
        assert_eq!(
            error(v4("10.0.0.2/0", None)),
            "ip=10.0.0.2/0: not an IPv4 address/prefix (e.g. 10.0.0.2/24), dhcp or off"
        );
        assert_eq!(error(v4("127.0.0.1/8", None)), "ip=127.0.0.1/8: not a unicast address");
        let v6 = |address: Option<&str>, gateway: &str| NetConfig {
            ipv6_address: address.map(|a| a.parse().unwrap()),
            ipv6_gateway: Some(gateway.parse().unwrap()),
            ..NetConfig::default()
        };
        assert_eq!(error(v6(None, "fd00::1")), "gw6=fd00::1: needs ip6=... or a link-local (fe80::) router address");
        assert_eq!(error(v6(Some("fd00::2/64"), "ff02::2")), "gw6=ff02::2: not a unicast address");
        assert!(v6(None, "fe80::1").check().is_ok());
        assert!(v6(Some("fd00::2/64"), "fd00::1").check().is_ok());
        // The vif's own key, through `VifConfigs::checked`.
        let configs = VifConfigs::default().with_vif(2, v4("10.0.2.2/24", Some("10.0.3.1")));
        assert_eq!(configs.checked(0), Ok(NetConfig::default()));
        assert_eq!(configs.checked(2).unwrap_err().to_string(), "gw2=10.0.3.1: not inside the subnet of 10.0.2.2/24");
        // Whatever the command line accepts passes the check.
        for line in ["", "ip=10.0.0.2/24 gw=10.0.0.1 ip6=fd00::2/64 gw6=fd00::1", "ip=10.0.0.2/32 gw6=fe80::1"] {
            parse(line).unwrap().check().unwrap();
        }
    }

    #[test]
    fn the_first_difference_is_the_first_vif_configured_otherwise() {
        let quiet = NetConfig { slaac: false, ..NetConfig::default() };
        let applied = [NetConfig::default(), quiet];
        assert_eq!(VifConfigs::default().with_vif(1, quiet).first_difference(&applied), None);
        // Settings for vifs the domain does not have make no difference.
        assert_eq!(VifConfigs::default().with_vif(1, quiet).with_vif(5, quiet).first_difference(&applied), None);
        assert_eq!(VifConfigs::default().first_difference(&applied), Some(1));
        assert_eq!(VifConfigs::from(quiet).first_difference(&applied), Some(0));
        assert_eq!(VifConfigs::from(quiet).first_difference(&[]), None);
    }

    #[test]
    fn equal_configurations_give_every_vif_the_same() {
        let quiet = NetConfig { slaac: false, ..NetConfig::default() };
        assert_eq!(VifConfigs::new([NetConfig::default(), NetConfig::default()]), VifConfigs::default());
        assert_eq!(VifConfigs::default().with_vif(1, quiet), VifConfigs::new([NetConfig::default(), quiet]));
        assert_ne!(VifConfigs::from(quiet), VifConfigs::default());
        assert_ne!(VifConfigs { others: quiet, ..VifConfigs::default() }, VifConfigs::default());
        let everyone_quiet = VifConfigs { others: quiet, ..VifConfigs::default() };
        assert_eq!(everyone_quiet.clone().with_vif(4, quiet), everyone_quiet);
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
