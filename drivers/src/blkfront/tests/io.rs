//! Reads, writes, flushes and discards against the fake blkback's in-memory disk.

use super::*;
use crate::blkfront::fake::{harness, DATA_GREF_BASE, INDIRECT_GREF_BASE};
use crate::blkfront::wire::*;
use crate::blkfront::*;
use crate::ring::offsets;

#[test]
fn io_before_the_backend_is_connected_is_refused() {
    let mut h = harness(linux512(), Options::default());
    for e in [
        h.blk.submit_read(0, 512).unwrap_err(),
        h.blk.submit_write(0, &[0; 512]).unwrap_err(),
        h.blk.submit_flush().unwrap_err(),
        h.blk.submit_discard(0, 512).unwrap_err(),
    ] {
        assert_eq!(e.kind, ErrorKind::NotConnected);
    }
    assert_eq!(h.back.process(), 0);
    assert_eq!(h.blk.counters().refused, 4);
}

#[test]
fn a_small_write_and_read_round_trip() {
    let mut h = up(linux512());
    let data = pattern(3 * 512, 7);
    write_ok(&mut h, 512 * 5, &data);
    assert_eq!(&h.back.disk[512 * 5..512 * 8], &data[..], "on the disk");
    let seen = &h.back.log[0];
    assert_eq!((seen.operation, seen.sector, seen.handle, seen.segments.len()), (BLKIF_OP_WRITE, 5, 51712, 1));
    assert_eq!((seen.segments[0].first_sect, seen.segments[0].last_sect), (0, 2));
    assert!((DATA_GREF_BASE..DATA_GREF_BASE + 512).contains(&seen.segments[0].gref));
    assert_eq!(read_ok(&mut h, 512 * 5, 3 * 512), data);
    assert_eq!(read_ok(&mut h, 512 * 4, 512), vec![0; 512], "untouched sectors read back as zero");
    let c = h.blk.counters();
    assert_eq!((c.writes, c.reads, c.bytes_written, c.bytes_read, c.ops_ok), (1, 2, 1536, 2048, 3));
    assert!(h.back.violations.is_empty(), "{:?}", h.back.violations);
    assert_eq!(h.blk.free().data_pages, 512, "every page back in the pool");
}

#[test]
fn one_mebibyte_is_one_indirect_request() {
    let mut h = up(linux512());
    let data = pattern(MIB, 3);
    let op = h.blk.submit_write(MIB as u64, &data).unwrap();
    assert_eq!(h.back.process(), 1, "one ring request");
    let seen = h.back.log[0].clone();
    assert_eq!((seen.operation, seen.indirect_op, seen.sector), (BLKIF_OP_INDIRECT, Some(BLKIF_OP_WRITE), 2048));
    assert_eq!(seen.segments.len(), 256);
    assert!(seen.segments.iter().all(|s| (s.first_sect, s.last_sect) == (0, 7)));
    assert_eq!(seen.indirect_grefs.len(), 1);
    assert!(seen.indirect_grefs[0] >= INDIRECT_GREF_BASE);
    h.blk.poll();
    assert_eq!(h.blk.take_completion(op).unwrap().unwrap().result, Ok(MIB as u64));
    assert_eq!(&h.back.disk[MIB..2 * MIB], &data[..]);
    assert_eq!(read_ok(&mut h, MIB as u64, MIB), data);
    assert_eq!(h.back.log.len(), 2, "and the read too");
    let c = h.blk.counters();
    assert_eq!((c.requests, c.indirect_requests), (2, 2));
    assert_eq!(h.blk.free(), Resources { ring_slots: 512, data_pages: 512, indirect_pages: 16 });
    assert!(h.back.violations.is_empty(), "{:?}", h.back.violations);
}

#[test]
fn without_indirect_requests_a_transfer_splits_into_eleven_page_requests() {
    let mut h = up(DiskSpec::basic(512, DISK));
    assert_eq!((h.blk.ring_size(), h.blk.segments_per_request()), (32, 11));
    let data = pattern(MIB, 9);
    let op = h.blk.submit_write(4096, &data).unwrap();
    assert_eq!(h.back.process(), 24);
    let sizes: Vec<usize> = h.back.log.iter().map(|s| s.segments.len()).collect();
    assert_eq!(sizes[..23], [11; 23]);
    assert_eq!(sizes[23], 3);
    let sectors: Vec<u64> = h.back.log.iter().map(|s| s.sector).collect();
    assert_eq!(sectors[..3], [8, 8 + 88, 8 + 176], "each request 11 pages further");
    assert!(h.back.log.iter().all(|s| s.operation == BLKIF_OP_WRITE));
    h.blk.poll();
    assert_eq!(h.blk.take_completion(op).unwrap().unwrap().result, Ok(MIB as u64), "one completion for all 24");
    assert_eq!(read_ok(&mut h, 4096, MIB), data);
    assert_eq!(h.blk.counters().indirect_requests, 0);
}

