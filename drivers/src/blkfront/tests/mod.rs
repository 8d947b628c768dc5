//! blkfront against the fake blkback (`fake`): the ABI pinned against `xen/io/blkif.h`, the xenstore connection
//! against the fake xenstored, I/O round trips on 512- and 4096-byte-sector disks, and every hostile response.

mod hostile;
mod io;
mod scenario;
mod transfer;
mod wire;
mod xenbus;

use super::fake::{connected, DiskSpec, Harness, Options};
use super::{Completion, OpId};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The test disks' size.
const DISK: u64 = 8 * MIB as u64;

fn linux512() -> DiskSpec {
    DiskSpec::linux(512, DISK)
}

fn linux4k() -> DiskSpec {
    DiskSpec::linux(4096, DISK)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

/// A connected harness with the default options.
fn up(spec: DiskSpec) -> Harness {
    connected(spec, Options::default())
}

/// The backend processes everything, then we poll and take `op`'s completion.
fn finish(h: &mut Harness, op: OpId) -> Completion {
    h.back.process();
    h.blk.poll();
    h.blk.take_completion(op).unwrap().unwrap_or_else(|| panic!("{op} did not complete"))
}

fn write_ok(h: &mut Harness, offset: u64, data: &[u8]) {
    let op = h.blk.submit_write(offset, data).unwrap();
    assert_eq!(finish(h, op).result, Ok(data.len() as u64));
}

fn read_ok(h: &mut Harness, offset: u64, len: usize) -> Vec<u8> {
    let op = h.blk.submit_read(offset, len as u64).unwrap();
    assert_eq!(finish(h, op).result, Ok(len as u64));
    let mut out = vec![0; len];
    assert_eq!(h.blk.read_into(op, &mut out), Ok(len as u64));
    out
}
