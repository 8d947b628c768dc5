//! iperf3's control connection (`sirocco_net::iperf3::Control`) against a hostile client: the same bytes give
//! the same events and the same answers whether they arrive whole or in fuzzer-chosen pieces; the app's moves
//! (streams connected, results handed over) are made when the events ask for them; nothing panics, and what the
//! server sends stays small (state bytes, one `SERVER_ERROR`, one results JSON).
//!
//! Input: byte 0 = how many chunk sizes follow (0-7), then those sizes (each 1-256, used in turn), then the
//! bytes a client sent; the connection closes after them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sirocco_net::iperf3::{stream_id, Control, CpuUtil, Event, ServerResults, StreamResult, TestParams};

/// Feeds `input` in pieces (`sizes` in turn; all at once if empty), acting on every event as `apps/iperf` does.
fn run(input: &[u8], sizes: &[usize]) -> (Vec<String>, Vec<u8>) {
    let mut control = Control::new();
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut params: Option<TestParams> = None;
    let mut at = 0;
    let mut next_size = sizes.iter().cycle();
    loop {
        while let Some(event) = control.next_event() {
            events.push(format!("{event:?}"));
            match event {
                Event::CreateStreams(p) => {
                    assert!(p.streams() >= 1 && p.streams() <= 256);
                    control.streams_connected();
                    params = Some(p);
                }
                Event::TestEnd => {
                    let p = params.as_ref().expect("TEST_END before the streams");
                    let streams = (0..p.streams())
                        .map(|i| StreamResult { id: stream_id(i), bytes: 1000, seconds: 1.0, ..Default::default() })
                        .collect();
                    control.end_test(&ServerResults::new(p, CpuUtil::default(), streams));
                }
                _ => {}
            }
            output.extend(control.take_output());
        }
        output.extend(control.take_output());
        if at == input.len() {
            control.peer_closed();
            while let Some(event) = control.next_event() {
                events.push(format!("{event:?}"));
            }
            output.extend(control.take_output());
            return (events, output);
        }
        let n = next_size.next().copied().unwrap_or(usize::MAX).min(input.len() - at);
        control.receive(&input[at..at + n]);
        at += n;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n % 8) as usize;
    if rest.len() < n {
        return;
    }
    let (sizes, input) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&s| s as usize + 1).collect();
    let (whole_events, whole_output) = run(input, &[]);
    let (piece_events, piece_output) = run(input, if sizes.is_empty() { &[1] } else { &sizes });
    assert_eq!(whole_events, piece_events);
    assert_eq!(whole_output, piece_output);
    // State bytes, one SERVER_ERROR (9 bytes) and our one results JSON (~230 bytes a stream, 256 streams at most).
    assert!(whole_output.len() <= 16 + 9 + 4 + 256 * 240, "{} bytes sent", whole_output.len());
    // One ending at most, and nothing after it.
    let ends = whole_events.iter().filter(|e| e.starts_with("Failed") || *e == "Done").count();
    assert!(ends <= 1, "{whole_events:?}");
});