#[test]
fn a_4096_byte_sector_disk_counts_in_512_byte_sectors_on_the_ring() {
    let mut h = up(linux4k());
    let data = pattern(3 * 4096, 5);
    write_ok(&mut h, 4096 * 3, &data);
    let seen = &h.back.log[0];
    assert_eq!((seen.operation, seen.sector), (BLKIF_OP_WRITE, 24), "logical sector 3 is 512-byte sector 24");
    assert!(seen.segments.iter().all(|s| (s.first_sect, s.last_sect) == (0, 7)), "whole pages");
    assert_eq!(&h.back.disk[4096 * 3..4096 * 6], &data[..]);
    assert_eq!(read_ok(&mut h, 4096 * 3, 3 * 4096), data);
    for (offset, len) in [(512, 4096), (4096, 512), (4096 + 2048, 4096)] {
        let e = h.blk.submit_write(offset, &vec![0; len]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unaligned { offset, len: len as u64, sector_size: 4096 });
    }
    let e = h.blk.submit_read(100, 4096).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vbd/51712: refused: offset 100 and length 4096 must both be multiples of the disk's 4096-byte sector size"
    );
    assert_eq!(h.back.log.len(), 2, "refused before touching the ring");
    assert!(h.back.violations.is_empty(), "{:?}", h.back.violations);
}

#[test]
fn unaligned_empty_and_out_of_range_transfers_are_refused_before_the_ring() {
    let mut h = up(linux512());
    let req_prod = h.back.ring.header(offsets::REQ_PROD);
    assert_eq!(
        h.blk.submit_read(1, 512).unwrap_err().kind,
        ErrorKind::Unaligned { offset: 1, len: 512, sector_size: 512 }
    );
    assert_eq!(
        h.blk.submit_write(0, &[0; 100]).unwrap_err().kind,
        ErrorKind::Unaligned { offset: 0, len: 100, sector_size: 512 }
    );
    assert_eq!(h.blk.submit_read(0, 0).unwrap_err().kind, ErrorKind::Empty);
    let e = h.blk.submit_read(DISK - 512, 1024).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange { offset: DISK - 512, len: 1024, capacity: DISK });
    assert_eq!(
        e.to_string(),
        "vbd/51712: refused: 1024 bytes at offset 8388096 run past the end of the 8388608-byte disk"
    );
    let e = h.blk.submit_read(u64::MAX - 511, 512).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange { offset: u64::MAX - 511, len: 512, capacity: DISK }, "no overflow");
    assert!(e.to_string().contains("run past"));
    assert_eq!(h.back.ring.header(offsets::REQ_PROD), req_prod);
    assert_eq!(h.blk.counters().refused, 5);
    read_ok(&mut h, DISK - 512, 512);
}

#[test]
fn transfers_larger_than_the_pages_allow_are_refused_with_the_limit() {
    let mut h = connected(linux512(), Options { data_pages: 64, ..Options::default() });
    assert_eq!(h.blk.max_transfer(), 64 * 4096);
    let e = h.blk.submit_read(0, 64 * 4096 + 512).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge { len: 64 * 4096 + 512, max: 64 * 4096 });
    assert!(e.to_string().contains("split it"), "{e}");
    read_ok(&mut h, 0, 64 * 4096);
    // Without indirect requests the ring bounds it too: 32 requests of 11 pages.
    let h = connected(DiskSpec::basic(512, DISK), Options { data_pages: 1024, ..Options::default() });
    assert_eq!(h.blk.max_transfer(), 32 * 11 * 4096);
    // And with few indirect pages, what they describe at once.
    let h = connected(linux512(), Options { data_pages: 4096, indirect_pages: 2, ..Options::default() });
    assert_eq!(h.blk.max_transfer(), 2 * 256 * 4096);
}

