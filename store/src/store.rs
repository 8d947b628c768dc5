//! [`Store`]: the reads and the writes. Opening and formatting are in `open.rs`.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::batch::{Batch, Op};
use crate::disk::{Disk, DiskError};
use crate::error::{Damage, DamageKind, Error};
use crate::index::{Entry, Index};
use crate::log::{self, Geometry};
use crate::record::{key_of, value_of, Header, Kind, HEADER_LEN, MAX_KEY_LEN};
use crate::recovery::Recovery;
use crate::scan::View;
use crate::superblock::Superblock;

/// Counters and sizes, for a status page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Live keys.
    pub live_keys: u64,
    /// Bytes of the live keys and values.
    pub live_bytes: u64,
    /// Size of the log area in bytes.
    pub log_capacity: u64,
    /// Log bytes between head and tail: live records, superseded ones and tombstones not yet compacted.
    pub used_bytes: u64,
    /// Log bytes free. Puts leave two batch limits of it free; deletes leave one.
    pub free_bytes: u64,
    /// Records in the log between head and tail.
    pub records: u64,
    /// Compactions run since the disk was formatted.
    pub compactions: u64,
    /// The most log bytes one write (a put, or a [`Batch`]) may take, padding included.
    pub batch_limit: u64,
    /// The largest value, in bytes.
    pub max_value_len: u32,
    /// The disk's sector size.
    pub sector_size: u32,
    /// What open found.
    pub recovery: Recovery,
}

/// Where the log is and where it has got to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogState {
    pub geo: Geometry,
    pub volume: u64,
    pub max_value_len: u32,
    /// The most log bytes one batch may take (a multiple of the sector size).
    pub batch_limit: u64,
    /// The superblock in force, and the slot it is in.
    pub sb: Superblock,
    pub sb_slot: usize,
    /// Log position of the oldest live record (always on a sector).
    pub head: u64,
    /// Log position where the next batch goes (always on a sector).
    pub tail: u64,
    pub next_seq: u64,
    /// Records in `[head, tail)`.
    pub records: u64,
}

impl LogState {
    pub fn free(&self) -> u64 {
        self.head + self.geo.len - self.tail
    }
}

/// A record about to be written.
pub(crate) struct NewRecord<'a> {
    pub kind: Kind,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// A crash-safe key-value store in a log on a [`Disk`]. See the crate documentation for the format and the
/// guarantees.
///
/// Writes take `&mut self`: one writer at a time (a server wraps the store in a mutex and groups waiting writes
/// into a [`Batch`]). Reads take `&self`.
pub struct Store<D: Disk> {
    pub(crate) disk: D,
    pub(crate) log: LogState,
    pub(crate) index: Index,
    pub(crate) recovery: Recovery,
    /// Set when a write or flush fails: the disk's state is uncertain until replayed.
    pub(crate) poisoned: Option<DiskError>,
}

impl<D: Disk> Store<D> {
    /// The disk back, closing the store (nothing needs writing: every acknowledged write is already durable).
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// What open found: records replayed, and what was dropped from the end of the log, and why.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The write error that made the store read-only, if one did. Open the store again to recover.
    pub fn poisoned(&self) -> Option<DiskError> {
        self.poisoned
    }

