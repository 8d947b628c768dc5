//! The log area as a circular byte space addressed by *log positions*.
//!
//! A log position is a byte count that only grows: the position of a record is the number of log bytes written
//! before it since the disk was formatted. Position `p` lives at disk byte `start + p % len`, so the log wraps
//! around the area, and the live log is always the half-open range `[head, tail)` with `tail - head <= len`.
//! Because a position never repeats, a record stores its own position and a stale record from an earlier lap is
//! recognised at once. This module turns positions into sector-aligned disk I/O, splitting at the wrap.

use alloc::vec;
use alloc::vec::Vec;

use crate::disk::{Disk, DiskError};

/// A bound on the counters on the disk: log positions, sequence numbers, superblock generations and compactions.
/// They start from zero at format and grow by at most one per byte written, so no store gets near 2^62 of any
/// of them (that is 4 EiB written). A checksum only says that a field was written whole, so open refuses a store
/// whose counters are past this bound, and a record's sequence number is parsed only below twice it: the store
/// can go on writing for longer than any disk lasts, and no arithmetic on a number read from the disk overflows.
pub(crate) const COUNTER_LIMIT: u64 = 1 << 62;

/// Bytes a [`Reader`] fetches at least per disk read, so that scanning small records is not one read per record.
const READ_CHUNK: u64 = 64 * 1024;

/// Where the log area is on the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Sector size in bytes.
    pub sector: u64,
    /// First disk byte of the log area (sector-aligned).
    pub start: u64,
    /// Length of the log area in bytes (whole sectors).
    pub len: u64,
}

impl Geometry {
    /// The disk byte offset of log position `pos`.
    pub fn disk_offset(&self, pos: u64) -> u64 {
        self.start + pos % self.len
    }

    /// `x` rounded up to a whole sector.
    pub fn align_up(&self, x: u64) -> u64 {
        x.div_ceil(self.sector) * self.sector
    }

    /// `x` rounded down to a whole sector.
    pub fn align_down(&self, x: u64) -> u64 {
        x - x % self.sector
    }
}

/// Reads the sector-aligned span at log position `pos` into `buf` (whole sectors), splitting at the wrap.
async fn read_span<D: Disk>(disk: &D, geo: &Geometry, mut pos: u64, buf: &mut [u8]) -> Result<(), DiskError> {
    let mut done = 0;
    while done < buf.len() {
        let offset = geo.disk_offset(pos);
        let room = (geo.start + geo.len - offset) as usize;
        let n = room.min(buf.len() - done);
        disk.read(offset, &mut buf[done..done + n]).await?;
        done += n;
        pos += n as u64;
    }
    Ok(())
}

/// Writes `data` (whole sectors) at the sector-aligned log position `pos`, splitting at the wrap.
pub(crate) async fn write<D: Disk>(disk: &D, geo: &Geometry, mut pos: u64, data: &[u8]) -> Result<(), DiskError> {
    debug_assert!(pos.is_multiple_of(geo.sector) && (data.len() as u64).is_multiple_of(geo.sector));
    let mut done = 0;
    while done < data.len() {
        let offset = geo.disk_offset(pos);
        let room = (geo.start + geo.len - offset) as usize;
        let n = room.min(data.len() - done);
        disk.write(offset, &data[done..done + n]).await?;
        done += n;
        pos += n as u64;
    }
    Ok(())
}

/// Overwrites `[pos, end)` (sector-aligned) with zeros, a chunk at a time. Not flushed.
pub(crate) async fn zero<D: Disk>(disk: &D, geo: &Geometry, mut pos: u64, end: u64) -> Result<(), DiskError> {
    let zeros = vec![0u8; READ_CHUNK as usize];
    while pos < end {
        let n = (end - pos).min(READ_CHUNK);
        write(disk, geo, pos, &zeros[..n as usize]).await?;
        pos += n;
    }
    Ok(())
}

/// Reads `len` bytes at any log position: whole sectors from the disk, the wanted bytes returned.
pub(crate) async fn read<D: Disk>(disk: &D, geo: &Geometry, pos: u64, len: usize) -> Result<Vec<u8>, DiskError> {
    let first = geo.align_down(pos);
    let mut span = vec![0u8; (geo.align_up(pos + len as u64) - first) as usize];
    read_span(disk, geo, first, &mut span).await?;
    let skip = (pos - first) as usize;
    span.truncate(skip + len);
    span.drain(..skip);
    Ok(span)
}

/// A read-ahead window over the log, for scanning records front to back.
pub(crate) struct Reader {
    /// Log position of `buf[0]` (sector-aligned).
    start: u64,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new() -> Reader {
        Reader { start: 0, buf: Vec::new() }
    }

    /// How many bytes from log position `pos` on are already buffered.
    pub fn buffered(&self, pos: u64) -> usize {
        let end = self.start + self.buf.len() as u64;
        if pos < self.start || pos >= end {
            return 0;
        }
        (end - pos) as usize
    }

    /// The `len` log bytes at `pos`, reading ahead at least [`READ_CHUNK`] bytes when they are not buffered.
    pub async fn bytes<D: Disk>(&mut self, disk: &D, geo: &Geometry, pos: u64, len: usize) -> Result<&[u8], DiskError> {
        let end = pos + len as u64;
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            let first = geo.align_down(pos);
            let last = geo.align_up(end).max(first + READ_CHUNK);
            self.buf.resize((last - first) as usize, 0);
            self.start = first;
            if let Err(e) = read_span(disk, geo, first, &mut self.buf).await {
                self.buf.clear();
                return Err(e);
            }
        }
        let at = (pos - self.start) as usize;
        Ok(&self.buf[at..at + len])
    }
}