#[test]
fn a_read_only_disk_refuses_writes_and_discards() {
    let mut h = up(DiskSpec { read_only: true, ..linux512() });
    assert_eq!(h.blk.submit_write(0, &[1; 512]).unwrap_err().kind, ErrorKind::ReadOnly);
    assert_eq!(h.blk.submit_discard(0, 512).unwrap_err().kind, ErrorKind::ReadOnly);
    assert_eq!(
        h.blk.submit_write(0, &[1; 512]).unwrap_err().to_string(),
        "vbd/51712: refused: the disk is read-only (mode \"r\" or VDISK_READONLY)"
    );
    assert_eq!(h.back.process(), 0);
    read_ok(&mut h, 0, 4096);
    // A backend that refuses a write on its own says BLKIF_RSP_ERROR, and that reaches the caller.
    h.blk.backend_connected(DiskSpec { read_only: false, ..h.back.spec }.disk_info());
    let op = h.blk.submit_write(0, &[1; 512]).unwrap();
    let e = finish(&mut h, op).result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io { operation: BLKIF_OP_WRITE, sector: 0, sectors: 1 });
}

#[test]
fn flush_uses_flush_diskcache_when_offered() {
    let mut h = up(DiskSpec { barrier: true, ..linux512() });
    write_ok(&mut h, 0, &[1; 512]);
    let op = h.blk.submit_flush().unwrap();
    let c = finish(&mut h, op);
    assert_eq!((c.kind, c.result), (OpKind::Flush, Ok(0)));
    let seen = h.back.log.last().unwrap();
    assert_eq!((seen.operation, seen.segments.len(), seen.sector), (BLKIF_OP_FLUSH_DISKCACHE, 0, 0));
    assert_eq!((h.back.flushes, h.blk.counters().flushes), (1, 1));
}

#[test]
fn flush_falls_back_to_a_barrier_then_refuses() {
    let mut h = up(DiskSpec { flush_cache: false, barrier: true, ..linux512() });
    assert_eq!(h.blk.disk().unwrap().flush_method(), Some(FlushMethod::Barrier));
    let op = h.blk.submit_flush().unwrap();
    assert_eq!(finish(&mut h, op).result, Ok(0));
    assert_eq!(h.back.log.last().unwrap().operation, BLKIF_OP_WRITE_BARRIER);

    let mut h = up(DiskSpec { flush_cache: false, barrier: false, ..linux512() });
    let e = h.blk.submit_flush().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoFlush);
    assert!(e.to_string().contains("neither feature-flush-cache nor feature-barrier"), "{e}");
    assert_eq!(h.back.process(), 0);
}

#[test]
fn a_flush_answered_eopnotsupp_is_not_tried_that_way_again() {
    let mut h = up(DiskSpec { barrier: true, ..linux512() });
    h.back.refuse = vec![BLKIF_OP_FLUSH_DISKCACHE];
    let op = h.blk.submit_flush().unwrap();
    let e = finish(&mut h, op).result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported { operation: BLKIF_OP_FLUSH_DISKCACHE });
    assert_eq!(e.to_string(), "vbd/51712: the backend answered BLKIF_RSP_EOPNOTSUPP to BLKIF_OP_FLUSH_DISKCACHE");
    assert_eq!(h.blk.disk().unwrap().flush_method(), Some(FlushMethod::Barrier));
    let op = h.blk.submit_flush().unwrap();
    assert_eq!(finish(&mut h, op).result, Ok(0));
    h.back.refuse.push(BLKIF_OP_WRITE_BARRIER);
    let op = h.blk.submit_flush().unwrap();
    assert!(finish(&mut h, op).result.is_err());
    assert_eq!(h.blk.submit_flush().unwrap_err().kind, ErrorKind::NoFlush);
    assert_eq!(h.blk.counters().rsp_not_supported, 2);
}

#[test]
fn discard_zeroes_the_range_when_offered() {
    let mut h = up(linux4k());
    write_ok(&mut h, 0, &pattern(4 * 4096, 1));
    let op = h.blk.submit_discard(4096, 2 * 4096).unwrap();
    let c = finish(&mut h, op);
    assert_eq!((c.kind, c.result), (OpKind::Discard, Ok(8192)));
    let seen = h.back.log.last().unwrap();
    assert_eq!((seen.operation, seen.sector, seen.nr_sectors), (BLKIF_OP_DISCARD, 8, 16));
    assert!(h.back.disk[4096..3 * 4096].iter().all(|&b| b == 0));
    assert_ne!(h.back.disk[3 * 4096..4 * 4096], [0; 4096]);
    assert_eq!(
        h.blk.submit_discard(512, 4096).unwrap_err().kind,
        ErrorKind::Unaligned { offset: 512, len: 4096, sector_size: 4096 }
    );
    assert_eq!(h.blk.counters().bytes_discarded, 8192);

    let mut h = up(DiskSpec::basic(512, DISK));
    let e = h.blk.submit_discard(0, 512).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoDiscard);
    assert_eq!(e.to_string(), "vbd/51712: discard refused: the backend does not offer feature-discard");

    let mut h = up(linux512());
    h.back.refuse = vec![BLKIF_OP_DISCARD];
    let op = h.blk.submit_discard(0, 512).unwrap();
    assert_eq!(finish(&mut h, op).result.unwrap_err().kind, ErrorKind::NotSupported { operation: BLKIF_OP_DISCARD });
    assert_eq!(h.blk.submit_discard(0, 512).unwrap_err().kind, ErrorKind::NoDiscard, "withdrawn");
}

