//! The async layer ([`crate::blkfront::transfer`]) against the fake blkback: transfers split and pipelined,
//! cancellation at every point (pages, grants and request ids come back; a following operation works; a cancelled
//! write is never reported and is ordered before later flushes and overlapping writes), and errors mid-transfer.

use core::future::Future;
use core::pin::pin;
use core::task::Poll;

use super::*;
use crate::blkfront::fake::{poll_once, FakeCell};
use crate::blkfront::transfer::{self, DriverCell};
use crate::blkfront::wire::*;
use crate::blkfront::*;

fn cell(spec: DiskSpec) -> FakeCell {
    FakeCell::new(up(spec))
}

/// Polls `fut`, ticking the device between polls, for at most `ticks` ticks.
fn drive<F: Future>(cell: &FakeCell, fut: F, ticks: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    for _ in 0..ticks {
        if let Poll::Ready(out) = poll_once(fut.as_mut()) {
            return Some(out);
        }
        cell.tick();
    }
    None
}

/// Every page, ring slot and request id is free, and no operation is held.
#[track_caller]
fn assert_whole(cell: &FakeCell) {
    let h = cell.h.borrow();
    let full = Resources { ring_slots: h.blk.ring_size(), data_pages: 512, indirect_pages: 16 };
    assert_eq!(h.blk.free(), full, "the pool is whole");
    assert_eq!((h.blk.pending(), h.blk.completions_waiting()), (0, 0), "no operation held");
    assert_eq!(h.blk.ops_in_use(), 0, "every operation id free");
}

/// Requests the backend has taken.
fn taken(cell: &FakeCell) -> usize {
    cell.h.borrow().back.log.len()
}

#[test]
fn a_large_read_and_write_round_trip_in_pieces() {
    let c = cell(linux512());
    let data = pattern(5 * MIB / 2 + 4096, 4);
    assert_eq!(drive(&c, transfer::write(&c, 4096, &data), 20), Some(Ok(())));
    let mut out = vec![0; data.len()];
    assert_eq!(drive(&c, transfer::read(&c, 4096, &mut out), 20), Some(Ok(())));
    assert_eq!(out, data);
    assert_eq!(c.h.borrow().back.log.len(), 6, "1 MiB pieces: three each way");
    assert_whole(&c);
}

#[test]
fn a_cancelled_large_read_gives_its_pages_and_ids_back_once_the_backend_answers() {
    let c = cell(linux512());
    c.h.borrow_mut().back.hold = true;
    let mut buf = vec![0; 2 * MIB];
    {
        let mut fut = pin!(transfer::read(&c, 0, &mut buf));
        assert!(poll_once(fut.as_mut()).is_pending());
        c.tick();
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(c.h.borrow().blk.pending(), 2, "two 1 MiB reads in flight");
    } // dropped: cancelled
    assert_eq!(taken(&c), 2);
    c.h.borrow_mut().back.hold = false;
    c.h.borrow_mut().back.release_held();
    c.tick();
    assert_whole(&c);
    // And the device carries on.
    let data = pattern(2 * MIB, 9);
    assert_eq!(drive(&c, transfer::write(&c, 0, &data), 20), Some(Ok(())));
    assert_eq!(drive(&c, transfer::read(&c, 0, &mut buf), 20), Some(Ok(())));
    assert_eq!(buf, data);
    assert_whole(&c);
}

#[test]
fn repeated_cancellation_never_exhausts_the_pool() {
    let c = cell(linux512());
    let mut buf = vec![0; 2 * MIB];
    for round in 0..8 {
        let mut fut = pin!(transfer::read(&c, 0, &mut buf));
        assert!(poll_once(fut.as_mut()).is_pending(), "round {round}");
        // Cancelled with its requests in flight, before the backend even took them.
    }
    c.tick();
    assert_whole(&c);
    assert_eq!(drive(&c, transfer::read(&c, 0, &mut buf), 20), Some(Ok(())), "a read after eight cancelled ones");
    assert_whole(&c);
}

