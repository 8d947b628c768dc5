//! Connecting a vbd through xenstore. Linux's blkback publishes its keys in two batches, and we read each when it
//! is there:
//! - by InitWait (written at probe): `max-ring-page-order`, `feature-max-indirect-segments`,
//!   `multi-queue-max-queues`: [`read_backend_params`], then [`Transport::negotiate`] picks the ring size and
//!   indirect segments before the ring is allocated;
//! - by Connected (written in its connect transaction, after it mapped our ring): `sectors`, `info`, `sector-size`,
//!   `physical-sector-size`, `feature-flush-cache`, `feature-barrier`, `feature-discard` (+ `discard-*`),
//!   `feature-persistent`: [`read_disk_info`], so the geometry is read only after the backend is Connected.
//!
//! [`write_connect_keys`] publishes our ring refs, event channel, protocol and state Initialised in one
//! transaction; [`connect`] is the whole step, ending with our state Connected.

use core::fmt;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::device::{Blkfront, BlockBuffers, FlushMethod};
use super::disk_config::DiskConfig;
use super::wire::{
    BLKIF_MAX_SEGMENTS_PER_REQUEST, ENTRY_SIZE, MAX_INDIRECT_SEGMENTS, PAGE_SIZE, PROTOCOL_X86_64, SECTOR_SIZE,
    SEGMENTS_PER_INDIRECT_PAGE, VDISK_CDROM, VDISK_READONLY, VDISK_REMOVABLE,
};
use crate::frontend::{self, DeviceId, DeviceInfo, FrontendError, XenbusState};
use crate::grant::GrantRef;
use crate::ring::{ring_size_for_pages, Notify, SharedRing};
use crate::xenstore::{InlineStr, Tx, Xenstore, XsError, XsPlatform, XsRing};

/// Our largest ring: 2^4 = 16 pages, 512 requests (Linux's `XENBUS_MAX_RING_GRANT_ORDER`).
pub const MAX_RING_PAGE_ORDER: u32 = 4;
/// Our default most segments per indirect request: 256 pages, 1 MiB (what Linux's blkback offers).
pub const DEFAULT_MAX_INDIRECT_SEGMENTS: u32 = 256;

/// What we are willing to use, before the backend has its say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest ring page order (capped at [`MAX_RING_PAGE_ORDER`]).
    pub max_ring_page_order: u32,
    /// The most segments per indirect request (capped at 8 pages of 512; 11 or fewer means no indirect requests).
    pub max_indirect_segments: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_ring_page_order: MAX_RING_PAGE_ORDER, max_indirect_segments: DEFAULT_MAX_INDIRECT_SEGMENTS }
    }
}

impl Limits {
    /// The limits the command line asks for: `blk-segments=N` caps the segments (4 KiB pages) per request, from 11
    /// (direct requests only, 44 KiB) to 256 (1 MiB, the default). Smaller requests mean more of them in flight in
    /// the same data pages; `lookup` maps a key to its value. A value out of range or not a number is an error
    /// naming the key, never silently clamped. ([`DiskConfig::from_lookup`]'s limits.)
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<Limits, String> {
        DiskConfig::from_lookup(lookup).map(|config| config.limits()).map_err(|e| format!("{e}"))
    }
}

/// The backend's transport parameters, published by InitWait (a missing key means 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendParams {
    /// `max-ring-page-order`: the largest ring it maps, as a power of two of pages. (The deprecated
    /// `max-ring-pages` is not read.)
    pub max_ring_page_order: u32,
    /// `feature-max-indirect-segments`: the most segments it takes per indirect request (0: none).
    pub max_indirect_segments: u32,
    /// `multi-queue-max-queues` (we use one queue, written the single-queue way).
    pub max_queues: u32,
}

/// The transport in use: the ring size and the indirect segments per request, agreed before connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    /// The ring spans 2^order pages (`ring-page-order`; 0 writes the single-page `ring-ref`).
    pub ring_page_order: u32,
    /// Segments per indirect request (0: no indirect requests).
    pub indirect_segments: u32,
}

impl Transport {
    /// One page, no indirect requests: what every backend takes.
    pub const BASIC: Transport = Transport { ring_page_order: 0, indirect_segments: 0 };

    /// The smaller of the backend's and our ring page order; the smaller of the backend's and our indirect
    /// segments (none if that is not more than the 11 a direct request holds).
    pub fn negotiate(backend: &BackendParams, limits: Limits) -> Transport {
        let ring_page_order = backend.max_ring_page_order.min(limits.max_ring_page_order).min(MAX_RING_PAGE_ORDER);
        let segments =
            backend.max_indirect_segments.min(limits.max_indirect_segments).min(MAX_INDIRECT_SEGMENTS as u32);
        let indirect_segments = if segments as usize > BLKIF_MAX_SEGMENTS_PER_REQUEST { segments } else { 0 };
        Transport { ring_page_order, indirect_segments }
    }