    /// The value of `key`, read from the disk and checked against its checksum.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let Some(entry) = self.index.get(key).copied() else { return Ok(None) };
        let geo = self.log.geo;
        let len = HEADER_LEN + key.len() + entry.value_len as usize;
        let mut record = log::read(&self.disk, &geo, entry.pos, len).await?;
        let damage = |kind| Error::DamagedRecord(Damage { at: geo.disk_offset(entry.pos), kind });
        let header = Header::parse(&record).map_err(|_| damage(DamageKind::BadHeader))?;
        if header.volume != self.log.volume
            || header.pos != entry.pos
            || header.seq != entry.seq
            || header.len() != len as u64
            || key_of(&header, &record) != key
        {
            return Err(damage(DamageKind::Mismatch));
        }
        if !header.verify(&record) {
            return Err(damage(DamageKind::BadChecksum { seq: header.seq }));
        }
        let value_at = record.len() - value_of(&header, &record).len();
        record.drain(..value_at);
        Ok(Some(record))
    }

    /// Whether `key` is live (no disk access).
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.index.get(key).is_some()
    }

    /// The length of `key`'s value, if it is live (no disk access).
    pub fn value_len(&self, key: &[u8]) -> Option<u32> {
        self.index.get(key).map(|e| e.value_len)
    }

    /// The live keys, in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.index.keys()
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// Sets `key` to `value`. When this returns `Ok` the write is durable (written and flushed).
    ///
    /// On an error the write may or may not have reached the disk; after a disk error the store is read-only
    /// until opened again ([`Error::Poisoned`]), and that open settles it.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let record = [NewRecord { kind: Kind::Put, key, value }];
        self.write(&record).await
    }

    /// Removes `key` with a durable tombstone. Returns whether the key was live (if not, nothing is written).
    /// Deletes may use room that puts leave free, so they work when the store is [`Error::Full`].
    pub async fn delete(&mut self, key: &[u8]) -> Result<bool, Error> {
        check_key(key)?;
        if !self.contains_key(key) {
            return Ok(false);
        }
        let record = [NewRecord { kind: Kind::Delete, key, value: &[] }];
        self.write(&record).await?;
        Ok(true)
    }

    /// Applies the batch's puts and deletes in order, with one write and one flush: all durable when this
    /// returns `Ok`, and after a crash either all or none of them are there.
    pub async fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        // Which keys are live at each point of the batch, so that deleting an absent key writes nothing.
        let mut live: BTreeMap<&[u8], bool> = BTreeMap::new();
        let mut records = Vec::with_capacity(batch.len());
        for op in &batch.ops {
            let key = op.key();
            let was_live = live.get(key).copied().unwrap_or_else(|| self.contains_key(key));
            match op {
                Op::Put { value, .. } => {
                    live.insert(key, true);
                    records.push(NewRecord { kind: Kind::Put, key, value });
                }
                Op::Delete { .. } => {
                    check_key(key)?;
                    live.insert(key, false);
                    if was_live {
                        records.push(NewRecord { kind: Kind::Delete, key, value: &[] });
                    }
                }
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        self.write(&records).await
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            live_keys: self.index.len() as u64,
            live_bytes: self.index.live_bytes(),
            log_capacity: self.log.geo.len,
            used_bytes: self.log.tail - self.log.head,
            free_bytes: self.log.free(),
            records: self.log.records,
            compactions: self.log.sb.compactions,
            batch_limit: self.log.batch_limit,
            max_value_len: self.log.max_value_len,
            sector_size: self.log.geo.sector as u32,
            recovery: self.recovery,
        }
    }

    /// Checks, makes room for, writes and indexes one batch of records.
    async fn write(&mut self, records: &[NewRecord<'_>]) -> Result<(), Error> {
        self.check_writable()?;
        for r in records {
            check_key(r.key)?;
            if r.value.len() > self.log.max_value_len as usize {
                return Err(Error::ValueTooLarge { len: r.value.len(), max: self.log.max_value_len });
            }
        }
        let bytes = self.log.geo.align_up(records.iter().map(|r| record_len(r)).sum());
        if bytes > self.log.batch_limit {
            return Err(Error::BatchTooLarge { bytes, max: self.log.batch_limit });
        }
        // Puts leave room for compaction to copy a whole batch, plus room for deletes; deletes only the former.
        let reserve = if records.iter().any(|r| r.kind == Kind::Put) { 2 } else { 1 } * self.log.batch_limit;
        let needed = bytes + reserve;
        if self.log.free() < needed {
            self.compact_until(needed).await?;
        }
        if self.log.free() < needed {
            return Err(Error::Full { needed, free: self.log.free() });
        }
        let placed = self.commit(records).await?;
        for (r, (pos, seq)) in records.iter().zip(placed) {
            match r.kind {
                Kind::Put => self.index.put(r.key, Entry { pos, seq, value_len: r.value.len() as u32 }),
                Kind::Delete => drop(self.index.remove(r.key)),
            }
        }
        Ok(())
    }

    /// Writes `records` as one batch at the tail and flushes; returns each record's position and sequence number.
    /// The caller has checked that they fit. A failed write or flush poisons the store.
    pub(crate) async fn commit(&mut self, records: &[NewRecord<'_>]) -> Result<Vec<(u64, u64)>, Error> {
        let log = &self.log;
        let mut buf = Vec::with_capacity(log.geo.align_up(records.iter().map(|r| record_len(r)).sum()) as usize);
        let mut placed = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let header = Header {
                kind: r.kind,
                last: i + 1 == records.len(),
                key_len: r.key.len() as u8,
                value_len: r.value.len() as u32,
                record_crc: 0,
                volume: log.volume,
                seq: log.next_seq + i as u64,
                pos: log.tail + buf.len() as u64,
                batch: log.tail,
            };
            placed.push((header.pos, header.seq));
            header.emit(r.key, r.value, &mut buf);
        }
        buf.resize(log.geo.align_up(buf.len() as u64) as usize, 0);
        debug_assert!(buf.len() as u64 <= log.free());
        let written = match log::write(&self.disk, &log.geo, log.tail, &buf).await {
            Ok(()) => self.disk.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            self.poisoned = Some(e);
            return Err(Error::Disk(e));
        }
        self.log.tail += buf.len() as u64;
        self.log.next_seq += records.len() as u64;
        self.log.records += records.len() as u64;
        Ok(placed)
    }

    /// Refuses writes after a write error.
    pub(crate) fn check_writable(&self) -> Result<(), Error> {
        match self.poisoned {
            Some(e) => Err(Error::Poisoned(e)),
            None => Ok(()),
        }
    }

    /// Replaces the superblock (in the other slot) and flushes. A failure poisons the store.
    pub(crate) async fn write_superblock(&mut self, sb: Superblock) -> Result<(), Error> {
        let slot = 1 - self.log.sb_slot;
        let sector = self.log.geo.sector;
        let mut buf = vec![0u8; sector as usize];
        sb.emit(&mut buf);
        let written = match self.disk.write(slot as u64 * sector, &buf).await {
            Ok(()) => self.disk.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            self.poisoned = Some(e);
            return Err(Error::Disk(e));
        }
        self.log.sb = sb;
        self.log.sb_slot = slot;
        Ok(())
    }

    /// The log as [`crate::scan`] reads it.
    pub(crate) fn view(&self) -> View<'_, D> {
        let log = &self.log;
        View {
            disk: &self.disk,
            geo: log.geo,
            volume: log.volume,
            max_value_len: log.max_value_len,
            limit: log.head + log.geo.len,
        }
    }
}

fn record_len(r: &NewRecord<'_>) -> u64 {
    (HEADER_LEN + r.key.len() + r.value.len()) as u64
}

fn check_key(key: &[u8]) -> Result<(), Error> {
    match key.len() {
        0 => Err(Error::EmptyKey),
        len if len > MAX_KEY_LEN => Err(Error::KeyTooLong { len }),
        _ => Ok(()),
    }
}
