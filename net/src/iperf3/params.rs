//! The client's test parameters: the JSON it sends after `PARAM_EXCHANGE`, parsed with serde-json-core and held
//! to what this server does.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{
    code, udp, Error, Message, DEFAULT_BLOCK_LEN, DEFAULT_DURATION_S, DEFAULT_UDP_BLOCK_LEN, DEFAULT_UDP_RATE_BPS,
    MAX_BLOCK_LEN, MAX_DURATION_S, MAX_OMIT_S, MAX_STREAMS, MAX_UDP_BLOCK_LEN,
};

/// The transport a test asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP (iperf3's default).
    Tcp,
    /// UDP (`-u`).
    Udp,
    /// SCTP (`--sctp`): refused by [`TestParams::parse`].
    Sctp,
}

/// Which way the data flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (iperf3's default): the server receives.
    ToServer,
    /// Server to client (`-R`): the server sends.
    ToClient,
    /// Both (`--bidir`): the first `parallel` streams carry data to the server, the next `parallel` from it.
    Both,
}

/// A test as the client asked for it, accepted by this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestParams {
    /// TCP or UDP (SCTP is refused).
    pub protocol: Protocol,
    /// `-t`: seconds the client runs the test (0 with `-n`/`-k`, which end it by amount instead).
    pub duration_s: u64,
    /// `-O`: seconds at the start left out of the results.
    pub omit_s: u64,
    /// `-n`: bytes after which the client ends the test (0: not by bytes).
    pub bytes: u64,
    /// `-k`: blocks after which the client ends the test (0: not by blocks).
    pub blocks: u64,
    /// `-P`: streams each way (1 to [`MAX_STREAMS`]).
    pub parallel: u32,
    /// `-R` / `--bidir`.
    pub direction: Direction,
    /// `-l`: the size of each write (TCP: a sender here writes blocks of up to this size; UDP: each datagram).
    pub block_len: u64,
    /// `-b`: bits per second each sending stream is paced to (0: as fast as it goes; UDP's default is 1 Mbit/s).
    pub rate_bps: u64,
    /// UDP: packet numbers are 8 bytes rather than 4 (`--udp-counters-64bit`).
    pub udp_counters_64bit: bool,
    /// The client's `client_version` (at most 32 printable characters; empty if it sent none).
    pub client_version: String,
    /// Options the client set that this server accepts but does not apply (`MSS`, `window`, `nodelay`,
    /// `congestion`, `TOS`, `flowlabel`, `fqrate`), for the log.
    pub not_applied: Vec<&'static str>,
}

