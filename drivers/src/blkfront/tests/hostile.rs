//! A slow, wrong or hostile backend: every bad response is counted and contained.

use super::*;
use crate::blkfront::wire::*;
use crate::blkfront::*;
use crate::ring::RingError;

/// `op` completed with [`ErrorKind::Lost`].
fn lost(h: &mut Harness, op: OpId) -> ErrorKind {
    let e = h.blk.take_completion(op).unwrap().unwrap_or_else(|| panic!("{op} pending")).result.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Lost { .. }), "{e}");
    e.kind
}

#[test]
fn a_response_with_an_unknown_id_is_counted_and_its_request_lost() {
    let mut h = up(linux512());
    let a = h.blk.submit_write(0, &[1; 512]).unwrap();
    let b = h.blk.submit_write(4096, &[2; 8192]).unwrap();
    h.back.bad_id_next = true;
    h.back.process();
    let summary = h.blk.poll();
    let fault = Fault { index: 0, kind: FaultKind::UnknownId { id: u64::MAX - 1 } };
    assert_eq!(summary, PollSummary { responses: 2, completed: 2, faults: 1, first_fault: Some(fault) });
    assert_eq!(fault.to_string(), "response at ring index 0: id 0xfffffffffffffffe was never issued");
    assert_eq!(h.blk.take_completion(b).unwrap().unwrap().result, Ok(8192), "the good response is used");
    let kind = lost(&mut h, a);
    assert_eq!(kind, ErrorKind::Lost { operation: BLKIF_OP_WRITE, sector: 0, sectors: 1 });
    assert_eq!(
        kind.to_string(),
        "lost: the backend answered as many requests as we made, but never BLKIF_OP_WRITE of 512-byte sectors 0..1 \
         (a wrong id took its place); its pages are withheld from reuse"
    );
    assert_eq!(h.blk.phase(), Phase::Connected, "contained, not fatal");
    assert_eq!(h.blk.free().data_pages, 511, "a's page is withheld");
    assert_eq!(h.blk.max_transfer(), 511 * 4096);
    let c = h.blk.counters();
    assert_eq!((c.bad_id, c.lost_requests, c.quarantined_pages, c.faults()), (1, 1, 1, 1));
    assert_eq!(read_ok(&mut h, 4096, 8192), vec![2; 8192], "the device carries on");
}

#[test]
fn a_request_is_lost_only_once_every_response_is_in() {
    let mut h = up(linux512());
    h.back.hold = true;
    let a = h.blk.submit_read(0, 512).unwrap();
    let b = h.blk.submit_read(512, 512).unwrap();
    h.back.process();
    let held = std::mem::take(&mut h.back.held);
    h.back.put_raw(BlkifResponse { id: 77, ..held[0] });
    h.back.publish();
    assert_eq!(h.blk.poll().faults, 1);
    assert_eq!(h.blk.take_completion(a), Ok(None), "b's response may still be a's: wait");
    assert_eq!(h.blk.take_completion(b), Ok(None));
    h.back.put_raw(held[1]);
    h.back.publish();
    assert_eq!(h.blk.poll().completed, 2);
    assert!(h.blk.take_completion(b).unwrap().unwrap().result.is_ok());
    lost(&mut h, a);
}

#[test]
fn a_duplicate_response_is_counted_and_cannot_complete_the_next_request_in_its_slot() {
    let mut h = up(linux512());
    let a = h.blk.submit_write(0, &[1; 512]).unwrap();
    let b = h.blk.submit_write(512, &[2; 512]).unwrap();
    h.back.duplicate_next = true;
    h.back.process();
    let summary = h.blk.poll();
    assert_eq!((summary.responses, summary.completed, summary.faults), (2, 2, 1));
    assert!(matches!(summary.first_fault.unwrap().kind, FaultKind::Duplicate { .. }));
    assert_eq!(h.blk.take_completion(a).unwrap().unwrap().result, Ok(512));
    lost(&mut h, b);

    // A late copy of c's response arrives after d took over its slot (the same slot index, a newer generation).
    let c = h.blk.submit_write(0, &[3; 512]).unwrap();
    finish(&mut h, c);
    let c_id = h.back.log.last().unwrap().id;
    h.back.hold = true;
    let d = h.blk.submit_write(512, &[4; 512]).unwrap();
    let e = h.blk.submit_write(1024, &[5; 512]).unwrap();
    h.back.process();
    let d_id = h.back.log[h.back.log.len() - 2].id;
    assert_eq!(c_id as u32, d_id as u32, "same slot");
    assert_ne!(c_id, d_id, "different generation");
    let held = std::mem::take(&mut h.back.held);
    h.back.put_raw(BlkifResponse { id: c_id, operation: BLKIF_OP_WRITE, status: 0 });
    h.back.put_raw(held[1]);
    h.back.publish();
    let summary = h.blk.poll();
    assert_eq!(summary.first_fault.unwrap().kind, FaultKind::Duplicate { id: c_id });
    assert!(h.blk.take_completion(e).unwrap().unwrap().result.is_ok());
    lost(&mut h, d);
    assert_eq!(h.back.disk[512], 4, "the backend did write d: only its answer never came, so we cannot know");
    let counters = h.blk.counters();
    assert_eq!((counters.duplicate, counters.lost_requests), (2, 2));
}

