//! The client against the fake xenstored (`fake`), and the ABI values pinned against `xen/io/xs_wire.h`.

use super::fake::{self, FakeClient, Shared, HOME, TICK_NS};
use super::*;

fn setup() -> (FakeClient, Shared) {
    fake::client()
}

// ----- ABI -----

#[test]
fn page_layout_matches_xs_wire_h() {
    // struct xenstore_domain_interface, xen/io/xs_wire.h.
    assert_eq!(RING_SIZE, 1024); // XENSTORE_RING_SIZE
    assert_eq!(PAYLOAD_MAX, 4096); // XENSTORE_PAYLOAD_MAX
    assert_eq!((ABS_PATH_MAX, REL_PATH_MAX), (3072, 2048));
    assert_eq!((offsets::REQ, offsets::RSP), (0, 1024));
    assert_eq!((offsets::REQ_CONS, offsets::REQ_PROD, offsets::RSP_CONS, offsets::RSP_PROD), (2048, 2052, 2056, 2060));
    assert_eq!((offsets::SERVER_FEATURES, offsets::CONNECTION, offsets::ERROR), (2064, 2068, 2072));
    assert_eq!(core::mem::size_of::<XenstoreDomainInterface>(), 2076);
    assert_eq!((mask_idx(1023), mask_idx(1024), mask_idx(u32::MAX)), (1023, 0, 1023));
}

#[test]
fn message_types_match_xs_wire_h() {
    let expected: &[(MsgType, u32)] = &[
        (MsgType::Control, 0),
        (MsgType::Directory, 1),
        (MsgType::Read, 2),
        (MsgType::GetPerms, 3),
        (MsgType::Watch, 4),
        (MsgType::Unwatch, 5),
        (MsgType::TransactionStart, 6),
        (MsgType::TransactionEnd, 7),
        (MsgType::Introduce, 8),
        (MsgType::Release, 9),
        (MsgType::GetDomainPath, 10),
        (MsgType::Write, 11),
        (MsgType::Mkdir, 12),
        (MsgType::Rm, 13),
        (MsgType::SetPerms, 14),
        (MsgType::WatchEvent, 15),
        (MsgType::Error, 16),
        (MsgType::IsDomainIntroduced, 17),
        (MsgType::Resume, 18),
        (MsgType::SetTarget, 19),
        (MsgType::ResetWatches, 21),
        (MsgType::DirectoryPart, 22),
    ];
    assert_eq!(MsgType::ALL.len(), expected.len());
    for &(t, v) in expected {
        assert_eq!(t as u32, v, "{t}");
        assert_eq!(MsgType::from_u32(v), Some(t));
    }
    assert_eq!(MsgType::from_u32(20), None, "XS_RESTRICT was removed");
    assert_eq!(MsgType::from_u32(XS_INVALID), None);
    assert_eq!(XS_INVALID, 0xffff);
    assert_eq!(MsgType::TransactionEnd.to_string(), "XS_TRANSACTION_END");
}

#[test]
fn header_is_four_little_endian_words() {
    let h = XsdSockmsg { msg_type: 11, req_id: 0x0102_0304, tx_id: 7, len: 4096 };
    let bytes = [11, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 0, 16, 0, 0];
    assert_eq!(HEADER_SIZE, 16);
    assert_eq!(h.emit(), bytes);
    assert_eq!(XsdSockmsg::parse(&bytes), h);
}

#[test]
fn errno_names_map_both_ways() {
    let names = [
        "EINVAL",
        "EACCES",
        "EEXIST",
        "EISDIR",
        "ENOENT",
        "ENOMEM",
        "ENOSPC",
        "EIO",
        "ENOTEMPTY",
        "ENOSYS",
        "EROFS",
        "EBUSY",
        "EAGAIN",
        "EISCONN",
        "E2BIG",
        "EPERM",
        "EQUOTA",
    ];
    assert_eq!(Errno::KNOWN.len(), names.len());
    for (e, name) in Errno::KNOWN.iter().zip(names) {
        assert_eq!(e.name(), name);
        assert_eq!(Errno::parse(format!("{name}\0").as_bytes()), *e);
    }
    assert_eq!(Errno::parse(b"ENOENT"), Errno::ENOENT, "missing NUL tolerated");
    let other = Errno::parse(b"EWEIRD\0");
    assert_eq!(other.name(), "EWEIRD");
    assert!(matches!(other, Errno::Other(_)));
    assert_eq!(Errno::parse(b"E\x01\xffX\0").name(), "E??X");
}

#[test]
fn inline_str_keeps_the_informative_end() {
    let p = ErrorPath::tail("/local/domain/0/backend/vbd/7/51712/some/very/long/path/that/goes/on/and/on/state");
    assert!(p.is_truncated());
    assert_eq!(p.as_str().len(), ERROR_PATH_MAX);
    assert!(p.to_string().starts_with("..."));
    assert!(p.to_string().ends_with("/on/and/on/state"));
    assert_eq!(ErrorPath::tail("device/vif/0"), "device/vif/0");
    assert_eq!(InlineStr::<4>::head("abcdef").to_string(), "abcd...");
    assert_eq!(InlineStr::<4>::tail("ab\u{e9}cd").as_str(), "\u{e9}cd", "cut on a char boundary");
}

#[test]
fn errors_stay_small() {
    // Result<_, XsError> is returned everywhere; keep it well under clippy's 128-byte large-error threshold.
    assert!(core::mem::size_of::<XsError>() <= 112, "{}", core::mem::size_of::<XsError>());
}

// ----- operations -----

#[test]
fn write_then_read_round_trips_and_write_has_no_trailing_nul() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "data/greeting", b"hello").unwrap();
    assert_eq!(xs.read(Tx::NONE, "data/greeting").unwrap(), b"hello");
    assert_eq!(xs.read_string(Tx::NONE, "data/greeting").unwrap(), "hello");
    assert_eq!(fake.borrow().get(&format!("{HOME}/data/greeting")).unwrap(), b"hello");
    let writes = fake.borrow().received(MsgType::Write);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].payload, b"data/greeting\0hello");
    assert_eq!(writes[0].tx_id, 0);
    let reads = fake.borrow().received(MsgType::Read);
    assert_eq!(reads[0].payload, b"data/greeting\0");
    assert_ne!(reads[0].req_id, writes[0].req_id, "each request gets its own id");
}

