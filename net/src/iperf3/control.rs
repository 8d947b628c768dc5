//! [`Control`]: the server's side of one test's control connection, without I/O.

use alloc::vec::Vec;
use core::fmt;

use super::{ClientResults, Cookie, Error, Message, ServerResults, State, TestParams, COOKIE_LEN, MAX_JSON_LEN};

/// Where a test is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the cookie.
    Cookie,
    /// `PARAM_EXCHANGE` sent; waiting for the parameters.
    Params,
    /// `CREATE_STREAMS` sent; the app collects the streams ([`Control::streams_connected`] when it has them).
    CreateStreams,
    /// `TEST_RUNNING` sent; data flows until the client's `TEST_END`.
    Running,
    /// `TEST_END` received; the app stops the streams and counts ([`Control::end_test`]).
    Ending,
    /// `EXCHANGE_RESULTS` sent; waiting for the client's results.
    Results,
    /// Results exchanged and `DISPLAY_RESULTS` sent; waiting for `IPERF_DONE`.
    Display,
    /// Over, completely.
    Done,
    /// Over, failed or refused ([`Event::Failed`] said why).
    Failed,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Cookie => "the cookie",
            Phase::Params => "the parameter exchange",
            Phase::CreateStreams => "stream creation",
            Phase::Running => "the test",
            Phase::Ending => "the end of the test",
            Phase::Results => "the results exchange",
            Phase::Display => "the results display",
            Phase::Done => "the end",
            Phase::Failed => "a failed test",
        })
    }
}

/// What the app does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The parameters are accepted and `CREATE_STREAMS` is queued: accept [`TestParams::streams`] connections
    /// that start with [`Control::cookie`], then call [`Control::streams_connected`].
    CreateStreams(TestParams),
    /// The client ended the test: stop the streams, count, and call [`Control::end_test`].
    TestEnd,
    /// The client's results arrived (or did not parse: the log says so, the test goes on); ours and
    /// `DISPLAY_RESULTS` are queued.
    ClientResults(Result<ClientResults, Error>),
    /// The client said `IPERF_DONE` (or closed after the results): the test is over.
    Done,
    /// The test is over without results; what the client is told (if anything) is queued.
    Failed(Error),
}

/// The server's side of a control connection, fed what the client sent ([`Control::receive`],
/// [`Control::peer_closed`]); [`Control::next_event`] says what happened, [`Control::take_output`] gives what to
/// send. Input is consumed as the protocol expects it, so it stays bounded by one JSON message
/// ([`MAX_JSON_LEN`]) plus one read.
#[derive(Debug)]
pub struct Control {
    phase: Phase,
    input: Vec<u8>,
    output: Vec<u8>,
    cookie: Option<Cookie>,
    /// The announced length of the JSON message being read, once its 4-byte prefix is in.
    json_len: Option<usize>,
    /// Our results, sent once the client's are in.
    ours: Vec<u8>,
    closed: bool,
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    /// A new control connection: the client's cookie comes first.
    pub fn new() -> Control {
        Control {
            phase: Phase::Cookie,
            input: Vec::new(),
            output: Vec::new(),
            cookie: None,
            json_len: None,
            ours: Vec::new(),
            closed: false,
        }
    }

    /// Where the test is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The test's cookie, once received: every stream must start with it.
    pub fn cookie(&self) -> Option<Cookie> {
        self.cookie
    }

    /// Bytes the client sent. Ignored once the test is over.
    pub fn receive(&mut self, bytes: &[u8]) {
        if !matches!(self.phase, Phase::Done | Phase::Failed) {
            self.input.extend_from_slice(bytes);
        }
    }

    /// The client closed its side of the control connection (a read returned 0, or the connection broke).
    pub fn peer_closed(&mut self) {
        self.closed = true;
    }