#[test]
fn a_response_with_the_wrong_operation_is_counted_and_its_request_lost() {
    let mut h = up(linux512());
    let op = h.blk.submit_read(0, 512).unwrap();
    h.back.wrong_operation_next = true;
    h.back.process();
    let summary = h.blk.poll();
    let id = h.back.log[0].id;
    let fault = summary.first_fault.unwrap();
    assert_eq!(fault.kind, FaultKind::WrongOperation { id, expected: BLKIF_OP_READ, got: BLKIF_OP_WRITE });
    assert_eq!(
        fault.to_string(),
        format!(
            "response at ring index 0: id {id:#x} is a BLKIF_OP_READ request, but the response says BLKIF_OP_WRITE (1)"
        )
    );
    lost(&mut h, op);
    assert_eq!(h.blk.counters().wrong_operation, 1);
}

#[test]
fn an_indirect_response_may_echo_either_operation() {
    let mut h = up(linux512());
    h.back.echo_indirect = true;
    let data = pattern(64 * 4096, 1);
    write_ok(&mut h, 0, &data);
    assert_eq!(h.back.log[0].operation, BLKIF_OP_INDIRECT);
    h.back.echo_indirect = false;
    assert_eq!(read_ok(&mut h, 0, data.len()), data);
    assert_eq!(h.blk.counters().faults(), 0);
    // But a direct request answered as indirect is wrong.
    let op = h.blk.submit_read(0, 512).unwrap();
    h.back.hold = true;
    h.back.process();
    let id = h.back.held.pop().unwrap().id;
    h.back.held.push(BlkifResponse { id, operation: BLKIF_OP_INDIRECT, status: 0 });
    h.back.release_held();
    assert_eq!(h.blk.poll().faults, 1);
    lost(&mut h, op);
}

#[test]
fn an_unknown_status_fails_the_operation_and_is_counted() {
    let mut h = up(linux512());
    let op = h.blk.submit_write(0, &[1; 4096]).unwrap();
    h.back.status_next = Some(7);
    let c = finish(&mut h, op);
    let e = c.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadStatus { operation: BLKIF_OP_WRITE, status: 7 });
    assert_eq!(e.to_string(), "vbd/51712: the backend answered BLKIF_OP_WRITE with status 7, not a BLKIF_RSP_* value");
    let c = h.blk.counters();
    assert_eq!((c.bad_status, c.ops_failed, c.faults()), (1, 1, 1));
    assert_eq!(h.blk.free().data_pages, 512);
}

#[test]
fn an_io_error_status_reaches_the_caller() {
    let mut h = up(linux4k());
    h.back.error_sector = Some(8 * 10 + 3);
    let op = h.blk.submit_read(4096 * 10, 4096).unwrap();
    let e = finish(&mut h, op).result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io { operation: BLKIF_OP_READ, sector: 80, sectors: 8 });
    // Its neighbours are fine.
    read_ok(&mut h, 4096 * 9, 4096);
    read_ok(&mut h, 4096 * 11, 4096);
}

#[test]
fn rsp_prod_running_ahead_breaks_the_device_and_fails_everything_pending() {
    let mut h = up(linux512());
    h.back.hold = true;
    let a = h.blk.submit_write(0, &[1; 512]).unwrap();
    let b = h.blk.submit_read(0, MIB as u64).unwrap();
    h.back.process();
    h.back.run_rsp_prod_ahead(5);
    let summary = h.blk.poll();
    let overrun = RingError::Overrun { rsp_prod: 5, rsp_cons: 0, req_prod: 2 };
    let fault = Fault { index: 0, kind: FaultKind::Ring(overrun) };
    assert_eq!(summary, PollSummary { responses: 0, completed: 2, faults: 1, first_fault: Some(fault) });
    assert_eq!(h.blk.phase(), Phase::Broken(fault));
    for op in [a, b] {
        let e = h.blk.take_completion(op).unwrap().unwrap().result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Broken(fault));
    }
    let e = h.blk.submit_read(0, 512).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Broken(fault));
    assert!(e.to_string().ends_with("the device is stopped"), "{e}");
    assert_eq!(
        e.to_string(),
        "vbd/51712: the device stopped after response at ring index 0: the backend's rsp_prod 5 claims 5 responses \
         past rsp_cons 0, but only 2 requests were published (req_prod 2); the device is stopped"
    );
    h.back.release_held();
    assert_eq!(h.blk.poll(), PollSummary::default(), "silent once broken");
    h.blk.backend_connected(h.back.spec.disk_info());
    assert!(matches!(h.blk.phase(), Phase::Broken(_)), "no way back");
    let c = h.blk.counters();
    assert_eq!((c.ring_overruns, c.ops_failed, c.faults()), (1, 2, 1));
}