#[test]
fn empty_value_and_binary_value() {
    let (mut xs, _fake) = setup();
    xs.write(Tx::NONE, "a", b"").unwrap();
    assert_eq!(xs.read(Tx::NONE, "a").unwrap(), b"");
    xs.write(Tx::NONE, "b", &[0xff, 0, 1]).unwrap();
    assert_eq!(xs.read(Tx::NONE, "b").unwrap(), [0xff, 0, 1]);
    assert_eq!(xs.read_string(Tx::NONE, "b"), Err(XsError::NotUtf8 { op: MsgType::Read, path: ErrorPath::tail("b") }));
}

#[test]
fn missing_node_is_enoent_naming_op_and_path() {
    let (mut xs, _fake) = setup();
    let e = xs.read(Tx::NONE, "device/vif/9/backend").unwrap_err();
    assert_eq!(
        e,
        XsError::Daemon { op: MsgType::Read, path: ErrorPath::tail("device/vif/9/backend"), errno: Errno::ENOENT }
    );
    assert!(e.is_enoent());
    assert_eq!(e.to_string(), "xenstore XS_READ device/vif/9/backend: xenstored answered ENOENT (no such node)");
    assert_eq!(xs.read_optional(Tx::NONE, "device/vif/9/backend").unwrap(), None);
}

#[test]
fn permission_denied_is_eacces() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().eacces.insert("/local/domain/0/secret".into());
    let e = xs.write(Tx::NONE, "/local/domain/0/secret", b"x").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EACCES));
    assert!(e.to_string().contains("XS_WRITE /local/domain/0/secret: xenstored answered EACCES"), "{e}");
    assert_eq!(xs.read_optional(Tx::NONE, "/local/domain/0/secret").unwrap_err().errno(), Some(Errno::EACCES));
}

#[test]
fn mkdir_directory_rm() {
    let (mut xs, fake) = setup();
    xs.mkdir(Tx::NONE, "device/vif").unwrap();
    assert_eq!(xs.directory(Tx::NONE, "device/vif").unwrap(), Vec::<String>::new());
    xs.write(Tx::NONE, "device/vif/0/backend", b"x").unwrap();
    xs.write(Tx::NONE, "device/vif/1/backend", b"y").unwrap();
    xs.write(Tx::NONE, "device/vif/1/mac", b"z").unwrap();
    assert_eq!(xs.directory(Tx::NONE, "device/vif").unwrap(), ["0", "1"]);
    assert_eq!(xs.directory(Tx::NONE, "device/vif/1").unwrap(), ["backend", "mac"]);
    xs.rm(Tx::NONE, "device/vif/1").unwrap();
    assert_eq!(xs.directory(Tx::NONE, "device/vif").unwrap(), ["0"]);
    assert!(!fake.borrow().exists("device/vif/1/mac"));
    assert_eq!(xs.directory(Tx::NONE, "device/vbd").unwrap_err().errno(), Some(Errno::ENOENT));
    assert_eq!(xs.rm(Tx::NONE, "nothing/here").unwrap_err().errno(), Some(Errno::ENOENT));
}

#[test]
fn bad_arguments_are_refused_before_sending() {
    let (mut xs, fake) = setup();
    let e = xs.write(Tx::NONE, "a\0b", b"v").unwrap_err();
    assert!(matches!(e, XsError::BadArgument { op: MsgType::Write, what: "the path contains a NUL byte", .. }));
    assert!(matches!(xs.read(Tx::NONE, ""), Err(XsError::BadArgument { .. })));
    assert!(matches!(xs.watch("a", "t\0"), Err(XsError::BadArgument { op: MsgType::Watch, .. })));
    assert!(fake.borrow().log.is_empty());
}

// ----- sizes, pieces and wrap-around -----

/// A value that makes the WRITE payload exactly `PAYLOAD_MAX` bytes.
fn max_value(path: &str) -> Vec<u8> {
    (0..PAYLOAD_MAX - path.len() - 1).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn payload_of_exactly_4096_bytes_goes_both_ways() {
    let (mut xs, fake) = setup();
    let value = max_value("big");
    xs.write(Tx::NONE, "big", &value).unwrap();
    assert_eq!(fake.borrow().received(MsgType::Write)[0].payload.len(), PAYLOAD_MAX);
    // Make the stored value exactly 4096 bytes so the reply payload is the maximum too.
    let full: Vec<u8> = (0..PAYLOAD_MAX).map(|i| (i % 251) as u8).collect();
    fake.borrow_mut().set("big", &full);
    assert_eq!(xs.read(Tx::NONE, "big").unwrap(), full);
}

#[test]
fn payload_over_4096_is_refused_before_sending() {
    let (mut xs, fake) = setup();
    let mut value = max_value("big");
    value.push(b'!');
    let e = xs.write(Tx::NONE, "big", &value).unwrap_err();
    assert_eq!(e, XsError::TooLong { op: MsgType::Write, path: ErrorPath::tail("big"), len: 4097 });
    assert!(fake.borrow().log.is_empty());
    assert_eq!(fake.borrow().req_prod(), 0);
}

#[test]
fn request_wraps_around_u32_indices() {
    let (mut xs, fake) = fake::client_at(u32::MAX - 5, u32::MAX - 2);
    xs.write(Tx::NONE, "wrap", b"around").unwrap();
    assert_eq!(xs.read(Tx::NONE, "wrap").unwrap(), b"around");
    let f = fake.borrow();
    assert_eq!(f.received(MsgType::Write)[0].payload, b"wrap\0around");
    // 16 + 11 bytes of WRITE, 16 + 5 of READ.
    assert_eq!(f.req_prod(), (u32::MAX - 5).wrapping_add(27 + 21));
    // Replies: WRITE "OK\0" (19 bytes), READ "around" (22 bytes).
    assert_eq!(f.rsp_cons(), (u32::MAX - 2).wrapping_add(19 + 22));
}

#[test]
fn messages_wrap_at_a_multiple_of_the_ring_size() {
    let (mut xs, fake) = fake::client_at(1020, 2040);
    let value = max_value("big");
    xs.write(Tx::NONE, "big", &value).unwrap();
    assert_eq!(xs.read(Tx::NONE, "big").unwrap(), value);
    assert_eq!(fake.borrow().received(MsgType::Write)[0].payload[4..], value[..]);
}

#[test]
fn large_request_is_written_in_pieces_as_the_daemon_consumes() {
    let (mut xs, fake) = fake::client_at(u32::MAX - 100, 0);
    fake.borrow_mut().req_chunk = Some(7);
    let value = max_value("big");
    xs.write(Tx::NONE, "big", &value).unwrap();
    let f = fake.borrow();
    assert_eq!(f.received(MsgType::Write)[0].payload, [&b"big\0"[..], &value].concat());
    assert!(f.waits >= ((HEADER_SIZE + PAYLOAD_MAX) / 7) as u64, "waits {}", f.waits);
    assert!(f.notifies >= 5, "each piece is announced: {}", f.notifies);
}

#[test]
fn reply_arriving_a_few_bytes_at_a_time_is_reassembled() {
    let (mut xs, fake) = fake::client_at(0, u32::MAX - 1000);
    let full: Vec<u8> = (0..PAYLOAD_MAX).map(|i| (i * 7 % 256) as u8).collect();
    fake.borrow_mut().set("big", &full);
    fake.borrow_mut().rsp_chunk = Some(3);
    let waits_before = fake.borrow().waits;
    assert_eq!(xs.read(Tx::NONE, "big").unwrap(), full);
    assert!(fake.borrow().waits - waits_before >= ((HEADER_SIZE + PAYLOAD_MAX) / 3) as u64);
    // And a header split across waits.
    fake.borrow_mut().rsp_chunk = Some(5);
    xs.write(Tx::NONE, "small", b"1").unwrap();
    assert_eq!(xs.read(Tx::NONE, "small").unwrap(), b"1");
}

#[test]
fn delayed_reply_is_waited_for() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "slow", b"1").unwrap();
    fake.borrow_mut().delay_next_reply = 5;
    let waits_before = fake.borrow().waits;
    assert_eq!(xs.read(Tx::NONE, "slow").unwrap(), b"1");
    assert!(fake.borrow().waits - waits_before >= 6, "{}", fake.borrow().waits - waits_before);
}