    /// What to send the client now (empties the queue).
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.output)
    }

    /// The next thing that happened, from what has been received; `None` until more input (or the app's move:
    /// [`Control::streams_connected`], [`Control::end_test`]).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.phase {
                Phase::Cookie => {
                    if self.input.len() < COOKIE_LEN {
                        return self.gone();
                    }
                    let wire: Vec<u8> = self.input.drain(..COOKIE_LEN).collect();
                    match Cookie::parse(&wire) {
                        Ok(c) => {
                            self.cookie = Some(c);
                            self.send(State::ParamExchange);
                            self.phase = Phase::Params;
                        }
                        Err(e) => return Some(self.fail(e)),
                    }
                }
                Phase::Params => {
                    return match self.take_json(Message::Params) {
                        None => self.gone(),
                        Some(Err(e)) => Some(self.fail(e)),
                        Some(Ok(json)) => match TestParams::parse(&json) {
                            Ok(params) => {
                                self.send(State::CreateStreams);
                                self.phase = Phase::CreateStreams;
                                Some(Event::CreateStreams(params))
                            }
                            Err(e) => Some(self.fail(e)),
                        },
                    }
                }
                Phase::CreateStreams | Phase::Running => {
                    let Some(byte) = self.take_byte() else { return self.gone() };
                    let phase = self.phase;
                    match State::from_byte(byte) {
                        // A 3.x server ignores TEST_START from a client.
                        Some(State::TestStart) => {}
                        Some(State::TestEnd) if phase == Phase::Running => {
                            self.phase = Phase::Ending;
                            return Some(Event::TestEnd);
                        }
                        // IPERF_DONE before the end: the client gave up after an error of its own.
                        Some(State::ClientTerminate | State::IperfDone) => {
                            return Some(self.fail(Error::ClientTerminated { phase }))
                        }
                        _ => return Some(self.fail(Error::UnexpectedState { byte, phase })),
                    }
                }
                Phase::Ending | Phase::Done | Phase::Failed => return None,
                Phase::Results => {
                    return match self.take_json(Message::Results) {
                        None => self.gone(),
                        Some(Err(e)) => Some(self.fail(e)),
                        Some(Ok(json)) => {
                            let theirs = ClientResults::parse(&json);
                            let ours = core::mem::take(&mut self.ours);
                            self.output.extend_from_slice(&(ours.len() as u32).to_be_bytes());
                            self.output.extend_from_slice(&ours);
                            self.send(State::DisplayResults);
                            self.phase = Phase::Display;
                            Some(Event::ClientResults(theirs))
                        }
                    }
                }
                Phase::Display => {
                    let Some(byte) = self.take_byte() else {
                        if self.closed {
                            self.phase = Phase::Done;
                            return Some(Event::Done);
                        }
                        return None;
                    };
                    return match State::from_byte(byte) {
                        Some(State::IperfDone) => {
                            self.phase = Phase::Done;
                            Some(Event::Done)
                        }
                        _ => Some(self.fail(Error::UnexpectedState { byte, phase: Phase::Display })),
                    };
                }
            }
        }
    }

    /// Every stream is connected ([`Event::CreateStreams`]): queues `TEST_START` and `TEST_RUNNING`. Data may
    /// flow from now on. Does nothing in any other phase.
    pub fn streams_connected(&mut self) {
        if self.phase == Phase::CreateStreams {
            self.send(State::TestStart);
            self.send(State::TestRunning);
            self.phase = Phase::Running;
        }
    }

    /// The streams are stopped and counted ([`Event::TestEnd`]): queues `EXCHANGE_RESULTS`; `results` go out
    /// once the client's are in. Does nothing in any other phase.
    pub fn end_test(&mut self, results: &ServerResults) {
        if self.phase == Phase::Ending {
            self.ours = results.to_json();
            self.send(State::ExchangeResults);
            self.phase = Phase::Results;
        }
    }

    /// Ends the test from this side: [`Error::ServerTerminated`] queues `SERVER_TERMINATE` (the client reports
    /// "the server has terminated"), any other error its `SERVER_ERROR` ([`Error::server_error`]). Returns the
    /// error, for the log. Does nothing (but return it) once the test is over.
    pub fn abort(&mut self, error: Error) -> Error {
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            return error;
        }
        if error == Error::ServerTerminated {
            self.send(State::ServerTerminate);
            self.phase = Phase::Failed;
            return error;
        }
        match self.fail(error) {
            Event::Failed(e) => e,
            _ => unreachable!("fail gives Failed"),
        }
    }

    fn send(&mut self, state: State) {
        self.output.push(state.byte());
    }

    fn fail(&mut self, error: Error) -> Event {
        if let Some((code, errno)) = error.server_error() {
            self.send(State::ServerError);
            self.output.extend_from_slice(&code.to_be_bytes());
            self.output.extend_from_slice(&errno.to_be_bytes());
        }
        self.phase = Phase::Failed;
        self.input = Vec::new();
        Event::Failed(error)
    }

    /// Waiting for input: if none will come, the client left mid-test.
    fn gone(&mut self) -> Option<Event> {
        if !self.closed {
            return None;
        }
        let phase = self.phase;
        self.phase = Phase::Failed;
        Some(Event::Failed(Error::ClientGone { phase }))
    }

    fn take_byte(&mut self) -> Option<u8> {
        (!self.input.is_empty()).then(|| self.input.remove(0))
    }

    /// The next JSON message once whole; an error as soon as its length is known to be too much.
    fn take_json(&mut self, what: Message) -> Option<Result<Vec<u8>, Error>> {
        let len = match self.json_len {
            Some(len) => len,
            None => {
                let prefix: [u8; 4] = self.input.get(..4)?.try_into().ok()?;
                let len = u32::from_be_bytes(prefix);
                if len > MAX_JSON_LEN {
                    return Some(Err(Error::JsonTooLong { what, len }));
                }
                self.input.drain(..4);
                self.json_len = Some(len as usize);
                len as usize
            }
        };
        if self.input.len() < len {
            return None;
        }
        self.json_len = None;
        Some(Ok(self.input.drain(..len).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{code, errno, recorded, stream_id, CpuUtil, Direction, StreamResult};
    use super::*;

    const COOKIE: &[u8; 37] = b"q7mwd2lhfbvnbkcbmgwzmd63ebinfgzoxv3x\0";
    /// iperf3 3.12's parameters for `iperf3 -c HOST -t 3 -P 2`.
    const PARAMS: &[u8] = br#"{"tcp":true,"omit":0,"time":3,"num":0,"blockcount":0,"parallel":2,"len":131072,"pacing_timer":1000,"client_version":"3.12"}"#;
    const CLIENT_RESULTS: &[u8] = recorded::RESULTS_SENT_P2.as_bytes();

    fn framed(json: &[u8]) -> Vec<u8> {
        let mut v = (json.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(json);
        v
    }

    fn server_error(code: i32, errno: i32) -> Vec<u8> {
        let mut v = vec![0xfe];
        v.extend_from_slice(&code.to_be_bytes());
        v.extend_from_slice(&errno.to_be_bytes());
        v
    }

    /// Feeds `bytes` in pieces of `chunk`, collecting every event.
    fn feed(c: &mut Control, bytes: &[u8], chunk: usize) -> Vec<Event> {
        let mut events = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            c.receive(piece);
            while let Some(e) = c.next_event() {
                events.push(e);
            }
        }
        events
    }

    fn failed(events: &[Event]) -> &Error {
        match events {
            [.., Event::Failed(e)] => e,
            other => panic!("no failure: {other:?}"),
        }
    }

    fn results(bytes: [u64; 2]) -> ServerResults {
        let params = TestParams::parse(PARAMS).unwrap();
        let streams = (0..2)
            .map(|i| StreamResult { id: stream_id(i), bytes: bytes[i as usize], seconds: 3.0, ..Default::default() })
            .collect();
        ServerResults::new(&params, CpuUtil { total: 1.0, user: 0.0, system: 1.0 }, streams)
    }

    /// A whole test as iperf3 3.12 runs it, its bytes handed over in pieces of every size from 1 to all.
    #[test]
    fn a_whole_test_byte_for_byte() {
        for chunk in [1, 2, 3, 5, 36, 37, 38, 200, 10_000] {
            let mut c = Control::new();
            assert!(feed(&mut c, &COOKIE[..36], chunk).is_empty());
            assert_eq!(c.take_output(), [] as [u8; 0], "nothing before the whole cookie");
            assert!(feed(&mut c, &COOKIE[36..], chunk).is_empty());
            assert_eq!(c.take_output(), [9], "PARAM_EXCHANGE");
            assert_eq!(c.cookie().unwrap().as_str(), "q7mwd2lhfbvnbkcbmgwzmd63ebinfgzoxv3x");

            let events = feed(&mut c, &framed(PARAMS), chunk);
            let [Event::CreateStreams(p)] = &events[..] else { panic!("{events:?}") };
            assert_eq!((p.parallel, p.duration_s, p.direction), (2, 3, Direction::ToServer));
            assert_eq!(c.take_output(), [10], "CREATE_STREAMS");
            assert_eq!(c.phase(), Phase::CreateStreams);

            c.streams_connected();
            assert_eq!(c.take_output(), [1, 2], "TEST_START, TEST_RUNNING");
            assert_eq!(feed(&mut c, &[4], chunk), [Event::TestEnd]);
            assert_eq!(c.phase(), Phase::Ending);
            assert_eq!(c.take_output(), [] as [u8; 0]);

            let ours = results([1000, 2000]);
            c.end_test(&ours);
            assert_eq!(c.take_output(), [13], "EXCHANGE_RESULTS");
            let events = feed(&mut c, &framed(CLIENT_RESULTS), chunk);
            let [Event::ClientResults(Ok(theirs))] = &events[..] else { panic!("{events:?}") };
            assert_eq!(theirs.total_bytes(), 1378877440 + 1407713280);
            let mut expect = framed(&ours.to_json());
            expect.push(14);
            assert_eq!(c.take_output(), expect, "our results, then DISPLAY_RESULTS");

            assert_eq!(feed(&mut c, &[16], chunk), [Event::Done]);
            assert_eq!(c.phase(), Phase::Done);
            assert_eq!(c.take_output(), [] as [u8; 0]);
        }
    }

    #[test]
    fn a_client_that_closes_after_the_results_is_done() {
        let mut c = to_running();
        feed(&mut c, &[4], 1);
        c.end_test(&results([1, 2]));
        feed(&mut c, &framed(CLIENT_RESULTS), 1000);
        c.take_output();
        c.peer_closed();
        assert_eq!(c.next_event(), Some(Event::Done));
    }

    fn to_running() -> Control {
        let mut c = Control::new();
        let mut hello = COOKIE.to_vec();
        hello.extend(framed(PARAMS));
        let events = feed(&mut c, &hello, 1000);
        assert!(matches!(events[..], [Event::CreateStreams(_)]), "{events:?}");
        c.streams_connected();
        assert_eq!(c.take_output(), [9, 10, 1, 2]);
        c
    }

    #[test]
    fn a_bad_cookie_gets_a_server_error() {
        let mut c = Control::new();
        let events = feed(&mut c, b"GET / HTTP/1.1\r\nHost: 10.0.0.7\r\n\r\n\r\n\r\n", 1000);
        assert_eq!(failed(&events), &Error::BadCookie);
        assert_eq!(c.take_output(), server_error(code::RECV_COOKIE, errno::EINVAL));
        assert_eq!(c.phase(), Phase::Failed);
        // Anything after is ignored.
        assert!(feed(&mut c, &[4, 16], 1).is_empty());
        assert_eq!(c.take_output(), [] as [u8; 0]);
    }

    #[test]
    fn an_oversized_json_length_is_refused_before_its_bytes_arrive() {
        for len in [MAX_JSON_LEN + 1, u32::MAX] {
            let mut c = Control::new();
            let mut hello = COOKIE.to_vec();
            hello.extend_from_slice(&len.to_be_bytes());
            let events = feed(&mut c, &hello, 1000);
            assert_eq!(failed(&events), &Error::JsonTooLong { what: Message::Params, len });
            let mut expect = vec![9];
            expect.extend(server_error(code::RECV_PARAMS, errno::EMSGSIZE));
            assert_eq!(c.take_output(), expect);
            assert!(c.input.capacity() < 4096, "nothing allocated for it");
        }
        // The limit itself is waited for.
        let mut c = Control::new();
        let mut hello = COOKIE.to_vec();
        hello.extend_from_slice(&MAX_JSON_LEN.to_be_bytes());
        assert!(feed(&mut c, &hello, 1000).is_empty());
        assert_eq!(c.phase(), Phase::Params);
    }

    #[test]
    fn oversized_results_are_refused_too() {
        let mut c = to_running();
        feed(&mut c, &[4], 1);
        c.end_test(&results([1, 2]));
        c.take_output();
        let events = feed(&mut c, &(MAX_JSON_LEN + 1).to_be_bytes(), 1);
        assert_eq!(failed(&events), &Error::JsonTooLong { what: Message::Results, len: MAX_JSON_LEN + 1 });
        assert_eq!(c.take_output(), server_error(code::RECV_RESULTS, errno::EMSGSIZE));
    }

    #[test]
    fn unusable_parameters_are_refused_with_their_reason() {
        let udp = recorded::UDP.as_bytes();
        let cases: [(&[u8], Vec<u8>); 5] = [
            (udp, server_error(code::UDP_BLOCK_SIZE, 0)),
            (br#"{"sctp":true}"#, server_error(code::UNIMPLEMENTED, 0)),
            (br#"{"tcp":true,"parallel":500}"#, server_error(code::NUM_STREAMS, 0)),
            (br#"{"tcp":true,"reverse":true,"bidirectional":true}"#, server_error(code::REVERSE_BIDIR, 0)),
            (b"{not json", server_error(code::RECV_PARAMS, errno::EINVAL)),
        ];
        for (json, want) in cases {
            let mut c = Control::new();
            let mut hello = COOKIE.to_vec();
            hello.extend(framed(json));
            let events = feed(&mut c, &hello, 1000);
            let e = failed(&events);
            let mut expect = vec![9];
            expect.extend(want);
            assert_eq!(c.take_output(), expect, "{e}");
        }
    }

    #[test]
    fn unknown_or_untimely_state_bytes_get_a_server_error() {
        // 3 (RESULT_REQUEST) is defined but never sent; 0x80 is no state; EXCHANGE_RESULTS is the server's.
        for byte in [3u8, 0x80, 13, 0xfe] {
            let mut c = to_running();
            let events = feed(&mut c, &[byte], 1);
            assert_eq!(failed(&events), &Error::UnexpectedState { byte, phase: Phase::Running });
            assert_eq!(c.take_output(), server_error(code::MESSAGE, 0));
        }
        // TEST_END while the streams are still being created is untimely too.
        let mut c = Control::new();
        let mut hello = COOKIE.to_vec();
        hello.extend(framed(PARAMS));
        hello.push(4);
        let events = feed(&mut c, &hello, 1000);
        assert_eq!(failed(&events), &Error::UnexpectedState { byte: 4, phase: Phase::CreateStreams });
        // And anything but IPERF_DONE after the results.
        let mut c = to_running();
        feed(&mut c, &[4], 1);
        c.end_test(&results([1, 2]));
        let mut rest = framed(CLIENT_RESULTS);
        rest.push(2);
        let events = feed(&mut c, &rest, 1000);
        assert_eq!(failed(&events), &Error::UnexpectedState { byte: 2, phase: Phase::Display });
    }

    #[test]
    fn test_start_from_the_client_is_ignored() {
        let mut c = to_running();
        assert!(feed(&mut c, &[1], 1).is_empty());
        assert_eq!(feed(&mut c, &[4], 1), [Event::TestEnd]);
    }

    #[test]
    fn client_terminate_ends_the_test_quietly() {
        for byte in [12u8, 16] {
            let mut c = to_running();
            let events = feed(&mut c, &[byte], 1);
            assert_eq!(failed(&events), &Error::ClientTerminated { phase: Phase::Running });
            assert_eq!(c.take_output(), [] as [u8; 0], "nothing to send a client that left");
        }
        let mut c = Control::new();
        let mut hello = COOKIE.to_vec();
        hello.extend(framed(PARAMS));
        hello.push(12);
        let events = feed(&mut c, &hello, 1000);
        assert_eq!(failed(&events), &Error::ClientTerminated { phase: Phase::CreateStreams });
    }

    #[test]
    fn a_client_that_vanishes_is_noticed_in_every_phase() {
        let cases: [(&[u8], Phase); 4] = [
            (&COOKIE[..10], Phase::Cookie),
            (&COOKIE[..], Phase::Params),
            (&[], Phase::Running),
            (&[4], Phase::Ending),
        ];
        for (sent, phase) in cases {
            let mut c = if phase == Phase::Running || phase == Phase::Ending { to_running() } else { Control::new() };
            feed(&mut c, sent, 1000);
            c.take_output();
            c.peer_closed();
            if phase == Phase::Ending {
                // The app has its results to hand over first; the client's absence shows after.
                assert_eq!(c.next_event(), None);
                c.end_test(&results([1, 2]));
                assert_eq!(c.next_event(), Some(Event::Failed(Error::ClientGone { phase: Phase::Results })));
            } else {
                assert_eq!(c.next_event(), Some(Event::Failed(Error::ClientGone { phase })));
            }
            assert_eq!(c.phase(), Phase::Failed);
            assert_eq!(c.next_event(), None, "said once");
        }
        // Half a JSON message, then gone.
        let mut c = Control::new();
        let mut hello = COOKIE.to_vec();
        hello.extend(&framed(PARAMS)[..20]);
        feed(&mut c, &hello, 1000);
        c.peer_closed();
        assert_eq!(c.next_event(), Some(Event::Failed(Error::ClientGone { phase: Phase::Params })));
    }

    #[test]
    fn unparsable_client_results_still_get_ours() {
        let mut c = to_running();
        feed(&mut c, &[4], 1);
        let ours = results([5, 6]);
        c.end_test(&ours);
        c.take_output();
        let events = feed(&mut c, &framed(b"{\"streams\":7}"), 1000);
        assert!(matches!(&events[..], [Event::ClientResults(Err(Error::BadJson { what: Message::Results, .. }))]));
        let mut expect = framed(&ours.to_json());
        expect.push(14);
        assert_eq!(c.take_output(), expect);
        assert_eq!(feed(&mut c, &[16], 1), [Event::Done]);
    }

    #[test]
    fn the_server_can_end_a_test() {
        let mut c = to_running();
        assert_eq!(c.abort(Error::ServerTerminated), Error::ServerTerminated);
        assert_eq!(c.take_output(), [11], "SERVER_TERMINATE");
        assert_eq!(c.phase(), Phase::Failed);
        assert!(feed(&mut c, &[4], 1).is_empty());

        let mut c = Control::new();
        let mut hello = COOKIE.to_vec();
        hello.extend(framed(PARAMS));
        feed(&mut c, &hello, 1000);
        c.take_output();
        let e = c.abort(Error::StreamsMissing { connected: 1, wanted: 2 });
        assert_eq!(e.to_string(), "only 1 of 2 streams connected in time");
        assert_eq!(c.take_output(), server_error(code::STREAM_ACCEPT, errno::ETIMEDOUT));
        // Once over, nothing more is sent.
        c.abort(Error::ServerTerminated);
        assert_eq!(c.take_output(), [] as [u8; 0]);
    }

    #[test]
    fn app_calls_out_of_turn_do_nothing() {
        let mut c = Control::new();
        c.streams_connected();
        c.end_test(&results([1, 2]));
        assert_eq!((c.phase(), c.take_output()), (Phase::Cookie, Vec::new()));
    }
}