#[test]
fn a_slow_backend_only_delays_completions() {
    let mut h = up(linux512());
    h.back.hold = true;
    let op = h.blk.submit_write(0, &pattern(MIB, 2)).unwrap();
    h.back.process();
    for _ in 0..5 {
        assert_eq!(h.blk.poll(), PollSummary::default());
        assert_eq!(h.blk.take_completion(op), Ok(None));
    }
    h.back.release_held();
    assert_eq!(h.blk.poll().completed, 1);
    assert_eq!(h.blk.take_completion(op).unwrap().unwrap().result, Ok(MIB as u64));
}

#[test]
fn hostile_responses_mixed_with_good_ones_leave_the_good_ones_intact() {
    let mut h = up(linux512());
    h.back.hold = true;
    let ops: Vec<OpId> = (0..6u64).map(|i| h.blk.submit_write(i * 4096, &pattern(4096, i as u8)).unwrap()).collect();
    h.back.process();
    let good = std::mem::take(&mut h.back.held);
    // Every other response is replaced by junk: an unknown id, a wrong operation, a generation never issued.
    let junk = [
        BlkifResponse { id: 12345, ..good[1] },
        BlkifResponse { operation: BLKIF_OP_READ, ..good[3] },
        BlkifResponse { id: good[5].id | 0xff << 32, ..good[5] },
    ];
    for k in 0..3 {
        h.back.put_raw(good[2 * k]);
        h.back.put_raw(junk[k]);
    }
    h.back.publish();
    let summary = h.blk.poll();
    assert_eq!((summary.responses, summary.completed, summary.faults), (6, 6, 3));
    for (i, &op) in ops.iter().enumerate() {
        let result = h.blk.take_completion(op).unwrap().unwrap().result;
        assert_eq!(result.is_ok(), i % 2 == 0, "op {i}: {result:?}");
    }
    let c = h.blk.counters();
    assert_eq!((c.bad_id, c.wrong_operation, c.duplicate, c.lost_requests), (2, 1, 0, 3));
    h.back.hold = false;
    for i in [0, 2, 4] {
        assert_eq!(read_ok(&mut h, i * 4096, 4096), pattern(4096, i as u8));
    }
    assert_eq!(h.blk.free().data_pages, 512 - 3);
}

#[test]
fn a_backend_that_closes_fails_everything_pending_and_refuses_more() {
    let mut h = up(linux512());
    h.back.hold = true;
    let a = h.blk.submit_write(0, &[1; 512]).unwrap();
    let b = h.blk.submit_read(0, MIB as u64).unwrap();
    h.back.process();
    assert_eq!(h.blk.backend_closed(), 2);
    assert_eq!(h.blk.phase(), Phase::Closed);
    for op in [a, b] {
        let e = h.blk.take_completion(op).unwrap().unwrap().result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::BackendClosed);
        assert!(e.to_string().contains("the backend closed the device before answering"), "{e}");
    }
    assert_eq!(h.blk.submit_flush().unwrap_err().kind, ErrorKind::BackendClosed);
    // Late answers from the closing backend are not read: the ring is no longer ours to trust.
    h.back.release_held();
    assert_eq!(h.blk.poll(), PollSummary::default());
    assert_eq!(h.blk.backend_closed(), 0, "once");
    assert_eq!(h.blk.counters().ops_failed, 2);
}

#[test]
fn a_backend_answering_while_we_poll_cannot_keep_one_poll_going() {
    use crate::ring::offsets;
    use crate::ring::testing::{get, set};
    let mut h = up(DiskSpec::basic(512, DISK));
    assert_eq!(h.blk.ring_size(), 32);
    h.back.hold = true;
    let ops: Vec<OpId> = (0..32u64).map(|i| h.blk.submit_read(i * 512, 512).unwrap()).collect();
    h.back.process();
    // Each time we re-arm rsp_event (RING_FINAL_CHECK_FOR_RESPONSES), the backend slips in one more response with
    // an id never issued, for ever.
    let junk = BlkifResponse { id: 0xdead, operation: BLKIF_OP_READ, status: 0 };
    h.back.ring.page.borrow_mut().after_rsp_event = Some(Box::new(move |bytes: &mut Vec<u8>| {
        let prod = get(bytes, offsets::RSP_PROD);
        let at = offsets::RING + (prod & 31) as usize * ENTRY_SIZE;
        bytes[at..at + RESPONSE_SIZE].copy_from_slice(&junk.emit());
        set(bytes, offsets::RSP_PROD, prod.wrapping_add(1));
    }));
    h.back.put_raw(junk);
    h.back.publish();
    let summary = h.blk.poll();
    assert_eq!(summary.responses, 32, "no more responses than requests outstanding");
    assert!(matches!(h.blk.phase(), Phase::Broken(_)), "the 33rd response is an overrun");
    assert_eq!(summary.completed, 32);
    for op in ops {
        assert!(h.blk.take_completion(op).unwrap().unwrap().result.is_err());
    }
    let c = h.blk.counters();
    assert_eq!((c.bad_id, c.lost_requests, c.ring_overruns), (32, 32, 1));
}