#[test]
fn many_operations_in_flight_complete_out_of_order() {
    let mut h = up(linux512());
    h.back.hold = true;
    let mut ops = Vec::new();
    for i in 0..20u64 {
        let data = pattern(8192, i as u8);
        ops.push((h.blk.submit_write(i * 8192, &data).unwrap(), data));
    }
    assert_eq!(h.blk.pending(), 20);
    assert_eq!(h.back.process(), 20);
    assert_eq!(h.blk.poll().completed, 0, "held");
    h.back.release_held_reversed();
    let summary = h.blk.poll();
    assert_eq!((summary.responses, summary.completed, summary.faults), (20, 20, 0));
    let order: Vec<OpId> = std::iter::from_fn(|| h.blk.next_completion()).map(|c| c.op).collect();
    let expected: Vec<OpId> = ops.iter().rev().map(|(op, _)| *op).collect();
    assert_eq!(order, expected, "completions in the order the backend answered");
    // Reads in flight together, collected in any order.
    h.back.hold = true;
    let reads: Vec<OpId> = (0..20u64).map(|i| h.blk.submit_read(i * 8192, 8192).unwrap()).collect();
    h.back.process();
    h.back.release_held();
    h.blk.poll();
    for (i, &op) in reads.iter().enumerate().rev() {
        assert!(h.blk.take_completion(op).unwrap().unwrap().result.is_ok());
        let mut out = vec![0; 8192];
        h.blk.read_into(op, &mut out).unwrap();
        assert_eq!(out, ops[i].1, "read {i}");
    }
    assert_eq!((h.blk.pending(), h.blk.completions_waiting()), (0, 0));
    assert_eq!(h.blk.free().data_pages, 512);
}

#[test]
fn busy_is_returned_when_pages_or_slots_run_out_and_clears_after_poll() {
    let mut h = connected(linux512(), Options { data_pages: 8, ..Options::default() });
    h.back.hold = true;
    let a = h.blk.submit_write(0, &[1; 6 * 4096]).unwrap();
    let e = h.blk.submit_write(0, &[2; 3 * 4096]).unwrap_err();
    assert!(e.is_busy());
    let needed = Resources { ring_slots: 1, data_pages: 3, indirect_pages: 0 };
    assert_eq!(
        e.kind,
        ErrorKind::Busy { needed, free: Resources { ring_slots: 511, data_pages: 2, indirect_pages: 16 } }
    );
    assert!(e.to_string().contains("retry after polling"), "{e}");
    h.back.process();
    h.blk.poll();
    assert!(h.blk.submit_write(0, &[2; 3 * 4096]).unwrap_err().is_busy(), "the backend has not answered yet");
    h.back.release_held();
    h.blk.poll();
    assert!(h.blk.take_completion(a).unwrap().unwrap().result.is_ok());
    h.blk.submit_write(0, &[2; 3 * 4096]).unwrap();
    assert_eq!(h.blk.counters().busy, 2);

    // Ring slots: a one-page ring holds 32 requests.
    let mut h = connected(DiskSpec::basic(512, DISK), Options::default());
    let ops: Vec<OpId> = (0..32).map(|i| h.blk.submit_read(i * 512, 512).unwrap()).collect();
    let e = h.blk.submit_read(0, 512).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Busy {
            needed: Resources { ring_slots: 1, data_pages: 1, indirect_pages: 0 },
            free: Resources { ring_slots: 0, data_pages: 480, indirect_pages: 16 }
        }
    );
    h.back.process();
    h.blk.poll();
    // A completed read holds its page until collected.
    for &op in &ops {
        h.blk.take_completion(op).unwrap().unwrap();
    }
    assert_eq!(h.blk.free().data_pages, 480);
    for &op in &ops {
        h.blk.release(op).unwrap();
    }
    assert_eq!(h.blk.free(), Resources { ring_slots: 32, data_pages: 512, indirect_pages: 16 });
}