#[test]
fn a_cancelled_write_is_never_reported_done() {
    let c = cell(linux512());
    c.h.borrow_mut().back.hold = true;
    let data = pattern(2 * MIB, 3);
    {
        let mut fut = pin!(transfer::write(&c, 0, &data));
        assert!(poll_once(fut.as_mut()).is_pending());
        c.tick();
    }
    c.h.borrow_mut().back.hold = false;
    c.h.borrow_mut().back.release_held();
    c.tick();
    let counters = c.h.borrow().blk.counters();
    assert_eq!((counters.bytes_written, counters.ops_ok), (0, 0), "nobody was told it was done");
    assert_eq!(c.h.borrow_mut().blk.next_completion(), None, "no completion to hand out");
    assert_whole(&c);
}

#[test]
fn a_flush_after_a_cancelled_write_waits_for_it() {
    let c = cell(linux512());
    c.h.borrow_mut().back.hold = true;
    let data = pattern(2 * MIB, 3);
    {
        let mut fut = pin!(transfer::write(&c, 0, &data));
        assert!(poll_once(fut.as_mut()).is_pending());
        c.tick();
    }
    assert_eq!(taken(&c), 2, "the write's two requests are with the backend, unanswered");
    let mut flush = pin!(transfer::flush(&c));
    for _ in 0..3 {
        assert!(poll_once(flush.as_mut()).is_pending());
        c.tick();
        assert_eq!(taken(&c), 2, "no flush is sent while the cancelled write may still be reaching the disk");
    }
    c.h.borrow_mut().back.hold = false;
    c.h.borrow_mut().back.release_held();
    let mut done = None;
    for _ in 0..5 {
        c.tick();
        if let Poll::Ready(r) = poll_once(flush.as_mut()) {
            done = Some(r);
            break;
        }
    }
    assert_eq!(done, Some(Ok(())));
    let back = &c.h.borrow().back;
    assert_eq!(back.log[2].operation, BLKIF_OP_FLUSH_DISKCACHE, "sent after the write was answered");
    assert_eq!(back.flushes, 1);
    assert_eq!(&back.disk[..2 * MIB], &data[..], "the fake performed it; a real disk may hold any part of it");
}

#[test]
fn a_write_overlapping_a_cancelled_write_waits_for_it() {
    let c = cell(linux512());
    c.h.borrow_mut().back.hold = true;
    {
        let old = pattern(8192, 1);
        let mut fut = pin!(transfer::write(&c, 4096, &old));
        assert!(poll_once(fut.as_mut()).is_pending());
        c.tick();
    }
    // Elsewhere on the disk: not held up.
    let elsewhere = pattern(4096, 5);
    let mut other = pin!(transfer::write(&c, 64 * 4096, &elsewhere));
    assert!(poll_once(other.as_mut()).is_pending());
    c.tick();
    assert_eq!(taken(&c), 2);
    // On the same sectors: waits.
    let new = pattern(4096, 2);
    let mut fut = pin!(transfer::write(&c, 8192, &new));
    assert!(poll_once(fut.as_mut()).is_pending());
    c.tick();
    assert_eq!(taken(&c), 2, "not sent while the cancelled write is unanswered");
    c.h.borrow_mut().back.hold = false;
    c.h.borrow_mut().back.release_held();
    let mut done = None;
    for _ in 0..5 {
        c.tick();
        if let Poll::Ready(r) = poll_once(fut.as_mut()) {
            done = Some(r);
            break;
        }
    }
    assert_eq!(done, Some(Ok(())));
    assert_eq!(&c.h.borrow().back.disk[8192..12288], &new[..], "the later write landed last");
    assert_eq!(poll_once(other.as_mut()), Poll::Ready(Ok(())));
}

#[test]
fn an_io_error_mid_transfer_releases_everything() {
    let c = cell(linux512());
    // The second of three 1 MiB pieces fails.
    c.h.borrow_mut().back.error_sector = Some((MIB / 512 + 7) as u64);
    let mut buf = vec![0; 3 * MIB];
    let e = drive(&c, transfer::read(&c, 0, &mut buf), 20).expect("done").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io { operation: BLKIF_OP_READ, sector: 2048, sectors: 2048 });
    assert_whole(&c);
    let e = drive(&c, transfer::write(&c, 0, &vec![1; 3 * MIB]), 20).expect("done").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Io { operation: BLKIF_OP_WRITE, .. }), "{e}");
    assert_whole(&c);
}

