//! The results exchanged after a test: the server's, as the JSON an iperf3 3.x client requires (`get_results`:
//! `cpu_util_total`, `cpu_util_user`, `cpu_util_system`, `sender_has_retransmits` and `streams`, each stream with
//! `id`, `bytes`, `retransmits`, `jitter`, `errors` and `packets`, else the client fails with "unable to receive
//! results"; `start_time`/`end_time` give the seconds its summary divides by), and the client's, read for the log.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::params::{whole, Number};
use super::{Direction, Error, Message, TestParams};

/// Share of the CPU, in percent, over the test (iperf3's `cpu_util`: total, user, system).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuUtil {
    /// Busy, all of it.
    pub total: f64,
    /// Busy in the application (a unikernel's user space: app, executor).
    pub user: f64,
    /// Busy in the system (a unikernel's: the network stack).
    pub system: f64,
}

/// What one stream moved, as the server counted it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StreamResult {
    /// The stream's id ([`super::stream_id`]).
    pub id: u32,
    /// Bytes received (or, when the server sent, written), after the omitted start.
    pub bytes: u64,
    /// Seconds those bytes took (from the end of the omitted start to `TEST_END`).
    pub seconds: f64,
    /// UDP, receiving: the jitter, in seconds ([`super::udp::UdpReceiver`]); 0 otherwise.
    pub jitter_s: f64,
    /// UDP, receiving: datagrams lost; 0 otherwise.
    pub errors: u64,
    /// UDP: the highest packet number received, or the datagrams sent; 0 for TCP.
    pub packets: u64,
}

/// The server's results, sent after the client's.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerResults {
    /// CPU use over the test.
    pub cpu: CpuUtil,
    /// -1 when the server only received (iperf3's convention); 0 otherwise, since this stack does not report
    /// retransmissions (each stream's `retransmits` is then -1, "unknown").
    pub sender_has_retransmits: i32,
    /// Each stream, in id order.
    pub streams: Vec<StreamResult>,
}

impl ServerResults {
    /// The results of a test with `params`.
    pub fn new(params: &TestParams, cpu: CpuUtil, streams: Vec<StreamResult>) -> ServerResults {
        let sender_has_retransmits = if params.direction == Direction::ToServer { -1 } else { 0 };
        ServerResults { cpu, sender_has_retransmits, streams }
    }

    /// Bytes over all streams.
    pub fn total_bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }

    /// The JSON, as sent after its 4-byte length.
    pub fn to_json(&self) -> Vec<u8> {
        let streams: Vec<WireStream> = self
            .streams
            .iter()
            .map(|s| WireStream {
                id: s.id,
                bytes: s.bytes,
                retransmits: -1,
                jitter: if s.jitter_s.is_finite() { s.jitter_s } else { 0.0 },
                errors: s.errors,
                packets: s.packets,
                start_time: 0.0,
                end_time: if s.seconds.is_finite() { s.seconds } else { 0.0 },
            })
            .collect();
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let wire = WireResults {
            cpu_util_total: finite(self.cpu.total),
            cpu_util_user: finite(self.cpu.user),
            cpu_util_system: finite(self.cpu.system),
            sender_has_retransmits: self.sender_has_retransmits,
            streams: &streams,
        };
        // Room for the fixed part and ~150 bytes a stream; grown if a number is longer than expected.
        let mut buf = vec![0u8; 256 + 192 * streams.len()];
        loop {
            match serde_json_core::to_slice(&wire, &mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return buf;
                }
                Err(_) => buf.resize(buf.len() * 2, 0),
            }
        }
    }
}

#[derive(Serialize)]
struct WireResults<'a> {
    cpu_util_total: f64,
    cpu_util_user: f64,
    cpu_util_system: f64,
    sender_has_retransmits: i32,
    streams: &'a [WireStream],
}