impl TestParams {
    /// Parses and checks the parameters JSON. [`Error::BadJson`] when it is not a JSON object of iperf3's fields
    /// (a number where a count belongs must be a whole number >= 0); [`Error::Refused`] for an SCTP test, for a
    /// UDP block that does not fit one Ethernet frame, and for values out of iperf3's own range.
    pub fn parse(json: &[u8]) -> Result<TestParams, Error> {
        let (w, _) = serde_json_core::from_slice::<Wire<'_>>(json)
            .map_err(|e| Error::BadJson { what: Message::Params, detail: format!("{e}") })?;
        let protocol = if w.sctp == Some(true) {
            Protocol::Sctp
        } else if w.udp == Some(true) {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        const P: Message = Message::Params;
        let refuse = |code: i32, reason: String| Err(Error::Refused { code, reason });
        if protocol == Protocol::Sctp {
            return refuse(
                code::UNIMPLEMENTED,
                "SCTP tests (iperf3 --sctp) are not implemented; this server does TCP and UDP".into(),
            );
        }
        let udp_counters_64bit = w.udp_counters_64bit.is_some();
        let reverse = w.reverse == Some(true);
        let bidirectional = w.bidirectional == Some(true);
        let direction = match (reverse, bidirectional) {
            (true, true) => return refuse(code::REVERSE_BIDIR, "both reverse (-R) and bidirectional (--bidir)".into()),
            (true, false) => Direction::ToClient,
            (false, true) => Direction::Both,
            (false, false) => Direction::ToServer,
        };
        let duration_s = whole(P, "time", w.time)?.unwrap_or(DEFAULT_DURATION_S);
        if duration_s > MAX_DURATION_S {
            return refuse(code::DURATION, format!("a test of {duration_s} s (at most {MAX_DURATION_S})"));
        }
        let omit_s = whole(P, "omit", w.omit)?.unwrap_or(0);
        if omit_s > MAX_OMIT_S {
            return refuse(code::OMIT, format!("omitting the first {omit_s} s (at most {MAX_OMIT_S})"));
        }
        let parallel = whole(P, "parallel", w.parallel)?.unwrap_or(1);
        if parallel == 0 || parallel > MAX_STREAMS as u64 {
            return refuse(code::NUM_STREAMS, format!("{parallel} parallel streams (1 to {MAX_STREAMS})"));
        }
        let block_len = match (whole(P, "len", w.len)?, protocol) {
            (None | Some(0), Protocol::Udp) => DEFAULT_UDP_BLOCK_LEN,
            (None | Some(0), _) => DEFAULT_BLOCK_LEN,
            (Some(n), _) => n,
        };
        if protocol == Protocol::Udp {
            let least = udp::header_len(udp_counters_64bit) as u64;
            if !(least..=MAX_UDP_BLOCK_LEN).contains(&block_len) {
                return refuse(
                    code::UDP_BLOCK_SIZE,
                    format!(
                        "UDP datagrams of {block_len} bytes ({least} to {MAX_UDP_BLOCK_LEN}: this stack neither sends \
                         nor reassembles IP fragments, so a datagram must fit one Ethernet frame)"
                    ),
                );
            }
        } else if block_len > MAX_BLOCK_LEN {
            return refuse(code::BLOCK_SIZE, format!("blocks of {block_len} bytes (at most {MAX_BLOCK_LEN})"));
        }
        let rate_bps = match (whole(P, "bandwidth", w.bandwidth)?, protocol) {
            (None, Protocol::Udp) => DEFAULT_UDP_RATE_BPS,
            (rate, _) => rate.unwrap_or(0),
        };
        let mut not_applied = Vec::new();
        for (name, set) in [
            ("MSS", whole(P, "MSS", w.mss)?.unwrap_or(0) != 0),
            ("window", whole(P, "window", w.window)?.unwrap_or(0) != 0),
            ("nodelay", w.nodelay == Some(true)),
            ("congestion", w.congestion.is_some()),
            ("TOS", whole(P, "TOS", w.tos)?.unwrap_or(0) != 0),
            ("flowlabel", whole(P, "flowlabel", w.flowlabel)?.unwrap_or(0) != 0),
            ("fqrate", whole(P, "fqrate", w.fqrate)?.unwrap_or(0) != 0),
        ] {
            if set {
                not_applied.push(name);
            }
        }
        let client_version = w.client_version.unwrap_or("").chars().filter(|c| c.is_ascii_graphic()).take(32).collect();
        Ok(TestParams {
            protocol,
            duration_s,
            omit_s,
            bytes: whole(P, "num", w.num)?.unwrap_or(0),
            blocks: whole(P, "blockcount", w.blockcount)?.unwrap_or(0),
            parallel: parallel as u32,
            direction,
            block_len,
            rate_bps,
            udp_counters_64bit,
            client_version,
            not_applied,
        })
    }

    /// Streams the client opens: `parallel`, twice that for [`Direction::Both`].
    pub fn streams(&self) -> u32 {
        match self.direction {
            Direction::Both => 2 * self.parallel,
            _ => self.parallel,
        }
    }

    /// Whether the server sends (rather than receives) on the stream that connected `index`th (from 0).
    pub fn server_sends(&self, index: u32) -> bool {
        match self.direction {
            Direction::ToServer => false,
            Direction::ToClient => true,
            Direction::Both => index >= self.parallel,
        }
    }
}

impl fmt::Display for TestParams {
    /// One line for the log: `TCP, 4 streams to the server, 10 s, 128 KiB blocks (client 3.12)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let way = match self.direction {
            Direction::ToServer => "to the server",
            Direction::ToClient => "from the server (-R)",
            Direction::Both => "each way (--bidir)",
        };
        let s = if self.parallel == 1 { "" } else { "s" };
        let protocol = if self.protocol == Protocol::Udp { "UDP" } else { "TCP" };
        write!(f, "{protocol}, {} stream{s} {way}", self.parallel)?;
        if self.bytes != 0 {
            write!(f, ", {} bytes", self.bytes)?;
        } else if self.blocks != 0 {
            write!(f, ", {} blocks", self.blocks)?;
        } else {
            write!(f, ", {} s", self.duration_s)?;
        }
        if self.omit_s != 0 {
            write!(f, " after {} s omitted", self.omit_s)?;
        }
        if self.protocol == Protocol::Udp {
            write!(f, ", {}-byte datagrams", self.block_len)?;
            if self.udp_counters_64bit {
                f.write_str(" with 64-bit packet numbers")?;
            }
        } else {
            write!(f, ", {} KiB blocks", self.block_len / 1024)?;
        }
        if self.rate_bps != 0 {
            write!(f, ", paced to {} bit/s per stream", self.rate_bps)?;
        }
        if !self.not_applied.is_empty() {
            write!(f, ", not applied here: {}", self.not_applied.join(" "))?;
        }
        write!(f, " (client {})", if self.client_version.is_empty() { "?" } else { self.client_version.as_str() })
    }
}