// ----- timeouts and a hostile daemon -----

#[test]
fn silent_daemon_times_out_naming_op_and_path() {
    let (mut xs, fake) = setup();
    xs.set_timeout_ns(2_000_000_000);
    fake.borrow_mut().silent = true;
    let start = fake.borrow().now;
    let e = xs.read(Tx::NONE, "control/shutdown").unwrap_err();
    assert_eq!(
        e,
        XsError::Timeout { op: MsgType::Read, path: ErrorPath::tail("control/shutdown"), waited_ns: 2_000_000_000 }
    );
    assert_eq!(fake.borrow().now, start + 2_000_000_000);
    assert_eq!(e.to_string(), "xenstore XS_READ control/shutdown: no reply from xenstored after 2000 ms");
}

#[test]
fn late_reply_after_a_timeout_is_recognised_and_dropped() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "k", b"v").unwrap();
    xs.set_timeout_ns(3 * TICK_NS);
    fake.borrow_mut().delay_next_reply = 10;
    assert!(matches!(xs.read(Tx::NONE, "k"), Err(XsError::Timeout { op: MsgType::Read, .. })));
    xs.set_timeout_ns(DEFAULT_TIMEOUT_NS);
    // The next call first receives the old reply (dropped by id), then its own.
    xs.write(Tx::NONE, "k", b"w").unwrap();
    assert_eq!(xs.late_replies_dropped(), 1);
    assert_eq!(xs.read(Tx::NONE, "k").unwrap(), b"w");
}

#[test]
fn reply_with_unknown_id_is_reported_not_trusted() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "k", b"v").unwrap();
    fake.borrow_mut().bogus_id_next_reply = true;
    let e = xs.read(Tx::NONE, "k").unwrap_err();
    let sent = fake.borrow().received(MsgType::Read)[0].req_id;
    assert_eq!(
        e,
        XsError::Protocol {
            op: Some(MsgType::Read),
            path: ErrorPath::tail("k"),
            violation: Violation::UnknownReplyId { expected: Some(sent), got: sent + 1000, msg_type: 2 },
        }
    );
    assert!(e
        .to_string()
        .contains(&format!("carries req_id {}, but the request in flight is req_id {sent}", sent + 1000)));
    // The ring is still usable.
    assert_eq!(xs.read(Tx::NONE, "k").unwrap(), b"v");
}

#[test]
fn reply_of_the_wrong_type_is_reported() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "k", b"v").unwrap();
    fake.borrow_mut().wrong_type_next_reply = true;
    let e = xs.read(Tx::NONE, "k").unwrap_err();
    let XsError::Protocol { violation: Violation::WrongReplyType { expected, got, .. }, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!((expected, got), (MsgType::Read, MsgType::Mkdir as u32));
    assert!(e.to_string().contains("has type XS_MKDIR, expected XS_READ or XS_ERROR"), "{e}");
    assert_eq!(xs.read(Tx::NONE, "k").unwrap(), b"v");
}

#[test]
fn rsp_prod_running_too_far_ahead_breaks_the_ring() {
    let (mut xs, fake) = fake::client_at(0, u32::MAX - 10);
    xs.write(Tx::NONE, "k", b"v").unwrap();
    fake.borrow_mut().jump_rsp_prod = Some(1025);
    let e = xs.read(Tx::NONE, "k").unwrap_err();
    let cons = fake.borrow().rsp_cons();
    let violation = Violation::RspOverrun { rsp_prod: cons.wrapping_add(1025), rsp_cons: cons };
    assert_eq!(e, XsError::Protocol { op: Some(MsgType::Read), path: ErrorPath::tail("k"), violation });
    assert!(e.to_string().contains("is 1025 bytes ahead of rsp_cons"), "{e}");
    // Nothing more is sent.
    let sent = fake.borrow().log.len();
    assert_eq!(
        xs.read(Tx::NONE, "k").unwrap_err(),
        XsError::RingBroken { op: Some(MsgType::Read), path: ErrorPath::tail("k"), violation }
    );
    assert_eq!(xs.poll().unwrap_err(), XsError::RingBroken { op: None, path: ErrorPath::empty(), violation });
    assert_eq!(fake.borrow().log.len(), sent);
    assert_eq!(xs.broken(), Some(violation));
}