#[test]
fn a_completion_taken_by_someone_else_fails_the_transfer_without_leaking() {
    let c = cell(linux512());
    let mut buf = vec![0; 2 * MIB];
    let mut fut = pin!(transfer::read(&c, 0, &mut buf));
    assert!(poll_once(fut.as_mut()).is_pending());
    c.tick();
    // Another user of the driver drains the first completion (and collects its data).
    let stolen = c.h.borrow_mut().blk.next_completion().unwrap();
    let mut sink = vec![0; MIB];
    c.h.borrow_mut().blk.read_into(stolen.op, &mut sink).unwrap();
    let e = match poll_once(fut.as_mut()) {
        Poll::Ready(r) => r.unwrap_err(),
        Poll::Pending => panic!("still pending"),
    };
    assert!(matches!(e.kind, ErrorKind::UnknownOp { .. }), "{e}");
    assert_whole(&c);
}

#[test]
fn a_backend_that_never_answers_holds_the_pages_until_it_closes_and_the_device_resets() {
    let c = cell(linux512());
    c.h.borrow_mut().back.hold = true;
    let mut buf = vec![0; 2 * MIB];
    assert_eq!(drive(&c, transfer::read(&c, 0, &mut buf), 50), None, "no timeout: the caller cancels");
    assert_eq!(c.h.borrow().blk.free().data_pages, 0, "held while the backend may still write into them");
    assert_eq!(c.h.borrow_mut().blk.backend_closed(), 0, "nobody waits for the cancelled reads");
    assert_eq!(c.h.borrow().blk.free().data_pages, 0, "still held: a closing backend may still write them");
    let ring = crate::ring::testing::HeapRing(crate::ring::testing::pages(c.h.borrow().blk.transport().ring_pages()));
    c.h.borrow_mut().blk.reset(ring);
    assert_whole(&c);
}

#[test]
fn the_device_cell_sees_the_driver() {
    let c = cell(linux512());
    assert_eq!(c.with(|d| transfer::chunk(d, 512)), MIB as u64);
    let small = FakeCell::new(connected(linux4k(), Options { data_pages: 6, ..Options::default() }));
    assert_eq!(small.with(|d| transfer::chunk(d, 4096)), 3 * 4096);
}

// ----- abandon and reset on the driver's own API -----

#[test]
fn abandon_frees_an_operation_in_every_state() {
    let mut h = up(linux512());
    h.back.hold = true;
    let pending = h.blk.submit_read(0, MIB as u64).unwrap();
    let done = h.blk.submit_read(MIB as u64, 8192).unwrap();
    let taken = h.blk.submit_read(2 * MIB as u64, 4096).unwrap();
    h.back.process();
    h.back.release_held();
    h.blk.poll();
    h.blk.take_completion(taken).unwrap().unwrap();
    let late = h.blk.submit_write(0, &[7; 4096]).unwrap();
    h.back.process();
    for op in [pending, done, taken] {
        // `pending` completed meanwhile too; abandon a truly pending one below.
        assert_eq!(h.blk.abandon(op), Ok(()));
        assert_eq!(h.blk.abandon(op).unwrap_err().kind, ErrorKind::UnknownOp { op }, "once");
    }
    assert_eq!(h.blk.abandon(late), Ok(()));
    assert_eq!(h.blk.abandon(late), Ok(()), "a pending operation may be abandoned twice");
    assert_eq!(h.blk.pending(), 1);
    h.back.release_held();
    assert_eq!(h.blk.poll().completed, 0, "no completion for an abandoned operation");
    assert_eq!(h.blk.take_completion(late).unwrap_err().kind, ErrorKind::UnknownOp { op: late });
    assert_eq!(h.blk.next_completion(), None);
    assert_eq!(h.back.disk[..4096], [7; 4096], "it was performed, it just is not reported");
    let c = h.blk.counters();
    assert_eq!((c.abandoned, c.ops_ok, c.bytes_written), (4, 3, 0));
    assert_eq!(h.blk.free().data_pages, 512);
    assert_eq!(h.blk.ops_in_use(), 0);
}