/// The fields read from the parameters (iperf3's `send_parameters`); others are ignored (`tcp` among them: TCP
/// is the default).
#[derive(Deserialize)]
struct Wire<'a> {
    udp: Option<bool>,
    sctp: Option<bool>,
    omit: Option<Number>,
    time: Option<Number>,
    num: Option<Number>,
    blockcount: Option<Number>,
    parallel: Option<Number>,
    reverse: Option<bool>,
    bidirectional: Option<bool>,
    len: Option<Number>,
    bandwidth: Option<Number>,
    #[serde(rename = "MSS")]
    mss: Option<Number>,
    window: Option<Number>,
    nodelay: Option<bool>,
    #[serde(borrow)]
    congestion: Option<&'a str>,
    #[serde(rename = "TOS")]
    tos: Option<Number>,
    flowlabel: Option<Number>,
    fqrate: Option<Number>,
    #[serde(borrow)]
    client_version: Option<&'a str>,
    udp_counters_64bit: Option<Number>,
}

/// A JSON number as iperf3's cJSON writes it: digits, or `%g` notation (`1e+15`) for large values. Read as
/// `f64`, which holds every whole number up to 2^53 exactly.
pub(super) struct Number(pub(super) f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        d.deserialize_f64(V)
    }
}

/// `field`'s value (in `what`) as a whole number >= 0 (`None` if absent); [`Error::BadJson`] for a negative,
/// fractional or non-finite one, or one beyond `u64`.
pub(super) fn whole(what: Message, field: &str, n: Option<Number>) -> Result<Option<u64>, Error> {
    let Some(Number(v)) = n else { return Ok(None) };
    // 2^64 as f64 is exact; anything at or above it does not fit.
    if (0.0..18_446_744_073_709_551_616.0).contains(&v) && v == (v as u64) as f64 {
        Ok(Some(v as u64))
    } else {
        Err(Error::BadJson { what, detail: format!("\"{field}\" is {v}, not a whole number >= 0") })
    }
}

#[cfg(test)]
mod tests {
    use super::super::recorded;
    use super::*;

    fn parse(json: &str) -> Result<TestParams, Error> {
        TestParams::parse(json.as_bytes())
    }