#[test]
fn rsp_prod_exactly_one_ring_ahead_is_legal() {
    let (mut xs, fake) = setup();
    // A full ring of watch events (1024 bytes) is fine.
    xs.watch("w", "tok").unwrap();
    xs.poll().unwrap();
    assert_eq!(xs.next_watch_event().unwrap().path, "w");
    let event = b"w\0tok\0";
    let per = HEADER_SIZE + event.len();
    fake.borrow_mut().events_before_next_reply = vec![event.to_vec(); 1024 / per + 1];
    fake.borrow_mut().rsp_chunk = Some(1024);
    xs.read_optional(Tx::NONE, "x").unwrap();
    // All of them were taken in; being the same event they coalesce into one.
    assert_eq!(xs.pending_watch_events(), 1);
    assert_eq!(xs.watch_events_coalesced(), (1024 / per) as u64);
}

#[test]
fn oversized_header_breaks_the_ring() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "k", b"v").unwrap();
    fake.borrow_mut().oversize_next_reply = true;
    let e = xs.read(Tx::NONE, "k").unwrap_err();
    let sent = fake.borrow().received(MsgType::Read)[0].req_id;
    let violation = Violation::Oversized { msg_type: 2, req_id: sent, len: 5000 };
    assert_eq!(e, XsError::Protocol { op: Some(MsgType::Read), path: ErrorPath::tail("k"), violation });
    assert!(e.to_string().contains("announces a 5000-byte payload (XENSTORE_PAYLOAD_MAX is 4096)"), "{e}");
    assert!(matches!(xs.write(Tx::NONE, "k", b"x"), Err(XsError::RingBroken { .. })));
}

#[test]
fn req_cons_running_past_req_prod_breaks_the_ring() {
    let (mut xs, fake) = setup();
    xs.set_timeout_ns(TICK_NS);
    fake.borrow_mut().silent = true;
    // Fill the request ring so the client has to wait for room, then the daemon claims too much.
    let value = max_value("big");
    fake.borrow_mut().jump_req_cons = Some(2000);
    let e = xs.write(Tx::NONE, "big", &value).unwrap_err();
    let XsError::Protocol { violation: Violation::ReqOverrun { req_prod, req_cons }, .. } = e else { panic!("{e:?}") };
    assert_eq!(req_cons.wrapping_sub(req_prod), 2000);
    assert_eq!(req_prod, 1024);
    assert!(matches!(xs.read(Tx::NONE, "k"), Err(XsError::RingBroken { .. })));
}

#[test]
fn giving_up_half_way_through_a_request_breaks_the_ring() {
    let (mut xs, fake) = setup();
    xs.set_timeout_ns(TICK_NS);
    fake.borrow_mut().req_chunk = Some(0);
    fake.borrow_mut().schedule(1_000_000, "unrelated", Some(b"keeps the daemon busy"));
    let e = xs.write(Tx::NONE, "big", &max_value("big")).unwrap_err();
    let violation = Violation::PartialRequest { written: 1024, total: 4112 };
    assert_eq!(e, XsError::Protocol { op: Some(MsgType::Write), path: ErrorPath::tail("big"), violation });
    assert_eq!(xs.broken(), Some(violation));
}

// ----- watches -----

#[test]
fn new_watch_fires_once_then_on_changes_below_it() {
    let (mut xs, fake) = setup();
    xs.watch("device", "dev").unwrap();
    assert_eq!(xs.poll().unwrap(), 1);
    assert_eq!(xs.next_watch_event(), Some(WatchEvent { path: "device".into(), token: "dev".into() }));
    assert_eq!(xs.next_watch_event(), None);
    fake.borrow_mut().set("device/vif/0/state", b"4");
    fake.borrow_mut().set("other", b"1");
    assert_eq!(xs.poll().unwrap(), 1);
    assert_eq!(xs.next_watch_event().unwrap().path, "device/vif/0/state");
    assert_eq!(xs.next_watch_event(), None);
    let watches = &fake.borrow().received(MsgType::Watch);
    assert_eq!(watches[0].payload, b"device\0dev\0");
}

#[test]
fn poll_does_not_block() {
    let (mut xs, fake) = setup();
    xs.watch("a", "t").unwrap();
    let waits = fake.borrow().waits;
    assert_eq!(xs.pending_watch_events(), 0, "a call stops reading at its reply");
    assert_eq!(xs.poll().unwrap(), 1, "the initial event");
    assert_eq!(xs.pending_watch_events(), 1);
    assert_eq!(xs.poll().unwrap(), 0);
    assert_eq!(fake.borrow().waits, waits);
}

#[test]
fn events_arriving_around_replies_keep_their_order() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    xs.watch("/b", "tb").unwrap();
    // Queue: [/a (initial), /b (initial)].
    fake.borrow_mut().events_before_next_reply = vec![b"/a/1\0ta\0".to_vec(), b"/b/2\0tb\0".to_vec()];
    xs.write(Tx::NONE, "/a/3", b"x").unwrap(); // /a/3 fires before the reply too.
    fake.borrow_mut().set("/b/4", b"y");
    assert_eq!(xs.poll().unwrap(), 1);
    let order: Vec<_> = core::iter::from_fn(|| xs.next_watch_event()).map(|e| e.path).collect();
    assert_eq!(order, ["/a", "/b", "/a/1", "/b/2", "/a/3", "/b/4"]);
}

#[test]
fn waiting_for_one_token_keeps_other_events_queued_in_order() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    xs.watch("/b", "tb").unwrap();
    fake.borrow_mut().schedule(3, "/b/late", Some(b"1"));
    let deadline = fake.borrow().now + 1_000_000_000;
    assert_eq!(xs.wait_watch_event_for("tb", deadline).unwrap().unwrap().path, "/b");
    assert_eq!(xs.wait_watch_event_for("tb", deadline).unwrap().unwrap().path, "/b/late");
    assert_eq!(xs.take_watch_event("tb"), None);
    assert_eq!(xs.next_watch_event().unwrap().path, "/a");
}