#[test]
fn a_stale_response_to_an_abandoned_request_cannot_complete_the_next_one_in_its_slot() {
    let mut h = up(linux512());
    h.back.hold = true;
    let a = h.blk.submit_write(0, &[1; 512]).unwrap();
    h.back.process();
    h.blk.abandon(a).unwrap();
    let answer = h.back.held.pop().unwrap();
    h.back.put_raw(answer);
    h.back.publish();
    h.blk.poll();
    assert_eq!(h.blk.ops_in_use(), 0);
    let b = h.blk.submit_write(0, &[2; 512]).unwrap();
    h.back.process();
    assert_eq!(h.back.log[1].id as u32, answer.id as u32, "the same slot, reused");
    h.back.put_raw(answer);
    h.back.publish();
    let summary = h.blk.poll();
    assert_eq!(summary.first_fault.unwrap().kind, FaultKind::Duplicate { id: answer.id });
    // The stale answer is the second response to two requests: it took b's place, so b is lost (its page withheld),
    // never completed by an answer that was not its own.
    let e = h.blk.take_completion(b).unwrap().unwrap().result.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Lost { .. }), "{e}");
    assert_eq!(h.blk.free().data_pages, 511);
    assert_eq!(h.blk.ops_in_use(), 0);
}

#[test]
fn reset_after_the_ring_broke_gives_every_page_back_but_a_reads_uncollected_data() {
    let c = cell(linux512());
    let kept = {
        let mut h = c.h.borrow_mut();
        let kept = h.blk.submit_read(0, 8192).unwrap();
        h.back.process();
        h.blk.poll();
        h.back.hold = true;
        kept
    };
    let mut buf = vec![0; 2 * MIB];
    assert_eq!(drive(&c, transfer::read(&c, 0, &mut buf), 3), None, "cancelled");
    let lost = c.h.borrow_mut().blk.submit_write(4 * MIB as u64, &[3; 4096]).unwrap();
    {
        let mut h = c.h.borrow_mut();
        h.back.process();
        h.back.run_rsp_prod_ahead(9);
        assert_eq!(h.blk.poll().completed, 1, "the write fails; the cancelled reads are dropped");
        assert!(matches!(h.blk.phase(), Phase::Broken(_)));
        // 2 for `kept`, 256 for the one 1 MiB piece of the cancelled read that fitted, 1 for the write: withheld.
        assert_eq!(h.blk.free().data_pages, 512 - 2 - 256 - 1, "withheld from a broken backend");
    }
    let mut h = c.h.borrow_mut();
    let ring = crate::ring::testing::HeapRing(crate::ring::testing::pages(h.blk.transport().ring_pages()));
    assert_eq!(h.blk.reset(ring), 0, "nothing pending was left to fail");
    assert_eq!(h.blk.phase(), Phase::Initialising);
    assert_eq!(h.blk.submit_read(0, 512).unwrap_err().kind, ErrorKind::NotConnected);
    assert_eq!(h.blk.free().data_pages, 510, "all but the two pages of the read whose data waits");
    assert!(matches!(h.blk.take_completion(lost).unwrap().unwrap().result.unwrap_err().kind, ErrorKind::Broken(_)));
    assert_eq!(h.blk.take_completion(kept).unwrap().unwrap().result, Ok(8192));
    let mut out = vec![0; 8192];
    assert_eq!(h.blk.read_into(kept, &mut out), Ok(8192));
    assert_eq!(h.blk.free().data_pages, 512);
    assert_eq!((h.blk.free().indirect_pages, h.blk.ops_in_use(), h.blk.counters().resets), (16, 0, 1));
}

#[test]
fn a_cancelled_discard_is_ordered_like_a_cancelled_write() {
    let mut h = up(linux512());
    h.back.hold = true;
    let d = h.blk.submit_discard(8192, 8192).unwrap();
    h.back.process();
    h.blk.abandon(d).unwrap();
    assert_eq!(h.blk.submit_read(12288, 512).unwrap_err().kind, ErrorKind::AfterAbandoned { op: d }, "overlaps");
    assert!(h.blk.submit_read(16384, 512).is_ok(), "does not overlap");
    let e = h.blk.submit_flush().unwrap_err();
    assert_eq!(e.kind, ErrorKind::AfterAbandoned { op: d });
    assert!(e.is_busy(), "transient");
    assert!(e.to_string().contains("abandoned write op 0.1 is still pending"), "{e}");
    h.back.release_held();
    h.blk.poll();
    assert!(h.blk.submit_flush().is_ok(), "answered: the flush goes");
    assert_eq!(h.blk.counters().busy, 2);
}