#[derive(Serialize)]
struct WireStream {
    id: u32,
    bytes: u64,
    retransmits: i64,
    jitter: f64,
    errors: u64,
    packets: u64,
    start_time: f64,
    end_time: f64,
}

/// One stream in the client's results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientStream {
    /// Its id.
    pub id: u32,
    /// Bytes the client sent or received on it.
    pub bytes: u64,
    /// Seconds (`end_time - start_time`; 0 if absent).
    pub seconds: f64,
}

/// The client's results (what its side counted), for the log.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientResults {
    /// Its CPU use, in percent (`cpu_util_total`; 0 if absent).
    pub cpu_total: f64,
    /// Each stream.
    pub streams: Vec<ClientStream>,
}

impl ClientResults {
    /// Parses the client's results JSON; [`Error::BadJson`] if it is not an object with a `streams` array of
    /// objects with whole-number `id` and `bytes`.
    pub fn parse(json: &[u8]) -> Result<ClientResults, Error> {
        let bad = |detail| Error::BadJson { what: Message::Results, detail };
        let (w, _) = serde_json_core::from_slice::<WireClientResults>(json).map_err(|e| bad(format!("{e}")))?;
        let streams = w.streams.ok_or_else(|| bad("no \"streams\"".into()))?;
        let mut out = Vec::with_capacity(streams.len());
        for s in streams {
            let id = whole(Message::Results, "id", s.id)?.ok_or_else(|| bad("a stream without \"id\"".into()))?;
            let bytes =
                whole(Message::Results, "bytes", s.bytes)?.ok_or_else(|| bad("a stream without \"bytes\"".into()))?;
            let seconds = match (s.start_time, s.end_time) {
                (Some(Number(a)), Some(Number(b))) if (b - a).is_finite() => b - a,
                _ => 0.0,
            };
            out.push(ClientStream { id: id.min(u32::MAX as u64) as u32, bytes, seconds });
        }
        Ok(ClientResults { cpu_total: w.cpu_util_total.map_or(0.0, |n| n.0), streams: out })
    }

    /// Bytes over all streams.
    pub fn total_bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }
}

#[derive(Deserialize)]
struct WireClientResults {
    cpu_util_total: Option<Number>,
    streams: Option<Vec<WireClientStream>>,
}

#[derive(Deserialize)]
struct WireClientStream {
    id: Option<Number>,
    bytes: Option<Number>,
    start_time: Option<Number>,
    end_time: Option<Number>,
}

#[cfg(test)]
mod tests {
    use super::super::recorded;
    use super::*;