#[test]
fn wait_watch_event_blocks_until_one_arrives_or_the_deadline() {
    let (mut xs, fake) = setup();
    xs.watch("control/shutdown", "ctl").unwrap();
    let deadline = fake.borrow().now + 1_000_000_000;
    assert_eq!(xs.wait_watch_event(deadline).unwrap().unwrap().path, "control/shutdown", "initial firing");
    fake.borrow_mut().schedule(4, "control/shutdown", Some(b"poweroff"));
    let e = xs.wait_watch_event(deadline).unwrap().unwrap();
    assert_eq!(e, WatchEvent { path: "control/shutdown".into(), token: "ctl".into() });
    assert!(fake.borrow().now < deadline);
    assert_eq!(xs.wait_watch_event(deadline).unwrap(), None);
    assert_eq!(fake.borrow().now, deadline);
}

#[test]
fn unwatch_stops_events_and_drops_queued_ones() {
    let (mut xs, fake) = setup();
    xs.watch("x", "tx").unwrap();
    xs.watch("y", "ty").unwrap();
    fake.borrow_mut().set("x/1", b"1");
    xs.unwatch("x", "tx").unwrap();
    assert_eq!(fake.borrow().watches(), [("y".to_string(), "ty".to_string())]);
    fake.borrow_mut().set("x/2", b"2");
    // An event for the old token still in flight is dropped too.
    fake.borrow_mut().events_before_next_reply = vec![b"x/3\0tx\0".to_vec()];
    xs.read_optional(Tx::NONE, "x").unwrap();
    assert_eq!(xs.stray_events_dropped(), 1);
    let tokens: Vec<_> = core::iter::from_fn(|| xs.next_watch_event()).map(|e| e.token).collect();
    assert_eq!(tokens, ["ty"]);
    assert_eq!(xs.unwatch("x", "tx").unwrap_err().errno(), Some(Errno::ENOENT));
}

#[test]
fn reset_watches_clears_everything() {
    let (mut xs, fake) = setup();
    xs.watch("x", "tx").unwrap();
    xs.reset_watches().unwrap();
    assert!(fake.borrow().watches().is_empty());
    assert_eq!(xs.pending_watch_events(), 0);
    assert_eq!(fake.borrow().received(MsgType::ResetWatches)[0].payload, b"\0");
}

#[test]
fn malformed_watch_event_is_reported_and_dropped() {
    let (mut xs, fake) = setup();
    xs.watch("x", "tx").unwrap();
    fake.borrow_mut().events_before_next_reply = vec![b"no-nul-at-all".to_vec()];
    let e = xs.read_optional(Tx::NONE, "x").unwrap_err();
    assert!(matches!(e, XsError::Protocol { violation: Violation::MalformedWatchEvent { len: 13 }, .. }), "{e:?}");
    // The reply to that read is recognised as abandoned and dropped; the ring still works.
    assert_eq!(xs.read_optional(Tx::NONE, "x").unwrap(), None);
    assert_eq!(xs.late_replies_dropped(), 1);
    assert_eq!(xs.next_watch_event().unwrap().path, "x", "the good event before it was kept");
}

#[test]
fn reply_nobody_waits_for_is_reported_by_poll() {
    let (mut xs, fake) = setup();
    xs.set_timeout_ns(3 * TICK_NS);
    fake.borrow_mut().delay_next_reply = 10;
    fake.borrow_mut().bogus_id_next_reply = true;
    assert!(matches!(xs.read(Tx::NONE, "x"), Err(XsError::Timeout { .. })));
    let sent = fake.borrow().received(MsgType::Read)[0].req_id;
    let deadline = fake.borrow().now + 1_000_000_000;
    let e = xs.wait_watch_event(deadline).unwrap_err();
    let violation = Violation::UnknownReplyId { expected: None, got: sent + 1000, msg_type: MsgType::Error as u32 };
    assert_eq!(e, XsError::Protocol { op: None, path: ErrorPath::empty(), violation });
    let text = e.to_string();
    assert!(
        text.starts_with("xenstore (polling for watch events): xenstored broke the protocol: reply type XS_ERROR"),
        "{text}"
    );
    assert!(text.ends_with("but no request is in flight"), "{text}");
}

// ----- transactions -----

#[test]
fn transaction_commits_writes_atomically() {
    let (mut xs, fake) = setup();
    let got = xs
        .transaction(|xs, tx| {
            xs.write(tx, "device/vif/0/tx-ring-ref", b"8")?;
            xs.write(tx, "device/vif/0/state", b"4")?;
            xs.read_string(tx, "device/vif/0/tx-ring-ref")
        })
        .unwrap();
    assert_eq!(got, "8");
    assert_eq!(fake.borrow().get("device/vif/0/state").unwrap(), b"4");
    let f = fake.borrow();
    let writes = f.received(MsgType::Write);
    assert!(writes.iter().all(|w| w.tx_id != 0));
    assert_eq!(f.received(MsgType::TransactionStart)[0].payload, b"\0");
    assert_eq!(f.received(MsgType::TransactionEnd)[0].payload, b"T\0");
    assert_eq!(f.open_transactions(), 0);
}

#[test]
fn uncommitted_writes_are_invisible_and_abort_discards_them() {
    let (mut xs, fake) = setup();
    let tx = xs.transaction_start().unwrap();
    assert_ne!(tx, Tx::NONE);
    xs.write(tx, "pending", b"1").unwrap();
    assert!(!fake.borrow().exists("pending"));
    assert_eq!(xs.read(tx, "pending").unwrap(), b"1");
    xs.transaction_end(tx, false).unwrap();
    assert!(!fake.borrow().exists("pending"));
    assert_eq!(fake.borrow().received(MsgType::TransactionEnd)[0].payload, b"F\0");
    assert_eq!(xs.transaction_end(tx, true).unwrap_err().errno(), Some(Errno::ENOENT));
}