    /// Pages in the ring (and ring refs to grant).
    pub fn ring_pages(&self) -> usize {
        1 << self.ring_page_order
    }

    /// Requests the ring holds (`__CONST_RING_SIZE(blkif, pages * 4096)`).
    pub fn ring_size(&self) -> u32 {
        ring_size_for_pages(self.ring_pages(), ENTRY_SIZE)
    }

    /// Indirect descriptor pages each indirect request needs (0 without indirect requests).
    pub fn indirect_pages_per_request(&self) -> u32 {
        self.indirect_segments.div_ceil(SEGMENTS_PER_INDIRECT_PAGE as u32)
    }
}

/// What the backend says it can do, as read once it is Connected (a missing key means 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskFeatures {
    /// `feature-flush-cache`: `BLKIF_OP_FLUSH_DISKCACHE`.
    pub flush_cache: bool,
    /// `feature-barrier`: `BLKIF_OP_WRITE_BARRIER`.
    pub barrier: bool,
    /// `feature-discard`: `BLKIF_OP_DISCARD`.
    pub discard: bool,
    /// `discard-secure`.
    pub discard_secure: bool,
    /// `discard-granularity` in bytes (the sector size if absent).
    pub discard_granularity: u32,
    /// `discard-alignment` in bytes.
    pub discard_alignment: u32,
    /// `feature-persistent`: it keeps our grants mapped (we reuse the same pages for the device's lifetime).
    pub persistent: bool,
    /// `feature-max-indirect-segments`, read again: the device uses the smaller of this and what
    /// [`Transport::negotiate`] agreed before connecting.
    pub max_indirect_segments: u32,
}

/// The disk, as the backend describes it once Connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// `sectors`: the size in **512-byte** sectors, whatever the sector size. (The installed blkif.h says
    /// `sector-size` units for a frontend writing `feature-large-sector-size`; Linux never followed that, and
    /// upstream Xen since deprecated that node and says 512-byte units always. We do not write it.)
    pub sectors: u64,
    /// `sector-size`: the logical sector size in bytes, a power of two from 512 to 4096. Every transfer is a whole
    /// number of these, at a multiple of it.
    pub sector_size: u32,
    /// `physical-sector-size` (the logical size if absent), a multiple of it.
    pub physical_sector_size: u32,
    /// `info`: `VDISK_*` bits.
    pub info: u32,
    /// Writes are refused: `mode` is "r" or `info` has `VDISK_READONLY`.
    pub read_only: bool,
    /// Optional operations.
    pub features: DiskFeatures,
}

impl DiskInfo {
    /// The size in bytes.
    pub fn capacity(&self) -> u64 {
        self.sectors * SECTOR_SIZE as u64
    }

    /// The size in logical sectors.
    pub fn logical_sectors(&self) -> u64 {
        self.capacity() / u64::from(self.sector_size)
    }

    /// `VDISK_CDROM`.
    pub fn is_cdrom(&self) -> bool {
        self.info & VDISK_CDROM != 0
    }

    /// `VDISK_REMOVABLE`.
    pub fn is_removable(&self) -> bool {
        self.info & VDISK_REMOVABLE != 0
    }

    /// How a flush is done: `FLUSH_DISKCACHE` if offered, else `WRITE_BARRIER` if offered, else none (see
    /// [`ErrorKind::NoFlush`](super::ErrorKind::NoFlush)).
    pub fn flush_method(&self) -> Option<FlushMethod> {
        if self.features.flush_cache {
            Some(FlushMethod::FlushDiskCache)
        } else if self.features.barrier {
            Some(FlushMethod::Barrier)
        } else {
            None
        }
    }
}

/// Why a vbd cannot be configured or connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Reading or writing xenstore, or the backend's state (a timeout, the backend closing).
    Frontend(FrontendError),
    /// A key the backend must write by Connected is missing.
    MissingBackendKey {
        /// The device.
        device: DeviceId,
        /// The key, under the backend's directory.
        key: &'static str,
    },
    /// A backend key holds a value we cannot use.
    BadBackendValue {
        /// The device.
        device: DeviceId,
        /// The key, under the backend's directory.
        key: &'static str,
        /// Its value.
        value: InlineStr<24>,
        /// What it should be.
        expected: &'static str,
    },
    /// The ring refs given do not match the transport's ring size.
    RingRefs {
        /// The device.
        device: DeviceId,
        /// Ring refs given.
        given: usize,
        /// Pages in the ring.
        pages: usize,
    },
}

impl From<FrontendError> for ConfigError {
    fn from(e: FrontendError) -> Self {
        ConfigError::Frontend(e)
    }
}

