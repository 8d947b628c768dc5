//! The block device as the store sees it: whole sectors read, written and flushed, asynchronously.
//!
//! Blkfront implements [`Disk`] in the platform layer; the tests implement it over heap memory with a crash
//! simulator. Every method takes `&self` because several tasks may share the one device.

use core::fmt;

/// A block device: whole sectors at sector-aligned byte offsets, and a flush that makes completed writes durable.
///
/// A write that has completed but has not been flushed may be lost, or partly lost, by a crash: any subset of its
/// sectors may reach the medium. The store does not even rely on a single sector being written atomically (see
/// the crate documentation); it relies on [`Disk::flush`] meaning what it says.
// `async fn` in a public trait cannot promise that its futures are `Send`. Sirocco's executor runs every task on
// the one vCPU, so no caller needs them to be; a multi-threaded user would wrap the device instead.
#[allow(async_fn_in_trait)]
pub trait Disk {
    /// Logical sector size in bytes: a power of two from 512 to 65536 (in practice 512 or 4096). All I/O is whole
    /// sectors at sector-aligned byte offsets.
    fn sector_size(&self) -> u32;
    /// Capacity in bytes.
    fn capacity(&self) -> u64;
    /// Reads `buf.len()` bytes (a multiple of the sector size) starting at byte `offset` (sector-aligned).
    async fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Writes `buf` (a multiple of the sector size) at byte `offset` (sector-aligned). Not durable until
    /// [`Disk::flush`] returns.
    async fn write(&self, offset: u64, buf: &[u8]) -> Result<(), DiskError>;
    /// Makes every write that completed before this call durable.
    async fn flush(&self) -> Result<(), DiskError>;
}

/// A shared reference to a disk is a disk: the store can borrow a device that other tasks also use, and a test
/// can keep its fake to crash it.
impl<T: Disk + ?Sized> Disk for &T {
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn capacity(&self) -> u64 {
        (**self).capacity()
    }
    async fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        (**self).read(offset, buf).await
    }
    async fn write(&self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        (**self).write(offset, buf).await
    }
    async fn flush(&self) -> Result<(), DiskError> {
        (**self).flush().await
    }
}

/// Which disk operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// [`Disk::read`].
    Read,
    /// [`Disk::write`].
    Write,
    /// [`Disk::flush`].
    Flush,
}

/// What went wrong, as far as the device can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskErrorKind {
    /// The backend reported an I/O error.
    Io,
    /// The backend does not support the operation (a flush on a device without a write cache control).
    Unsupported,
    /// The range runs past the end of the device.
    OutOfRange,
    /// The offset or length is not a whole number of sectors.
    Misaligned,
    /// The device is gone (disconnected, or the backend closed it).
    Disconnected,
}

/// A failed disk operation: which operation, where, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskError {
    /// The operation.
    pub op: DiskOp,
    /// Its byte offset on the device (0 for a flush).
    pub offset: u64,
    /// Why it failed.
    pub kind: DiskErrorKind,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            DiskErrorKind::Io => "I/O error reported by the backend",
            DiskErrorKind::Unsupported => "operation not supported by the backend",
            DiskErrorKind::OutOfRange => "beyond the end of the device",
            DiskErrorKind::Misaligned => "not whole sectors",
            DiskErrorKind::Disconnected => "device disconnected",
        };
        match self.op {
            DiskOp::Read => write!(f, "disk read at byte {}: {why}", self.offset),
            DiskOp::Write => write!(f, "disk write at byte {}: {why}", self.offset),
            DiskOp::Flush => write!(f, "disk flush: {why}"),
        }
    }
}