#[test]
fn eagain_at_commit_reruns_the_whole_transaction() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().eagain_commits = 2;
    let mut runs = 0;
    let mut txs = vec![];
    let value = xs
        .transaction(|xs, tx| {
            runs += 1;
            txs.push(tx);
            xs.write(tx, "counter", format!("{runs}").as_bytes())?;
            Ok(runs * 10)
        })
        .unwrap();
    assert_eq!((runs, value), (3, 30));
    assert_eq!(fake.borrow().get("counter").unwrap(), b"3");
    assert_eq!(fake.borrow().commits, 3);
    assert_eq!(txs.len(), 3);
    assert!(txs[0] != txs[1] && txs[1] != txs[2], "a fresh transaction each run: {txs:?}");
}

#[test]
fn conflicting_change_by_another_domain_makes_commit_eagain() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().set("shared", b"0");
    let mut runs = 0;
    xs.transaction(|xs, tx| {
        runs += 1;
        let seen = xs.read(tx, "shared")?;
        if runs == 1 {
            fake.borrow_mut().set("shared", b"changed-by-dom0");
        }
        xs.write(tx, "mine", &seen)
    })
    .unwrap();
    assert_eq!(runs, 2);
    assert_eq!(fake.borrow().get("mine").unwrap(), b"changed-by-dom0");
}

#[test]
fn retries_are_bounded() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().eagain_commits = 100;
    let mut runs = 0;
    let e = xs
        .transaction_with_attempts(4, |xs, tx| {
            runs += 1;
            xs.write(tx, "never", b"1")
        })
        .unwrap_err();
    assert_eq!(e, XsError::TransactionRetriesExhausted { attempts: 4 });
    assert_eq!(runs, 4);
    assert!(!fake.borrow().exists("never"));
    assert!(e.to_string().contains("EAGAIN on all 4 attempts"));
    // The default bound.
    let mut runs = 0;
    let e = xs.transaction(|_, _| {
        runs += 1;
        Ok(())
    });
    assert_eq!(e, Err(XsError::TransactionRetriesExhausted { attempts: DEFAULT_TRANSACTION_ATTEMPTS }));
    assert_eq!(runs, DEFAULT_TRANSACTION_ATTEMPTS);
}

#[test]
fn failing_body_aborts_and_is_not_retried() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().eacces.insert("/forbidden".into());
    let mut runs = 0;
    let e = xs
        .transaction(|xs, tx| {
            runs += 1;
            xs.write(tx, "ok", b"1")?;
            xs.write(tx, "/forbidden", b"1")
        })
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EACCES));
    assert_eq!(runs, 1);
    assert!(!fake.borrow().exists("ok"));
    assert_eq!(fake.borrow().received(MsgType::TransactionEnd)[0].payload, b"F\0");
    assert_eq!(fake.borrow().open_transactions(), 0);
}

#[test]
fn other_commit_errors_are_not_retried() {
    let (mut xs, fake) = setup();
    let mut runs = 0;
    let e = xs
        .transaction(|xs, tx| {
            runs += 1;
            xs.write(tx, "x", b"1")?;
            fake.borrow_mut().silent = true;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(e, XsError::Timeout { op: MsgType::TransactionEnd, .. }), "{e:?}");
    assert_eq!(runs, 1);
}

#[test]
fn unique_tokens_differ() {
    let (mut xs, _fake) = setup();
    let a = xs.unique_token("be");
    let b = xs.unique_token("be");
    assert_ne!(a, b);
    assert!(a.starts_with("be-"));
}

// ----- a daemon flooding watch events (issue 10, defect 5) -----

/// The most watch events the client may hold, whatever the daemon sends.
const QUEUE_BOUND: usize = WATCH_EVENTS_MAX;
const _: () = assert!(WATCH_EVENTS_MAX <= 64);

#[test]
fn flood_of_watch_events_during_a_read_keeps_the_queue_bounded_and_the_read_completes() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    xs.write(Tx::NONE, "k", b"v").unwrap();
    {
        let mut f = fake.borrow_mut();
        f.flood = Some(("/a".into(), "ta".into()));
        f.flood_budget = 1_000_000;
        f.delay_next_reply = 200;
    }
    assert_eq!(xs.read(Tx::NONE, "k").unwrap(), b"v");
    let flooded = fake.borrow().flooded;
    assert!(flooded > 5_000, "the flood ran while the read was outstanding: {flooded} events");
    assert!(xs.pending_watch_events() <= QUEUE_BOUND, "{} events queued", xs.pending_watch_events());
    // Level-triggered: the watch still says something changed under it.
    assert!(xs.take_watch_event("ta").is_some());
}

#[test]
fn flood_of_watch_events_with_a_silent_daemon_times_out_on_the_deadline() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    xs.set_timeout_ns(1_000_000);
    {
        let mut f = fake.borrow_mut();
        f.flood = Some(("/a".into(), "ta".into()));
        f.flood_budget = 10_000_000;
        f.silent = true;
    }
    let start = fake.borrow().now;
    let e = xs.read(Tx::NONE, "k").unwrap_err();
    assert!(matches!(e, XsError::Timeout { op: MsgType::Read, .. }), "{e:?}");
    let waited = fake.borrow().now - start;
    assert!(waited <= 1_000_000 + 2 * fake::WAKE_NS, "waited {waited} ns for a 1 ms deadline");
    assert!(xs.pending_watch_events() <= QUEUE_BOUND, "{} events queued", xs.pending_watch_events());
}

#[test]
fn flood_for_one_token_does_not_stretch_a_wait_for_another_past_its_deadline() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    xs.watch("/b", "tb").unwrap();
    let deadline = fake.borrow().now + 1_000_000_000;
    assert_eq!(xs.wait_watch_event_for("tb", deadline).unwrap().unwrap().path, "/b", "initial firing");
    {
        let mut f = fake.borrow_mut();
        f.flood = Some(("/a".into(), "ta".into()));
        f.flood_budget = 300_000;
        f.flood_on_notify = true;
    }
    let deadline = fake.borrow().now + 1_000_000;
    assert_eq!(xs.wait_watch_event_for("tb", deadline).unwrap(), None);
    // The daemon's work during one budgeted look at the ring (a few dozen refills of 1 us) may overrun it.
    let now = fake.borrow().now;
    assert!(now <= deadline + 64 * fake::WAKE_NS, "returned {} ns after the deadline", now - deadline);
    assert!(xs.pending_watch_events() <= QUEUE_BOUND, "{} events queued", xs.pending_watch_events());
}

