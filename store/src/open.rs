//! Opening a store (superblock, then replay) and formatting a disk for one.

use alloc::vec;

use crate::disk::Disk;
use crate::error::Error;
use crate::index::Index;
use crate::log::{Geometry, COUNTER_LIMIT};
use crate::record::{HEADER_LEN, MAX_KEY_LEN};
use crate::recovery::{replay, OnCorruption, Recovery, Tail};
use crate::scan::View;
use crate::store::{LogState, Store};
use crate::superblock::{newest, SlotError, Superblock, SLOTS};

/// The default largest value: 1 MiB.
pub const DEFAULT_MAX_VALUE_LEN: u32 = 1 << 20;
/// The largest value limit a store can be formatted with: 16 MiB (a batch is held in memory while written).
pub const MAX_VALUE_LEN_LIMIT: u32 = 16 << 20;
/// The log must hold at least this many batch limits: two are kept free
/// (see [`Stats::batch_limit`](crate::Stats::batch_limit)).
const MIN_LOG_BATCHES: u64 = 4;

/// How [`Store::format`] lays out a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatOptions {
    /// Anything that differs between two formats of the same disk, such as the wall-clock time in nanoseconds.
    /// It is mixed with the id of the store being replaced (when its superblock is readable) into the new
    /// store's volume id, which every record carries, so that no record of the old store is taken for one of the
    /// new store.
    pub volume_nonce: u64,
    /// The largest value, in bytes (1 to [`MAX_VALUE_LEN_LIMIT`]). It sets the batch limit, and two batch limits
    /// of the log are kept free for compaction and deletes, so keep it well below the disk size.
    pub max_value_len: u32,
}

impl Default for FormatOptions {
    fn default() -> FormatOptions {
        FormatOptions { volume_nonce: 0, max_value_len: DEFAULT_MAX_VALUE_LEN }
    }
}

/// How [`Store::open_with`] treats what it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// What to do about acknowledged data damaged in the middle of the log.
    pub on_corruption: OnCorruption,
}

impl<D: Disk> Store<D> {
    /// Opens the store on `disk`, refusing if acknowledged data is damaged in the middle of the log.
    pub async fn open(disk: D) -> Result<Store<D>, Error> {
        Store::open_with(disk, OpenOptions::default()).await
    }

    /// Opens the store on `disk`: reads the superblock, replays the log into the index, and drops (and reports
    /// in [`Store::recovery`]) a torn tail.
    pub async fn open_with(disk: D, options: OpenOptions) -> Result<Store<D>, Error> {
        let (log, index, recovery) = load(&disk, options).await?;
        Ok(Store { disk, log, index, recovery, poisoned: None })
    }

    /// Formats `disk` as an empty store, replacing whatever it held.
    pub async fn format(disk: D, options: FormatOptions) -> Result<Store<D>, Error> {
        let log = format(&disk, options).await?;
        Ok(Store::empty(disk, log))
    }

    /// Opens the store on `disk`, or formats it if it holds none ([`Error::NotFormatted`]: no superblock at all).
    /// A disk whose superblocks are both damaged is *not* formatted over.
    pub async fn open_or_format(disk: D, options: FormatOptions) -> Result<Store<D>, Error> {
        match load(&disk, OpenOptions::default()).await {
            Ok((log, index, recovery)) => Ok(Store { disk, log, index, recovery, poisoned: None }),
            Err(Error::NotFormatted) => {
                let log = format(&disk, options).await?;
                Ok(Store::empty(disk, log))
            }
            Err(e) => Err(e),
        }
    }

    fn empty(disk: D, log: LogState) -> Store<D> {
        let recovery = Recovery {
            records_replayed: 0,
            superblock_generation: log.sb.generation,
            damaged_superblock: None,
            tail: Tail::Clean,
        };
        Store { disk, log, index: Index::default(), recovery, poisoned: None }
    }
}

/// The sector size, if the store can use it.
fn sector_size<D: Disk>(disk: &D) -> Result<u64, Error> {
    let s = disk.sector_size();
    if !s.is_power_of_two() || !(512..=65536).contains(&s) {
        return Err(Error::BadSectorSize(s));
    }
    Ok(u64::from(s))
}

/// The batch limit for a value limit: the largest record, padded to a sector.
fn batch_limit(sector: u64, max_value_len: u32) -> u64 {
    (HEADER_LEN as u64 + MAX_KEY_LEN as u64 + u64::from(max_value_len)).div_ceil(sector) * sector
}

/// Reads both superblock slots.
async fn read_slots<D: Disk>(disk: &D, sector: u64) -> Result<[Result<Superblock, SlotError>; 2], Error> {
    let mut buf = vec![0u8; (SLOTS * sector) as usize];
    disk.read(0, &mut buf).await?;
    let (a, b) = buf.split_at(sector as usize);
    Ok([Superblock::parse(a), Superblock::parse(b)])
}