impl From<XsError> for ConfigError {
    fn from(e: XsError) -> Self {
        ConfigError::Frontend(FrontendError::Xenstore(e))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::Frontend(e) => write!(f, "{e}"),
            ConfigError::MissingBackendKey { device, key } => {
                write!(f, "{device}: the backend did not write {key} (it must by the time it is Connected)")
            }
            ConfigError::BadBackendValue { device, key, value, expected } => {
                write!(f, "{device}: the backend's {key} holds {value:?}; expected {expected}")
            }
            ConfigError::RingRefs { device, given, pages } => {
                write!(f, "{device}: {given} ring refs given for a {pages}-page ring (one per page, a power of two)")
            }
        }
    }
}

/// Display already says everything (it includes the wrapped error's message); `source` is there for code that
/// inspects the cause (`downcast_ref`), not for printing a chain.
impl core::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ConfigError::Frontend(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads the backend's transport parameters. Call once it is in InitWait.
pub fn read_backend_params<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
) -> Result<BackendParams, ConfigError> {
    let mut keys = BackendKeys { xs, dev };
    Ok(BackendParams {
        max_ring_page_order: keys.u32_or_zero("max-ring-page-order")?,
        max_indirect_segments: keys.u32_or_zero("feature-max-indirect-segments")?,
        max_queues: keys.u32_or_zero("multi-queue-max-queues")?,
    })
}

/// Reads and checks the disk's geometry and features. Call once the backend is Connected (Linux's blkback writes
/// them in the transaction that precedes its Connected).
pub fn read_disk_info<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
) -> Result<DiskInfo, ConfigError> {
    let device = dev.device();
    let mut keys = BackendKeys { xs, dev };
    let (sectors_text, sectors) = keys.required_u64("sectors")?;
    let (size_text, sector_size) = keys.required_u64("sector-size")?;
    let bad = |key, value: &[u8], expected| ConfigError::BadBackendValue {
        device,
        key,
        value: InlineStr::from_bytes(value),
        expected,
    };
    let sector_size = u32::try_from(sector_size)
        .ok()
        .filter(|s| s.is_power_of_two() && (SECTOR_SIZE as u32..=PAGE_SIZE as u32).contains(s))
        .ok_or_else(|| bad("sector-size", &size_text, "a power of two from 512 to 4096"))?;
    if sectors == 0 || sectors.checked_mul(SECTOR_SIZE as u64).is_none() {
        return Err(bad("sectors", &sectors_text, "a non-zero size in 512-byte sectors"));
    }
    if !sectors.is_multiple_of(u64::from(sector_size) / SECTOR_SIZE as u64) {
        return Err(bad("sectors", &sectors_text, "a whole number of sector-size sectors (in 512-byte units)"));
    }
    let physical_sector_size = match keys.optional_u32("physical-sector-size")? {
        None => sector_size,
        Some((_, p)) if p != 0 && p.is_multiple_of(sector_size) => p,
        Some((text, _)) => return Err(bad("physical-sector-size", &text, "a multiple of sector-size")),
    };
    let info = match keys.optional_u32("info")? {
        Some((_, info)) => info,
        None => return Err(ConfigError::MissingBackendKey { device, key: "info" }),
    };
    let mode_read_only = match keys.xs.read_optional(Tx::NONE, &dev.backend_key("mode"))? {
        None => false,
        Some(m) if m == b"r" => true,
        // blkback: writable if the mode contains a 'w' ("w", or "w!" to force sharing).
        Some(m) if m.contains(&b'w') => false,
        Some(m) => return Err(bad("mode", &m, "\"r\" or \"w\"")),
    };
    let flag = |keys: &mut BackendKeys<R, P>, key| keys.u32_or_zero(key).map(|v| v != 0);
    let features = DiskFeatures {
        flush_cache: flag(&mut keys, "feature-flush-cache")?,
        barrier: flag(&mut keys, "feature-barrier")?,
        discard: flag(&mut keys, "feature-discard")?,
        discard_secure: flag(&mut keys, "discard-secure")?,
        discard_granularity: keys.optional_u32("discard-granularity")?.map_or(sector_size, |(_, g)| g),
        discard_alignment: keys.u32_or_zero("discard-alignment")?,
        persistent: flag(&mut keys, "feature-persistent")?,
        max_indirect_segments: keys.u32_or_zero("feature-max-indirect-segments")?,
    };
    Ok(DiskInfo {
        sectors,
        sector_size,
        physical_sector_size,
        info,
        read_only: mode_read_only || info & VDISK_READONLY != 0,
        features,
    })
}

/// Reads the backend's numeric keys, naming the device and key in every error.
struct BackendKeys<'a, R: XsRing, P: XsPlatform> {
    xs: &'a mut Xenstore<R, P>,
    dev: &'a DeviceInfo,
}