#[test]
fn repeated_events_for_one_path_coalesce() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    fake.borrow_mut().events_before_next_reply = vec![b"/a/x\0ta\0".to_vec(); 20];
    xs.read_optional(Tx::NONE, "k").unwrap();
    xs.poll().unwrap();
    let paths: Vec<_> = core::iter::from_fn(|| xs.next_watch_event()).map(|e| e.path).collect();
    assert_eq!(paths, ["/a", "/a/x"], "one pending event per (token, path)");
}

#[test]
fn many_paths_under_one_watch_collapse_to_the_watched_path() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    xs.watch("/b", "tb").unwrap();
    xs.poll().unwrap();
    let events: Vec<Vec<u8>> = (0..100).map(|i| format!("/a/{i}\0ta\0").into_bytes()).collect();
    fake.borrow_mut().events_before_next_reply = events;
    fake.borrow_mut().set("/b/1", b"1");
    xs.read_optional(Tx::NONE, "k").unwrap();
    xs.poll().unwrap();
    let got: Vec<_> = core::iter::from_fn(|| xs.next_watch_event()).map(|e| (e.token, e.path)).collect();
    let ta: Vec<_> = got.iter().filter(|(t, _)| t == "ta").collect();
    assert_eq!(ta.len(), 1, "collapsed: {got:?}");
    assert_eq!(ta[0].1, "/a", "\"something under /a changed\"");
    assert!(got.contains(&("tb".into(), "/b/1".into())), "other watches keep their events: {got:?}");
}

#[test]
fn watches_beyond_the_limit_are_refused_before_sending() {
    let (mut xs, fake) = setup();
    for i in 0..WATCHES_MAX {
        xs.watch(&format!("/w/{i}"), &format!("t{i}")).unwrap();
    }
    let sent = fake.borrow().log.len();
    let e = xs.watch("/w/x", "tx").unwrap_err();
    assert!(matches!(e, XsError::BadArgument { op: MsgType::Watch, .. }), "{e:?}");
    assert_eq!(fake.borrow().log.len(), sent);
    xs.unwatch("/w/0", "t0").unwrap();
    xs.watch("/w/x", "tx").unwrap();
}

// ----- the non-blocking request path (for the run loop) -----

/// One step of the fake daemon, as the run loop would get from the event channel firing.
fn daemon_step(xs: &mut FakeClient) {
    let deadline = xs.platform().now_ns() + 1_000_000_000;
    xs.platform_mut().wait(deadline);
}

#[test]
fn start_and_poll_request_never_wait() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().set("k", b"v");
    fake.borrow_mut().delay_next_reply = 3;
    let pending = xs.start(Request::Read(Tx::NONE, "k")).unwrap();
    assert_eq!(pending.op(), MsgType::Read);
    let mut polls = 0;
    let value = loop {
        polls += 1;
        match xs.poll_request(&pending) {
            core::task::Poll::Ready(result) => break result.unwrap(),
            core::task::Poll::Pending => {
                assert_eq!(fake.borrow().waits, polls - 1, "poll_request itself never waits");
                daemon_step(&mut xs);
            }
        }
    };
    assert_eq!(value, b"v");
    assert!(polls >= 4, "{polls}");
    assert_eq!(
        xs.poll_request(&pending),
        core::task::Poll::Ready(Err(XsError::NotInFlight { op: MsgType::Read, path: ErrorPath::tail("k") }))
    );
}

#[test]
fn requests_in_flight_together_each_get_their_own_reply() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().set("a", b"A");
    let read = xs.start(Request::Read(Tx::NONE, "a")).unwrap();
    let write = xs.start(Request::Write(Tx::NONE, "b", b"B")).unwrap();
    // A blocking call meanwhile (start-of-day code, a test) gets its own reply; the others' are kept for them.
    assert_eq!(xs.read_optional(Tx::NONE, "c").unwrap(), None);
    assert_eq!(xs.in_flight(), 2);
    assert_eq!(xs.poll_request(&write), core::task::Poll::Ready(Ok(b"OK\0".to_vec())));
    assert_eq!(xs.poll_request(&read), core::task::Poll::Ready(Ok(b"A".to_vec())));
    assert_eq!(fake.borrow().get("b").unwrap(), b"B");
    assert_eq!(xs.in_flight(), 0);
}

#[test]
fn at_most_max_in_flight_then_busy() {
    let (mut xs, _fake) = setup();
    let pending: Vec<_> =
        (0..MAX_IN_FLIGHT).map(|i| xs.start(Request::Read(Tx::NONE, &format!("k{i}"))).unwrap()).collect();
    let e = xs.start(Request::Write(Tx::NONE, "b", b"1")).unwrap_err();
    assert_eq!(e, XsError::Busy { op: MsgType::Write, path: ErrorPath::tail("b") });
    assert_eq!(e.to_string(), "xenstore XS_WRITE b: not sent, too many xenstore requests in flight");
    assert!(matches!(xs.read(Tx::NONE, "c"), Err(XsError::Busy { .. })));
    // The first is sent, then given up: its reply comes later and is dropped.
    assert!(xs.poll_request(&pending[0]).is_pending(), "sent, not answered yet");
    let e = xs.give_up(&pending[0], xs.platform().now_ns());
    assert!(matches!(e, XsError::Timeout { op: MsgType::Read, .. }), "{e:?}");
    assert_eq!(xs.read_optional(Tx::NONE, "c").unwrap(), None);
    assert_eq!(xs.late_replies_dropped(), 1, "the given-up read's reply came and was dropped");
    for p in &pending[1..] {
        assert_eq!(xs.poll_request(p).map(|r| r.unwrap_err().is_enoent()), core::task::Poll::Ready(true));
    }
}