/// Reads the superblock, checks it against the disk, and replays the log.
async fn load<D: Disk>(disk: &D, options: OpenOptions) -> Result<(LogState, Index, Recovery), Error> {
    let sector = sector_size(disk)?;
    if disk.capacity() < SLOTS * sector {
        return Err(Error::DiskTooSmall { capacity: disk.capacity(), needed: SLOTS * sector });
    }
    let slots = read_slots(disk, sector).await?;
    let Some((sb, slot)) = newest(&slots) else {
        return Err(match slots {
            [Err(SlotError::NoMagic), Err(SlotError::NoMagic)] => Error::NotFormatted,
            [Err(SlotError::Version(v)), _] | [_, Err(SlotError::Version(v))] => Error::UnsupportedVersion(v),
            _ => Error::SuperblockDamaged,
        });
    };
    if u64::from(sb.sector_size) != sector {
        return Err(Error::SectorSizeChanged { formatted: sb.sector_size, device: sector as u32 });
    }
    if sb.log_start != SLOTS * sector {
        return Err(Error::BadSuperblock("log area does not follow the superblocks"));
    }
    if sb.max_value_len == 0 || sb.max_value_len > MAX_VALUE_LEN_LIMIT {
        return Err(Error::BadSuperblock("value limit out of range"));
    }
    let batch_limit = batch_limit(sector, sb.max_value_len);
    if !sb.log_len.is_multiple_of(sector) || sb.log_len < MIN_LOG_BATCHES * batch_limit {
        return Err(Error::BadSuperblock("log area too small for its limits, or not whole sectors"));
    }
    if !sb.head.is_multiple_of(sector) || sb.seq_floor == 0 {
        return Err(Error::BadSuperblock("head not on a sector, or sequence floor zero"));
    }
    if sb.log_start + sb.log_len > disk.capacity() {
        return Err(Error::DiskTooSmall { capacity: disk.capacity(), needed: sb.log_start + sb.log_len });
    }
    let geo = Geometry { sector, start: sb.log_start, len: sb.log_len };
    let view = View { disk, geo, volume: sb.volume, max_value_len: sb.max_value_len, limit: sb.head + sb.log_len };
    let replayed = replay(&view, sb.head, sb.seq_floor, batch_limit, options.on_corruption).await?;
    if replayed.next_seq > COUNTER_LIMIT {
        return Err(Error::BadSuperblock("sequence numbers in the log past any a store reaches"));
    }
    let log = LogState {
        geo,
        volume: sb.volume,
        max_value_len: sb.max_value_len,
        batch_limit,
        sb,
        sb_slot: slot,
        head: sb.head,
        tail: replayed.tail,
        next_seq: replayed.next_seq,
        records: replayed.records,
    };
    let recovery = Recovery {
        records_replayed: replayed.records,
        superblock_generation: sb.generation,
        damaged_superblock: match slots[1 - slot] {
            Err(SlotError::BadChecksum | SlotError::Impossible) => Some((1 - slot) as u8),
            _ => None,
        },
        tail: replayed.tail_state,
    };
    Ok((log, replayed.index, recovery))
}

/// Writes a fresh superblock into both slots.
async fn format<D: Disk>(disk: &D, options: FormatOptions) -> Result<LogState, Error> {
    let sector = sector_size(disk)?;
    if options.max_value_len == 0 || options.max_value_len > MAX_VALUE_LEN_LIMIT {
        return Err(Error::BadOption("max_value_len must be from 1 byte to 16 MiB"));
    }
    let batch_limit = batch_limit(sector, options.max_value_len);
    let log_start = SLOTS * sector;
    let needed = log_start + MIN_LOG_BATCHES * batch_limit;
    let capacity = disk.capacity();
    if capacity < needed {
        return Err(Error::DiskTooSmall { capacity, needed });
    }
    let log_len = (capacity - log_start) / sector * sector;
    // The store being replaced, if its superblock can be read: the new volume id must differ from its.
    let old = newest(&read_slots(disk, sector).await?).map(|(sb, _)| sb);
    let old_volume = old.map_or(0, |sb| sb.volume);
    let mut volume = mix(options.volume_nonce ^ old_volume.rotate_left(32));
    while volume == 0 || volume == old_volume {
        volume = mix(volume);
    }
    let sb = Superblock {
        sector_size: sector as u32,
        max_value_len: options.max_value_len,
        volume,
        generation: old.map_or(0, |sb| sb.generation) + 1,
        log_start,
        log_len,
        head: 0,
        seq_floor: 1,
        compactions: 0,
    };
    let mut buf = vec![0u8; (SLOTS * sector) as usize];
    for copy in buf.chunks_mut(sector as usize) {
        sb.emit(copy);
    }
    disk.write(0, &buf).await?;
    disk.flush().await?;
    Ok(LogState {
        geo: Geometry { sector, start: log_start, len: log_len },
        volume,
        max_value_len: options.max_value_len,
        batch_limit,
        sb,
        sb_slot: 0,
        head: 0,
        tail: 0,
        next_seq: 1,
        records: 0,
    })
}

/// SplitMix64's finaliser: spreads any change of the input over all bits.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
