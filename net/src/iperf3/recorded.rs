//! What Debian bookworm's iperf3 3.12 (`iperf 3.12 (cJSON 1.7.15)`) sent to a recording server on 127.0.0.1, byte
//! for byte: its parameters for each command line, and its results. The test fixtures of this module.

/// `iperf3 -c HOST`
pub const PLAIN: &str = r#"{"tcp":true,"omit":0,"time":10,"num":0,"blockcount":0,"parallel":1,"len":131072,"pacing_timer":1000,"client_version":"3.12"}"#;
/// `iperf3 -c HOST -R -P 4`
pub const REVERSE_P4: &str = r#"{"tcp":true,"omit":0,"time":10,"num":0,"blockcount":0,"parallel":4,"reverse":true,"len":131072,"pacing_timer":1000,"client_version":"3.12"}"#;
/// `iperf3 -c HOST -u` (the block length is the control connection's MSS: loopback's here)
pub const UDP: &str = r#"{"udp":true,"omit":0,"time":10,"num":0,"blockcount":0,"parallel":1,"len":32768,"bandwidth":1048576,"pacing_timer":1000,"client_version":"3.12"}"#;
/// `iperf3 -c HOST -u -b 10M -R --udp-counters-64bit`
pub const UDP_REVERSE_64: &str = r#"{"udp":true,"omit":0,"time":10,"num":0,"blockcount":0,"parallel":1,"reverse":true,"len":32768,"bandwidth":10000000,"pacing_timer":1000,"udp_counters_64bit":1,"client_version":"3.12"}"#;
/// `iperf3 -c HOST --bidir`
pub const BIDIR: &str = r#"{"tcp":true,"omit":0,"time":10,"num":0,"blockcount":0,"parallel":1,"bidirectional":true,"len":131072,"pacing_timer":1000,"client_version":"3.12"}"#;
/// `iperf3 -c HOST -n 16M -l 64K`
pub const BYTES: &str = r#"{"tcp":true,"omit":0,"time":0,"num":16777216,"blockcount":0,"parallel":1,"len":65536,"pacing_timer":1000,"client_version":"3.12"}"#;
/// `iperf3 -c HOST -O 2 -b 1G -R -t 3`
pub const OMIT_RATE_REVERSE: &str = r#"{"tcp":true,"omit":2,"time":3,"num":0,"blockcount":0,"parallel":1,"reverse":true,"len":131072,"bandwidth":1000000000,"pacing_timer":1000,"client_version":"3.12"}"#;
/// `iperf3 -c HOST -M 1000 -w 256K -N -C reno -S 16`
pub const SOCKET_OPTIONS: &str = r#"{"tcp":true,"omit":0,"time":10,"num":0,"blockcount":0,"MSS":1000,"nodelay":true,"parallel":1,"window":262144,"len":131072,"pacing_timer":1000,"TOS":16,"congestion":"reno","client_version":"3.12"}"#;
/// `iperf3 -c HOST -k 100 --get-server-output`
pub const BLOCKS_SERVER_OUTPUT: &str = r#"{"tcp":true,"omit":0,"time":0,"num":0,"blockcount":100,"parallel":1,"len":131072,"pacing_timer":1000,"get_server_output":1,"client_version":"3.12"}"#;

/// The client's results after `iperf3 -c HOST -t 1 -P 2` (it sent: it reports its retransmissions).
pub const RESULTS_SENT_P2: &str = r#"{"cpu_util_total":39.2081360976531,"cpu_util_user":0.58842310852700541,"cpu_util_system":38.6197129891261,"sender_has_retransmits":1,"congestion_used":"bbr","streams":[{"id":1,"bytes":1378877440,"retransmits":4,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":1.001058},{"id":3,"bytes":1407713280,"retransmits":0,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":1.001065}]}"#;
/// After `-t 1 -R` (it received: cJSON 1.7.15 as iperf3 carries it prints the whole number -1 as unsigned).
pub const RESULTS_RECEIVED: &str = r#"{"cpu_util_total":71.7903424186474,"cpu_util_user":2.05649046807774,"cpu_util_system":69.7337568263517,"sender_has_retransmits":18446744073709551615,"congestion_used":"bbr","streams":[{"id":1,"bytes":2776770583,"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":1.00005}]}"#;
/// After `-t 1 --bidir` (stream 1 it sent on, stream 3 it received on).
pub const RESULTS_BIDIR: &str = r#"{"cpu_util_total":47.358200215688321,"cpu_util_user":1.3231685358698839,"cpu_util_system":46.034936157977839,"sender_has_retransmits":1,"congestion_used":"bbr","streams":[{"id":1,"bytes":1888747520,"retransmits":0,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":1.00062},{"id":3,"bytes":832229368,"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":1.000626}]}"#;