#[test]
fn a_request_given_up_before_any_byte_went_out_leaves_no_trace() {
    let (mut xs, fake) = setup();
    // The request ring is full of someone else's bytes the daemon never consumes.
    fake.borrow_mut().req_chunk = Some(0);
    let big = xs.start(Request::Write(Tx::NONE, "big", &max_value("big"))).unwrap();
    let _ = xs.poll_request(&big);
    assert!(matches!(xs.give_up(&big, xs.platform().now_ns()), XsError::Protocol { .. }), "partial: broken");
    let (mut xs, fake) = setup();
    fake.borrow_mut().req_chunk = Some(0);
    let pending = xs.start(Request::Read(Tx::NONE, "k")).unwrap();
    let e = xs.give_up(&pending, xs.platform().now_ns() + 5);
    assert_eq!(e, XsError::Timeout { op: MsgType::Read, path: ErrorPath::tail("k"), waited_ns: 5 });
    assert_eq!(fake.borrow().req_prod(), 0, "nothing was written");
    fake.borrow_mut().req_chunk = None;
    fake.borrow_mut().set("k", b"1");
    assert_eq!(xs.read(Tx::NONE, "k").unwrap(), b"1");
}

#[test]
fn watch_bookkeeping_follows_the_non_blocking_path() {
    let (mut xs, fake) = setup();
    let w = xs.start(Request::Watch("/a", "ta")).unwrap();
    while xs.poll_request(&w).is_pending() {
        daemon_step(&mut xs);
    }
    xs.poll().unwrap();
    assert_eq!(xs.take_watch_event("ta").unwrap().path, "/a");
    // A refused watch is forgotten: its events would be strays.
    fake.borrow_mut().eacces.insert("/b".into());
    let w = xs.start(Request::Watch("/b", "tb")).unwrap();
    let result = loop {
        if let core::task::Poll::Ready(r) = xs.poll_request(&w) {
            break r;
        }
        daemon_step(&mut xs);
    };
    assert_eq!(result.unwrap_err().errno(), Some(Errno::EACCES));
    fake.borrow_mut().events_before_next_reply = vec![b"/b\0tb\0".to_vec()];
    xs.read_optional(Tx::NONE, "x").unwrap();
    assert_eq!(xs.stray_events_dropped(), 1);
}

#[test]
fn has_unread_says_when_the_budget_stopped_the_read() {
    let (mut xs, fake) = setup();
    xs.watch("/a", "ta").unwrap();
    {
        let mut f = fake.borrow_mut();
        f.flood = Some(("/a".into(), "ta".into()));
        f.flood_budget = 1_000;
        f.flood_on_notify = true;
    }
    daemon_step(&mut xs);
    let (_, more) = xs.poll_more().unwrap();
    assert!(more && xs.has_unread(), "a daemon refilling as fast as we read: the budget stops us");
    fake.borrow_mut().flood_on_notify = false;
    while xs.poll_more().unwrap().1 {}
    assert!(!xs.has_unread());
    assert!(xs.pending_watch_events() <= WATCH_EVENTS_MAX);
}

/// One model for shared memory (issue 10): the client's own indices live on a page the daemon can write. A
/// daemon that moves our `rsp_cons` up to its `rsp_prod` right after answering made the client believe the reply
/// had been read, and the read timed out; the client now keeps its own copies and reads the reply.
#[test]
fn a_daemon_scribbling_on_our_rsp_cons_cannot_make_us_skip_its_reply() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "k", b"v").unwrap();
    fake.borrow_mut().scribble_client_rsp_cons = true;
    assert_eq!(xs.read(Tx::NONE, "k").unwrap(), b"v");
    assert!(!fake.borrow().scribble_client_rsp_cons, "the daemon did scribble");
}

// ----- suspend and resume (issue 16) -----

#[test]
fn after_a_restore_the_client_follows_the_reset_ring_and_its_watches_fire_again() {
    let (mut xs, fake) = setup();
    xs.write(Tx::NONE, "data/before", b"1").unwrap();
    xs.watch("control/shutdown", "ctl").unwrap();
    xs.watch("device", "dev").unwrap();
    xs.poll().unwrap();
    while xs.next_watch_event().is_some() {}
    assert!(fake.borrow().req_prod() > 0, "the ring has moved");
    // Restored: xenstored introduces the domain afresh.
    fake.borrow_mut().reintroduce();
    assert!(fake.borrow().watches().is_empty());
    assert_eq!(xs.resumed(true), 2);
    // Requests work on the reset ring, and the re-sent watches fire once each, as new ones do.
    xs.write(Tx::NONE, "data/after", b"2").unwrap();
    xs.poll().unwrap();
    let mut fired: Vec<String> = core::iter::from_fn(|| xs.next_watch_event()).map(|e| e.token).collect();
    fired.sort();
    assert_eq!(fired, ["ctl", "dev"]);
    assert_eq!(fake.borrow().watches().len(), 2);
    assert_eq!(xs.read(Tx::NONE, "data/before").unwrap(), b"1", "the tree is the daemon's, kept");
    fake.borrow_mut().set("control/shutdown", b"poweroff");
    let event = xs.wait_watch_event(u64::MAX).unwrap();
    assert_eq!(event.map(|e| e.token), Some("ctl".into()));
    // Without the client's part, the ring it kept would be 'overrun' against the reset indices.
    assert!(xs.broken().is_none());
}

#[test]
fn a_cancelled_suspend_changes_nothing() {
    let (mut xs, fake) = setup();
    xs.watch("control/shutdown", "ctl").unwrap();
    xs.poll().unwrap();
    let watches_sent = fake.borrow().received(MsgType::Watch).len();
    assert_eq!(xs.resumed(false), 0);
    assert_eq!(fake.borrow().received(MsgType::Watch).len(), watches_sent);
    xs.write(Tx::NONE, "data/x", b"1").unwrap();
}

#[test]
fn a_request_in_flight_across_a_restore_ends_and_its_late_reply_is_not_taken_for_another() {
    let (mut xs, fake) = setup();
    fake.borrow_mut().silent = true;
    let pending = xs.start(Request::Read(Tx::NONE, "data/x")).unwrap();
    assert!(xs.poll_request(&pending).is_pending());
    fake.borrow_mut().silent = false;
    fake.borrow_mut().reintroduce();
    xs.resumed(true);
    assert!(matches!(xs.poll_request(&pending), core::task::Poll::Ready(Err(XsError::NotInFlight { .. }))));
    fake.borrow_mut().set("data/y", b"why");
    assert_eq!(xs.read(Tx::NONE, "data/y").unwrap(), b"why");
}
