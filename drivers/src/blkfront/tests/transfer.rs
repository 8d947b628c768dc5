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
fn the_device_cell_sees_the_driver() {
    let c = cell(linux512());
    assert_eq!(c.with(|d| transfer::chunk(d, 512)), MIB as u64);
    let small = FakeCell::new(connected(linux4k(), Options { data_pages: 6, ..Options::default() }));
    assert_eq!(small.with(|d| transfer::chunk(d, 4096)), 3 * 4096);
}