#[test]
fn a_sixteen_page_ring_keeps_512_requests_in_flight() {
    let mut h = up(linux512());
    assert_eq!(h.blk.ring_size(), 512);
    let ops: Vec<OpId> = (0..512u64).map(|i| h.blk.submit_write(i * 512, &pattern(512, i as u8)).unwrap()).collect();
    assert!(h.blk.submit_flush().unwrap_err().is_busy());
    assert_eq!(h.back.process(), 512);
    assert_eq!(h.blk.poll().completed, 512);
    for (i, &op) in ops.iter().enumerate() {
        assert_eq!(h.blk.take_completion(op).unwrap().unwrap().result, Ok(512), "{i}");
    }
    assert_eq!(&h.back.disk[511 * 512..512 * 512], &pattern(512, 255)[..]);
}

#[test]
fn an_operation_completes_only_when_all_its_requests_are_answered() {
    let mut h = up(DiskSpec::basic(512, DISK));
    h.back.hold = true;
    let op = h.blk.submit_write(0, &pattern(25 * 4096, 4)).unwrap();
    assert_eq!(h.back.process(), 3, "11 + 11 + 3 pages");
    let rest = h.back.held.split_off(2);
    h.back.release_held();
    assert_eq!(h.blk.poll().completed, 0);
    assert_eq!(h.blk.take_completion(op), Ok(None), "pending");
    h.back.held = rest;
    h.back.release_held();
    assert_eq!(h.blk.poll().completed, 1);
    assert_eq!(h.blk.take_completion(op).unwrap().unwrap().result, Ok(25 * 4096));
}

#[test]
fn an_io_error_in_one_request_fails_the_whole_operation() {
    let mut h = up(DiskSpec::basic(512, DISK));
    h.back.error_sector = Some(100);
    let op = h.blk.submit_write(0, &pattern(25 * 4096, 4)).unwrap();
    let c = finish(&mut h, op);
    let e = c.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io { operation: BLKIF_OP_WRITE, sector: 88, sectors: 88 });
    assert_eq!(
        e.to_string(),
        "vbd/51712: I/O error: the backend answered BLKIF_RSP_ERROR to BLKIF_OP_WRITE of 512-byte sectors 88..176"
    );
    assert_eq!(h.blk.free().data_pages, 512, "its pages are free again");
    // A failed read has no data to collect.
    let op = h.blk.submit_read(0, 4096 * 30).unwrap();
    let c = finish(&mut h, op);
    assert!(c.result.is_err());
    assert_eq!(h.blk.read_into(op, &mut [0; 4096 * 30]).unwrap_err().kind, ErrorKind::UnknownOp { op });
    let counters = h.blk.counters();
    assert_eq!((counters.ops_failed, counters.rsp_error), (2, 2));
}

#[test]
fn completions_are_taken_once_and_read_data_needs_room() {
    let mut h = up(linux512());
    let op = h.blk.submit_read(0, 4096).unwrap();
    assert_eq!(h.blk.read_into(op, &mut [0; 4096]).unwrap_err().kind, ErrorKind::NotReadable { op });
    assert_eq!(h.blk.release(op).unwrap_err().kind, ErrorKind::NotReadable { op });
    h.back.process();
    h.blk.poll();
    assert_eq!(h.blk.read_into(op, &mut [0; 4096]).unwrap_err().kind, ErrorKind::NotReadable { op }, "not taken");
    let c = h.blk.next_completion().unwrap();
    assert_eq!((c.op, c.kind, c.result), (op, OpKind::Read, Ok(4096)));
    assert_eq!(h.blk.take_completion(op).unwrap_err().kind, ErrorKind::UnknownOp { op }, "already taken");
    let e = h.blk.read_into(op, &mut [0; 1000]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BufferTooSmall { len: 1000, needed: 4096 });
    let mut big = vec![0xff; 5000];
    assert_eq!(h.blk.read_into(op, &mut big), Ok(4096));
    assert_eq!(&big[..4096], &[0; 4096][..]);
    assert_eq!(&big[4096..], &[0xff; 904][..], "only the read's length is written");
    assert_eq!(h.blk.read_into(op, &mut big).unwrap_err().kind, ErrorKind::UnknownOp { op });
    // A stale id stays stale after its slot is reused.
    let next = h.blk.submit_read(0, 512).unwrap();
    assert_ne!(next, op);
    assert_eq!(h.blk.take_completion(op).unwrap_err().kind, ErrorKind::UnknownOp { op });
    assert!(ErrorKind::UnknownOp { op }.to_string().starts_with("op 0.1 is not an operation"));
}