#[test]
fn an_operation_failed_by_a_closing_backend_keeps_its_pages_withheld_when_abandoned() {
    let mut h = up(linux512());
    h.back.hold = true;
    let op = h.blk.submit_read(0, 16 * 4096).unwrap();
    h.back.process();
    assert_eq!(h.blk.backend_closed(), 1);
    assert_eq!(h.blk.abandon(op), Ok(()), "its completion is not taken: it goes");
    assert_eq!(h.blk.free().data_pages, 512 - 16, "the closing backend may still write them");
    assert_eq!(h.blk.ops_in_use(), 0);
    h.blk.reset(crate::ring::testing::HeapRing(crate::ring::testing::pages(h.blk.transport().ring_pages())));
    assert_eq!(h.blk.free().data_pages, 512);
}

#[test]
fn a_transfer_cancelled_while_waiting_for_room_holds_nothing() {
    let c = FakeCell::new(connected(linux512(), Options { data_pages: 32, ..Options::default() }));
    c.h.borrow_mut().back.hold = true;
    let mut first = vec![0; 32 * 4096];
    let mut a = pin!(transfer::read(&c, 0, &mut first));
    assert!(poll_once(a.as_mut()).is_pending(), "two 16-page pieces take every page");
    let mut second = vec![0; 4096];
    {
        let mut b = pin!(transfer::read(&c, 0, &mut second));
        assert!(poll_once(b.as_mut()).is_pending(), "busy: waits for room");
        assert_eq!(c.h.borrow().blk.pending(), 2, "only a's");
    }
    c.h.borrow_mut().back.hold = false;
    c.h.borrow_mut().back.release_held();
    let mut done = None;
    for _ in 0..5 {
        c.tick();
        if let Poll::Ready(r) = poll_once(a.as_mut()) {
            done = Some(r);
            break;
        }
    }
    assert_eq!(done, Some(Ok(())));
    let h = c.h.borrow();
    assert_eq!((h.blk.free().data_pages, h.blk.ops_in_use(), h.blk.counters().abandoned), (32, 0, 0));
}

// ----- resume in a new domain (xl restore, xl migrate) -----

/// The domain resumes elsewhere: the old backend is gone with whatever it held; the driver moves to a new ring and
/// event channel, and a new backend (over the same disk bytes, as after a migration) attaches. Returns the new
/// kick counter and how many requests wait for replay.
fn resume_to_new_backend(c: &FakeCell) -> (std::rc::Rc<core::cell::Cell<u32>>, usize) {
    let mut h = c.h.borrow_mut();
    let pages = crate::ring::testing::pages(h.blk.transport().ring_pages());
    let kicks = std::rc::Rc::new(core::cell::Cell::new(0));
    let mut regranted = false;
    let waiting = h
        .blk
        .resume(crate::ring::testing::HeapRing(pages.clone()), fake::FakeEvtchn(kicks.clone()), |_| {
            regranted = true;
            Ok::<(), ()>(())
        })
        .unwrap();
    assert!(regranted, "the pages are granted again to the new backend");
    let (store, spec, disk) = (h.back.store.clone(), h.back.spec, h.back.disk.clone());
    h.back = fake::FakeBlkback::new(pages, store, spec);
    h.back.disk = disk;
    (kicks, waiting)
}