    fn params(json: &str) -> TestParams {
        TestParams::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn server_results_have_every_field_a_3_12_client_requires() {
        let p = params(r#"{"tcp":true,"time":10,"parallel":2}"#);
        let r = ServerResults::new(
            &p,
            CpuUtil { total: 12.5, user: 2.5, system: 10.0 },
            vec![
                StreamResult { id: 1, bytes: 123_456_789, seconds: 10.000_25, ..Default::default() },
                StreamResult { id: 3, bytes: 5_000_000_000, seconds: 10.0, ..Default::default() },
            ],
        );
        assert_eq!(r.total_bytes(), 5_123_456_789);
        let json = String::from_utf8(r.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"cpu_util_total":12.5,"cpu_util_user":2.5,"cpu_util_system":10.0,"sender_has_retransmits":-1,"streams":[{"id":1,"bytes":123456789,"retransmits":-1,"jitter":0.0,"errors":0,"packets":0,"start_time":0.0,"end_time":10.00025},{"id":3,"bytes":5000000000,"retransmits":-1,"jitter":0.0,"errors":0,"packets":0,"start_time":0.0,"end_time":10.0}]}"#
        );
    }

    #[test]
    fn a_sending_server_says_it_does_not_count_retransmissions() {
        let r = ServerResults::new(&params(r#"{"tcp":true,"reverse":true}"#), CpuUtil::default(), Vec::new());
        assert_eq!(r.sender_has_retransmits, 0);
        let json = String::from_utf8(r.to_json()).unwrap();
        assert!(json.contains(r#""sender_has_retransmits":0,"streams":[]"#), "{json}");
        let bidir = ServerResults::new(&params(r#"{"tcp":true,"bidirectional":true}"#), CpuUtil::default(), vec![]);
        assert_eq!(bidir.sender_has_retransmits, 0);
    }

    #[test]
    fn results_of_many_streams_and_odd_numbers_still_encode() {
        let streams = (0..128)
            .map(|i| StreamResult {
                id: super::super::stream_id(i),
                bytes: 1 << 60,
                seconds: f64::NAN,
                jitter_s: f64::NAN,
                ..Default::default()
            })
            .collect();
        let cpu = CpuUtil { total: f64::INFINITY, user: 1.0 / 3.0, system: 0.0 };
        let r = ServerResults::new(&params("{}"), cpu, streams);
        let json = String::from_utf8(r.to_json()).unwrap();
        assert!(json.starts_with(r#"{"cpu_util_total":0.0,"cpu_util_user":0.3333333333333333,"#), "{json}");
        assert_eq!(json.matches(r#""bytes":1152921504606846976,"#).count(), 128);
        assert!(json.ends_with(r#""id":129,"bytes":1152921504606846976,"retransmits":-1,"jitter":0.0,"errors":0,"packets":0,"start_time":0.0,"end_time":0.0}]}"#), "{json}");
        // And it reads back as results.
        assert_eq!(ClientResults::parse(json.as_bytes()).unwrap().streams.len(), 128);
    }

    #[test]
    fn udp_results_carry_jitter_loss_and_packets() {
        let p = params(r#"{"udp":true,"len":1448}"#);
        let stream = StreamResult { id: 1, bytes: 144_800, seconds: 1.0, jitter_s: 0.000_125, errors: 3, packets: 103 };
        let json = String::from_utf8(ServerResults::new(&p, CpuUtil::default(), vec![stream]).to_json()).unwrap();
        assert!(
            json.ends_with(r#""streams":[{"id":1,"bytes":144800,"retransmits":-1,"jitter":0.000125,"errors":3,"packets":103,"start_time":0.0,"end_time":1.0}]}"#),
            "{json}"
        );
    }

    #[test]
    fn client_results_from_iperf3_3_12() {
        let r = ClientResults::parse(recorded::RESULTS_SENT_P2.as_bytes()).unwrap();
        assert_eq!(
            r.streams,
            [
                ClientStream { id: 1, bytes: 1378877440, seconds: 1.001058 },
                ClientStream { id: 3, bytes: 1407713280, seconds: 1.001065 }
            ]
        );
        assert!((r.cpu_total - 39.2081360976531).abs() < 1e-12);
        let r = ClientResults::parse(recorded::RESULTS_RECEIVED.as_bytes()).unwrap();
        assert_eq!((r.streams.len(), r.total_bytes()), (1, 2776770583));
        let r = ClientResults::parse(recorded::RESULTS_BIDIR.as_bytes()).unwrap();
        assert_eq!(r.streams.iter().map(|s| (s.id, s.bytes)).collect::<Vec<_>>(), [(1, 1888747520), (3, 832229368)]);
    }

    #[test]
    fn client_results_without_streams_or_ids_are_bad() {
        for bad in [
            r#"{"cpu_util_total":1}"#,
            r#"{"streams":[{"bytes":1}]}"#,
            r#"{"streams":[{"id":1}]}"#,
            r#"{"streams":[{"id":-1,"bytes":1}]}"#,
            r#"{"streams":{}}"#,
            "nonsense",
        ] {
            let e = ClientResults::parse(bad.as_bytes()).unwrap_err();
            assert!(matches!(e, Error::BadJson { what: Message::Results, .. }), "{bad}: {e:?}");
        }
    }
}