#[test]
fn the_ring_wraps_around_u32() {
    let mut h = connected(linux512(), Options { ring_start: u32::MAX - 40, ..Options::default() });
    for i in 0..100u64 {
        let data = pattern(512 * (1 + i as usize % 20), i as u8);
        let offset = (i * 37 % 1000) * 512;
        write_ok(&mut h, offset, &data);
        assert_eq!(read_ok(&mut h, offset, data.len()), data, "round {i}");
    }
    assert_eq!(h.blk.counters().faults(), 0);
}

#[test]
fn the_backend_is_notified_only_when_it_waits_and_rearms_us() {
    let mut h = up(linux512());
    h.blk.submit_read(0, 512).unwrap();
    assert_eq!(h.kicks.get(), 1, "the backend waits for its first request");
    h.blk.submit_read(0, 512).unwrap();
    assert_eq!(h.kicks.get(), 1, "it has not gone idle since");
    h.back.process();
    assert_eq!(h.back.notified_front, 1, "rsp_event starts at 1");
    h.blk.submit_read(0, 512).unwrap();
    assert_eq!(h.kicks.get(), 2);
    h.blk.poll();
    h.back.process();
    assert_eq!(h.back.notified_front, 2, "re-armed by the final check in poll");
    assert_eq!(h.blk.counters().notifies, 2);
}

#[test]
fn counters_display_every_field() {
    let mut h = up(linux512());
    write_ok(&mut h, 0, &[1; 1024]);
    let text = h.blk.counters().to_string();
    assert!(text.starts_with("reads 0 (0 B) writes 1 (1024 B) flushes 0"), "{text}");
    assert!(text.ends_with("bad status 0, ring overruns 0"), "{text}");
}

#[test]
fn an_indirect_request_may_span_several_descriptor_pages() {
    let spec = DiskSpec { max_indirect_segments: 4096, ..linux512() };
    let limits = Limits { max_indirect_segments: 1024, ..Limits::default() };
    let mut h = connected(spec, Options { data_pages: 1024, indirect_pages: 4, limits, ring_start: 0 });
    assert_eq!((h.blk.indirect_segments(), h.blk.transport().indirect_pages_per_request()), (1024, 2));
    let data = pattern(4 * MIB, 6);
    write_ok(&mut h, 0, &data);
    let seen = &h.back.log[0];
    assert_eq!((seen.segments.len(), seen.indirect_grefs.len()), (1024, 2));
    assert!(seen.segments.iter().all(|s| (s.first_sect, s.last_sect) == (0, 7)));
    let pages: std::collections::BTreeSet<u32> = seen.segments.iter().map(|s| s.gref).collect();
    assert_eq!(pages.len(), 1024, "every segment its own data page");
    assert_eq!(read_ok(&mut h, 0, 4 * MIB), data);
    assert_eq!(h.blk.max_transfer(), 4 * MIB as u64, "two requests' worth of descriptor pages, all the data pages");
    assert!(h.back.violations.is_empty(), "{:?}", h.back.violations);
}

#[test]
fn indirect_segments_follow_the_backend_at_connect_and_the_pages_we_have() {
    // The backend lowers its offer between InitWait and Connected: the lower value is used.
    let mut h = harness(linux512(), Options::default());
    assert_eq!(h.blk.transport().indirect_segments, 256);
    let mut disk = linux512().disk_info();
    disk.features.max_indirect_segments = 64;
    h.blk.backend_connected(disk);
    assert_eq!((h.blk.indirect_segments(), h.blk.segments_per_request()), (64, 64));
    let op = h.blk.submit_write(0, &pattern(128 * 4096, 1)).unwrap();
    assert_eq!(finish(&mut h, op).result, Ok(128 * 4096));
    assert_eq!(h.back.log.iter().map(|s| s.segments.len()).collect::<Vec<_>>(), [64, 64]);
    // No indirect pages: direct requests only.
    let h = connected(linux512(), Options { indirect_pages: 0, ..Options::default() });
    assert_eq!((h.blk.indirect_segments(), h.blk.segments_per_request()), (0, 11));
}