    fn refused_code(json: &str) -> i32 {
        match parse(json) {
            Err(Error::Refused { code, .. }) => code,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn plain_test_from_iperf3_3_12() {
        let p = parse(recorded::PLAIN).unwrap();
        assert_eq!(
            p,
            TestParams {
                protocol: Protocol::Tcp,
                duration_s: 10,
                omit_s: 0,
                bytes: 0,
                blocks: 0,
                parallel: 1,
                direction: Direction::ToServer,
                block_len: 131072,
                rate_bps: 0,
                udp_counters_64bit: false,
                client_version: "3.12".into(),
                not_applied: Vec::new(),
            }
        );
        assert_eq!((p.streams(), p.server_sends(0)), (1, false));
        assert_eq!(p.to_string(), "TCP, 1 stream to the server, 10 s, 128 KiB blocks (client 3.12)");
    }

    #[test]
    fn reverse_with_parallel_streams() {
        let p = parse(recorded::REVERSE_P4).unwrap();
        assert_eq!((p.direction, p.parallel, p.streams()), (Direction::ToClient, 4, 4));
        assert!((0..4).all(|i| p.server_sends(i)));
        assert_eq!(p.to_string(), "TCP, 4 streams from the server (-R), 10 s, 128 KiB blocks (client 3.12)");
    }

    #[test]
    fn by_bytes_and_by_blocks() {
        let p = parse(recorded::BYTES).unwrap();
        assert_eq!((p.duration_s, p.bytes, p.blocks, p.block_len), (0, 16 << 20, 0, 65536));
        assert_eq!(p.to_string(), "TCP, 1 stream to the server, 16777216 bytes, 64 KiB blocks (client 3.12)");
        let p = parse(recorded::BLOCKS_SERVER_OUTPUT).unwrap();
        assert_eq!((p.duration_s, p.bytes, p.blocks), (0, 0, 100));
    }

    #[test]
    fn omitted_start_and_pacing() {
        let p = parse(recorded::OMIT_RATE_REVERSE).unwrap();
        assert_eq!((p.omit_s, p.duration_s, p.rate_bps, p.direction), (2, 3, 1_000_000_000, Direction::ToClient));
        assert_eq!(
            p.to_string(),
            "TCP, 1 stream from the server (-R), 3 s after 2 s omitted, 128 KiB blocks, paced to 1000000000 bit/s \
             per stream (client 3.12)"
        );
    }

    #[test]
    fn bidirectional_streams_receive_first_then_send() {
        let p = parse(recorded::BIDIR).unwrap();
        assert_eq!((p.direction, p.streams()), (Direction::Both, 2));
        let two = parse(r#"{"tcp":true,"parallel":2,"bidirectional":true}"#).unwrap();
        assert_eq!((0..4).map(|i| two.server_sends(i)).collect::<Vec<_>>(), [false, false, true, true]);
    }

    #[test]
    fn defaults_for_what_is_not_sent() {
        let p = parse(r#"{"tcp":true}"#).unwrap();
        assert_eq!((p.duration_s, p.parallel, p.block_len, p.omit_s), (10, 1, DEFAULT_BLOCK_LEN, 0));
        assert_eq!(p.client_version, "");
        assert_eq!(parse("{}").unwrap().protocol, Protocol::Tcp);
        assert_eq!(parse(r#"{"len":0}"#).unwrap().block_len, DEFAULT_BLOCK_LEN);
    }

    #[test]
    fn udp_tests() {
        // The recorded block is loopback's MSS, too big for one Ethernet frame (below); the lab's is 1448.
        let lab = |json: &str| parse(&json.replace("32768", "1448")).unwrap();
        let p = lab(recorded::UDP);
        assert_eq!((p.protocol, p.block_len, p.rate_bps, p.udp_counters_64bit), (Protocol::Udp, 1448, 1 << 20, false));
        let p = lab(recorded::UDP_REVERSE_64);
        assert_eq!((p.direction, p.rate_bps, p.udp_counters_64bit), (Direction::ToClient, 10_000_000, true));
        assert_eq!(
            p.to_string(),
            "UDP, 1 stream from the server (-R), 10 s, 1448-byte datagrams with 64-bit packet numbers, paced to \
             10000000 bit/s per stream (client 3.12)"
        );
        // Without a length or a rate: iperf3's UDP defaults.
        let p = parse(r#"{"udp":true}"#).unwrap();
        assert_eq!((p.block_len, p.rate_bps), (DEFAULT_UDP_BLOCK_LEN, DEFAULT_UDP_RATE_BPS));
    }

    #[test]
    fn udp_datagrams_must_fit_a_frame_and_hold_a_header() {
        let e = parse(recorded::UDP).unwrap_err();
        assert_eq!(e.server_error(), Some((code::UDP_BLOCK_SIZE, 0)));
        assert!(e.to_string().contains("UDP datagrams of 32768 bytes (12 to 1472"), "{e}");
        assert_eq!(refused_code(r#"{"udp":true,"len":11}"#), code::UDP_BLOCK_SIZE);
        assert_eq!(refused_code(r#"{"udp":true,"len":12,"udp_counters_64bit":1}"#), code::UDP_BLOCK_SIZE);
        assert!(parse(r#"{"udp":true,"len":12}"#).is_ok());
        assert!(parse(r#"{"udp":true,"len":1472}"#).is_ok());
    }

    #[test]
    fn sctp_is_refused_as_not_implemented() {
        let e = parse(r#"{"sctp":true,"time":10}"#).unwrap_err();
        assert_eq!(e.server_error(), Some((code::UNIMPLEMENTED, 0)));
        assert!(e.to_string().contains("SCTP tests (iperf3 --sctp) are not implemented"), "{e}");
    }

    #[test]
    fn values_beyond_iperf3s_limits_are_refused_with_its_codes() {
        assert_eq!(refused_code(r#"{"tcp":true,"time":86401}"#), code::DURATION);
        assert_eq!(refused_code(r#"{"tcp":true,"parallel":129}"#), code::NUM_STREAMS);
        assert_eq!(refused_code(r#"{"tcp":true,"parallel":0}"#), code::NUM_STREAMS);
        assert_eq!(refused_code(r#"{"tcp":true,"len":1048577}"#), code::BLOCK_SIZE);
        assert_eq!(refused_code(r#"{"tcp":true,"omit":601}"#), code::OMIT);
        assert_eq!(refused_code(r#"{"tcp":true,"reverse":true,"bidirectional":true}"#), code::REVERSE_BIDIR);
        // The limits themselves are fine.
        assert!(parse(r#"{"tcp":true,"time":86400,"parallel":128,"len":1048576,"omit":600}"#).is_ok());
    }

    #[test]
    fn socket_options_are_listed_as_not_applied() {
        let p = parse(recorded::SOCKET_OPTIONS).unwrap();
        assert_eq!(p.not_applied, ["MSS", "window", "nodelay", "congestion", "TOS"]);
        assert!(p.to_string().ends_with("not applied here: MSS window nodelay congestion TOS (client 3.12)"), "{p}");
    }

    #[test]
    fn unknown_fields_of_any_kind_are_ignored() {
        let p = parse(r#"{"tcp":true,"time":5,"title":"a \"quoted\" title","extra_data":"x","authtoken":"abc==","server_affinity":2,"get_server_output":1,"dont_fragment":1,"future":{"a":[1,2.5,null,{"b":false}]},"client_version":"3.12"}"#).unwrap();
        assert_eq!((p.duration_s, p.client_version.as_str()), (5, "3.12"));
    }

    #[test]
    fn numbers_in_exponent_notation_and_bad_numbers() {
        // cJSON prints a number it cannot hold as an int64 with %g; the notation is read whatever the value.
        assert_eq!(parse(r#"{"tcp":true,"num":1e+15}"#).unwrap().bytes, 1_000_000_000_000_000);
        for bad in [r#"{"time":-1}"#, r#"{"time":1.5}"#, r#"{"num":1e30}"#, r#"{"parallel":"4"}"#, r#"{"udp":1}"#] {
            match parse(bad) {
                Err(Error::BadJson { what: Message::Params, detail }) => assert!(!detail.is_empty()),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_json_is_refused() {
        for bad in
            ["", "{", "[]", "null", r#"{"tcp":true,}"#, r#"{"tcp":true}x"#, "\u{0}\u{0}\u{0}\u{9}", r#"{"time":10"#]
        {
            let e = parse(bad).unwrap_err();
            assert!(matches!(e, Error::BadJson { what: Message::Params, .. }), "{bad:?}: {e:?}");
            assert_eq!(e.server_error(), Some((code::RECV_PARAMS, super::super::errno::EINVAL)));
        }
    }

    #[test]
    fn client_version_is_kept_short_and_printable() {
        let p = parse(r#"{"client_version":"3.12\u0007-with-a-very-long-suffix-that-goes-on-and-on"}"#).unwrap();
        assert!(p.client_version.len() <= 32 && p.client_version.chars().all(|c| c.is_ascii_graphic()));
    }
}