impl<R: XsRing, P: XsPlatform> BackendKeys<'_, R, P> {
    fn optional_u64(&mut self, key: &'static str) -> Result<Option<(Vec<u8>, u64)>, ConfigError> {
        let Some(text) = self.xs.read_optional(Tx::NONE, &self.dev.backend_key(key))? else { return Ok(None) };
        match parse_u64(&text) {
            Some(value) => Ok(Some((text, value))),
            None => Err(ConfigError::BadBackendValue {
                device: self.dev.device(),
                key,
                value: InlineStr::from_bytes(&text),
                expected: "a decimal number",
            }),
        }
    }

    fn optional_u32(&mut self, key: &'static str) -> Result<Option<(Vec<u8>, u32)>, ConfigError> {
        match self.optional_u64(key)? {
            None => Ok(None),
            Some((text, value)) => match u32::try_from(value) {
                Ok(value) => Ok(Some((text, value))),
                Err(_) => Err(ConfigError::BadBackendValue {
                    device: self.dev.device(),
                    key,
                    value: InlineStr::from_bytes(&text),
                    expected: "a 32-bit number",
                }),
            },
        }
    }

    fn u32_or_zero(&mut self, key: &'static str) -> Result<u32, ConfigError> {
        Ok(self.optional_u32(key)?.map_or(0, |(_, v)| v))
    }

    fn required_u64(&mut self, key: &'static str) -> Result<(Vec<u8>, u64), ConfigError> {
        self.optional_u64(key)?.ok_or(ConfigError::MissingBackendKey { device: self.dev.device(), key })
    }
}

/// A decimal `u64` with no sign, spaces or excess digits.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Writes, in one transaction (run again from the start if the commit answers `EAGAIN`): the ring's grant refs
/// (`ring-ref` for one page; `ring-page-order` and `ring-ref0`..`ring-ref<N-1>` for 2^order pages),
/// `event-channel`, `protocol` = `x86_64-abi`, `feature-persistent` = 1 (every page we grant is granted once,
/// writable, and reused), and our `state` = Initialised (3). The backend sees all of them at once or none.
pub fn write_connect_keys<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    ring_refs: &[GrantRef],
    event_channel: u32,
) -> Result<(), ConfigError> {
    let pages = ring_refs.len();
    if !pages.is_power_of_two() || pages > 1 << MAX_RING_PAGE_ORDER {
        return Err(ConfigError::RingRefs { device: dev.device(), given: pages, pages: pages.next_power_of_two() });
    }
    let mut values: Vec<(String, String)> = Vec::with_capacity(pages + 5);
    if pages == 1 {
        values.push(("ring-ref".into(), format!("{}", ring_refs[0].0)));
    } else {
        values.push(("ring-page-order".into(), format!("{}", pages.trailing_zeros())));
        for (i, r) in ring_refs.iter().enumerate() {
            values.push((format!("ring-ref{i}"), format!("{}", r.0)));
        }
    }
    values.push(("event-channel".into(), format!("{event_channel}")));
    values.push(("protocol".into(), PROTOCOL_X86_64.into()));
    values.push(("feature-persistent".into(), "1".into()));
    xs.transaction(|xs, tx| {
        for (key, value) in &values {
            xs.write(tx, &dev.frontend_key(key), value.as_bytes())?;
        }
        frontend::set_state(xs, tx, dev, XenbusState::Initialised)
    })?;
    Ok(())
}

/// The connect step, with the backend in InitWait and the device built ([`Blkfront::new`]) on the granted ring:
/// writes the connect keys ([`write_connect_keys`]), waits for the backend to reach Connected, reads the disk
/// ([`read_disk_info`]), writes our state Connected (4), and only then lets the device take I/O
/// ([`Blkfront::backend_connected`]). On an error the device stays unconnected; close the device
/// ([`frontend::close`]).
pub fn connect<R: XsRing, P: XsPlatform, S: SharedRing, B: BlockBuffers, E: Notify>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    blkfront: &mut Blkfront<S, B, E>,
    ring_refs: &[GrantRef],
    event_channel: u32,
    timeout_ns: u64,
) -> Result<DiskInfo, ConfigError> {
    let pages = blkfront.transport().ring_pages();
    if ring_refs.len() != pages {
        return Err(ConfigError::RingRefs { device: dev.device(), given: ring_refs.len(), pages });
    }
    write_connect_keys(xs, dev, ring_refs, event_channel)?;
    frontend::wait_for_backend(xs, dev, &[XenbusState::Connected], timeout_ns)?;
    let disk = read_disk_info(xs, dev)?;
    frontend::set_state(xs, Tx::NONE, dev, XenbusState::Connected)?;
    blkfront.backend_connected(disk);
    Ok(disk)
}