#[test]
fn resume_sends_every_unanswered_request_again_and_the_callers_see_only_a_delay() {
    let c = cell(linux512());
    let big = pattern(MIB, 1);
    let small = pattern(4096, 2);
    let mut w1 = pin!(transfer::write(&c, 0, &big));
    let mut w2 = pin!(transfer::write(&c, 4 * MIB as u64, &small));
    assert!(poll_once(w1.as_mut()).is_pending() && poll_once(w2.as_mut()).is_pending());
    // The old backend never took them: the domain was suspended with both on the ring.
    let old_kicks = c.h.borrow().kicks.get();
    let (kicks, waiting) = resume_to_new_backend(&c);
    assert_eq!(waiting, 2, "both requests wait for the new backend");
    // Until the new backend is Connected, new I/O waits (a transient refusal), nothing fails.
    let e = c.h.borrow_mut().blk.submit_write(8 * MIB as u64, &small).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Resuming);
    assert!(e.is_busy());
    c.poll_only();
    assert!(poll_once(w1.as_mut()).is_pending() && poll_once(w2.as_mut()).is_pending());
    let disk = c.h.borrow().back.spec.disk_info();
    c.h.borrow_mut().blk.backend_connected(disk);
    assert_eq!(drive(&c, &mut w1, 5), Some(Ok(())));
    assert_eq!(drive(&c, &mut w2, 5), Some(Ok(())));
    let h = c.h.borrow();
    assert_eq!(h.back.disk[..MIB], big[..]);
    assert_eq!(h.back.disk[4 * MIB..4 * MIB + 4096], small[..]);
    assert!(h.back.violations.is_empty(), "{:?}", h.back.violations);
    assert_eq!(h.back.log.len(), 2, "the new backend got both, as they were (one indirect)");
    assert!(h.back.log.iter().any(|s| s.operation == BLKIF_OP_INDIRECT));
    assert_eq!((h.kicks.get(), kicks.get() > 0), (old_kicks, true), "only the new channel is kicked");
    let counters = h.blk.counters();
    assert_eq!((counters.resumes, counters.replayed, counters.replay_failed), (1, 2, 0));
    assert_eq!(counters.ops_failed, 0);
    drop(h);
    assert_whole(&c);
}

#[test]
fn resume_onto_a_disk_of_another_size_fails_what_was_pending_rather_than_write_elsewhere() {
    let c = cell(linux512());
    let data = pattern(4096, 3);
    let mut w = pin!(transfer::write(&c, 0, &data));
    assert!(poll_once(w.as_mut()).is_pending());
    let (_, waiting) = resume_to_new_backend(&c);
    assert_eq!(waiting, 1);
    let mut disk = c.h.borrow().back.spec.disk_info();
    disk.sectors /= 2;
    c.h.borrow_mut().blk.backend_connected(disk);
    let e = drive(&c, &mut w, 5).unwrap().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BackendClosed);
    assert!(c.h.borrow().back.log.is_empty(), "nothing sent to the changed disk");
    assert_eq!(c.h.borrow().blk.counters().replay_failed, 1);
}

#[test]
fn resume_onto_a_backend_with_fewer_indirect_segments_fails_only_the_indirect_requests() {
    let c = cell(linux512());
    let big = pattern(MIB, 4);
    let small = pattern(4096, 5);
    let mut w1 = pin!(transfer::write(&c, 0, &big));
    let mut w2 = pin!(transfer::write(&c, 4 * MIB as u64, &small));
    assert!(poll_once(w1.as_mut()).is_pending() && poll_once(w2.as_mut()).is_pending());
    let (_, waiting) = resume_to_new_backend(&c);
    assert_eq!(waiting, 2);
    let mut disk = c.h.borrow().back.spec.disk_info();
    disk.features.max_indirect_segments = 0;
    c.h.borrow_mut().blk.backend_connected(disk);
    assert_eq!(drive(&c, &mut w1, 5).unwrap().unwrap_err().kind, ErrorKind::BackendClosed);
    assert_eq!(drive(&c, &mut w2, 5), Some(Ok(())));
    assert_eq!(c.h.borrow().back.disk[4 * MIB..4 * MIB + 4096], small[..]);
    assert_eq!(c.h.borrow().blk.counters().replay_failed, 1);
}

#[test]
fn resume_of_an_idle_disk_replays_nothing_and_io_goes_on() {
    let c = cell(linux512());
    let (_, waiting) = resume_to_new_backend(&c);
    assert_eq!(waiting, 0);
    let disk = c.h.borrow().back.spec.disk_info();
    c.h.borrow_mut().blk.backend_connected(disk);
    let data = pattern(8192, 6);
    assert_eq!(drive(&c, transfer::write(&c, 512, &data), 5), Some(Ok(())));
    let mut out = vec![0; 8192];
    assert_eq!(drive(&c, transfer::read(&c, 512, &mut out), 5), Some(Ok(())));
    assert_eq!(out, data);
    assert_whole(&c);
}
