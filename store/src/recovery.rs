//! Rebuilding the index at open by replaying the log, and deciding what the end of the log means.
//!
//! Replay starts at the superblock's head and follows the chain of records: each must be a record of this log
//! written for exactly its position, with a larger sequence number than the one before, in a batch that began on
//! a sector. A batch is applied only once its LAST record is read, so a batch is all or nothing. The chain stops
//! at the first position that does not hold such a record: normally stale bytes after the last write.
//!
//! What lies past that point, all the way to the log's limit, is then examined (the *sweep*). A crash during a
//! write leaves at most one torn batch there, written when everything before it was durable; its records say so,
//! since each carries the position where its batch began. So:
//! - nothing of this log there, no damage: a **clean** end;
//! - damage, or records of an unfinished batch that began at or before the stopping point: a **torn tail**, a
//!   write never acknowledged (or damage to the last batch, see below). It is dropped, reported, and overwritten
//!   with zeros so that it cannot come back;
//! - a record whose batch began *after* the stopping point: that batch was written after the damaged data had
//!   been acknowledged, so acknowledged data is damaged in the middle of the log. (Likewise a record written at
//!   its place in a later lap than the head allows: the superblock is out of date, see `Probe::Later`.) By
//!   default the store refuses to open ([`Error::CorruptLog`]); with [`OnCorruption::Salvage`] it cuts the log
//!   at the damage, reports what it dropped, and zeros the rest.
//!
//! Damage to the very last acknowledged batch, with nothing written after it, cannot be told from a torn write
//! and is reported as a torn tail: the batch is dropped, the damage is in the report (see the crate
//! documentation for why the format does not tell them apart). Stale bytes that merely look like a damaged
//! header where the log ends (an old value that contains the record magic) are reported as a torn tail too: a
//! false alarm, and a harmless one.
//!
//! Besides the checksums, three fields keep stale bytes out of the chain, each enough on its own for some cases:
//! the batch start (a leftover of an older write never starts a batch where a new one must start), the position
//! (records of an earlier lap) and the sequence number (anything older than what was replayed).

use core::fmt;

use crate::disk::Disk;
use crate::error::{Corruption, Damage, DamageKind, Error};
use crate::index::{Entry, Index};
use crate::log::{self, Reader};
use crate::record::{key_of, Header, Kind};
use crate::scan::{probe, sweep, Probe, View};

/// What to do when open finds acknowledged data damaged in the middle of the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnCorruption {
    /// Refuse to open with [`Error::CorruptLog`], changing nothing on the disk.
    #[default]
    Refuse,
    /// Keep the log up to the damaged batch and drop everything after it (reported in [`Tail::Salvaged`]).
    /// Acknowledged writes after the damage are lost; the dropped region is zeroed.
    Salvage,
}

/// A region dropped from the end of the log at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Disk byte offset where the dropped region starts (the log now ends there).
    pub at: u64,
    /// Bytes of recognisable records (or their remains) dropped.
    pub bytes: u64,
    /// Records dropped: complete ones of an unfinished batch, and damaged ones whose header was intact.
    pub records: u64,
    /// The damage that ended the log.
    pub damage: Damage,
}

/// How the log ended when it was replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// After the last complete batch: nothing was torn.
    Clean,
    /// The log ended in a batch that does not verify, and it has been dropped: a write torn by a crash, which was
    /// never acknowledged, or (indistinguishable from it) damage to the last acknowledged batch, which no later
    /// batch vouches for. That one batch is lost, unless damage also hides the batches after it.
    Torn(Dropped),
    /// Acknowledged data was damaged and the log was cut there ([`OnCorruption::Salvage`]).
    Salvaged {
        /// What was dropped.
        dropped: Dropped,
        /// Disk byte offset of the later record that proved the damaged data had been acknowledged.
        evidence_at: u64,
    },
}

/// What open found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Records replayed into the index (including superseded ones and tombstones).
    pub records_replayed: u64,
    /// Generation of the superblock in use.
    pub superblock_generation: u64,
    /// A superblock slot (0 or 1) whose copy is damaged: a superblock write was torn, or the copy has rotted or
    /// holds numbers no store writes. The next superblock write replaces it.
    pub damaged_superblock: Option<u8>,
    /// How the log ended.
    pub tail: Tail,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replayed {} records (superblock generation {}", self.records_replayed, self.superblock_generation)?;
        if let Some(slot) = self.damaged_superblock {
            write!(f, ", copy {slot} damaged")?;
        }
        f.write_str("); ")?;
        let (dropped, what) = match self.tail {
            Tail::Clean => return f.write_str("log ends cleanly"),
            Tail::Torn(d) => (d, "torn tail"),
            Tail::Salvaged { dropped, .. } => (dropped, "SALVAGED, acknowledged data lost"),
        };
        write!(
            f,
            "{what}: dropped {} bytes ({} records) from byte {}: {}",
            dropped.bytes, dropped.records, dropped.at, dropped.damage
        )
    }
}

/// The log as replayed.
pub(crate) struct Replayed {
    pub index: Index,
    /// Log position where the next batch goes.
    pub tail: u64,
    /// Sequence number for the next record: larger than any record of this log found on the disk.
    pub next_seq: u64,
    /// Records in the live log.
    pub records: u64,
    pub tail_state: Tail,
}

/// Replays the log from `head`, decides what its end means (see the module documentation) and cleans up a torn
/// tail. `window` is the batch limit: how far past its start a single write can reach.
pub(crate) async fn replay<D: Disk>(
    view: &View<'_, D>,
    head: u64,
    seq_floor: u64,
    window: u64,
    on_corruption: OnCorruption,
) -> Result<Replayed, Error> {
    let geo = view.geo;
    let mut reader = Reader::new();
    let mut index = Index::default();
    let mut records = 0;
    // The batch being read: its start, and its records so far (header, key).
    let mut batch_start = head;
    let mut pending: alloc::vec::Vec<(Header, alloc::vec::Vec<u8>)> = alloc::vec::Vec::new();
    // Smallest sequence number the next applied batch may have, and the next record.
    let mut applied_min_seq = seq_floor;
    let mut min_seq = seq_floor;
    let mut pos = head;
    let damage = loop {
        match probe(&mut reader, view, pos, min_seq).await? {
            Probe::Record(h) if h.batch == if pending.is_empty() { pos } else { batch_start } => {
                if pending.is_empty() {
                    batch_start = pos;
                }
                let key = reader.bytes(view.disk, &geo, pos, h.len() as usize).await?;
                pending.push((h, key_of(&h, key).to_vec()));
                min_seq = h.seq + 1;
                pos = h.end();
                if h.last {
                    for (h, key) in pending.drain(..) {
                        match h.kind {
                            Kind::Put => index.put(&key, Entry { pos: h.pos, seq: h.seq, value_len: h.value_len }),
                            Kind::Delete => drop(index.remove(&key)),
                        }
                        records += 1;
                    }
                    applied_min_seq = min_seq;
                    pos = geo.align_up(pos);
                }
            }
            Probe::Record(_) | Probe::NotRecord | Probe::Later(_) if pending.is_empty() => break None,
            Probe::Record(_) | Probe::NotRecord | Probe::Later(_) => break Some((DamageKind::Missing, pos)),
            Probe::Damaged { kind, end, .. } => break Some((kind, end)),
        }
    };
    // Where the log ends: before the unfinished batch, if one was being read.
    let cut = if pending.is_empty() { pos } else { batch_start };
    let damage_at = pos;
    let swept = sweep(&mut reader, view, cut, applied_min_seq).await?;
    let next_seq = applied_min_seq.max(swept.max_seq + 1);

    let claimed_end = damage.map_or(cut, |(_, end)| end);
    let damage = Damage { at: geo.disk_offset(damage_at), kind: damage.map_or(DamageKind::Missing, |(kind, _)| kind) };
    let dropped =
        Dropped { at: geo.disk_offset(cut), bytes: swept.end.max(claimed_end) - cut, records: swept.records, damage };
    let tail_state = match swept.evidence {
        Some((evidence, evidence_seq)) => {
            if on_corruption == OnCorruption::Refuse {
                return Err(Error::CorruptLog(Corruption {
                    damage,
                    from: dropped.at,
                    evidence_at: geo.disk_offset(evidence),
                    evidence_seq,
                }));
            }
            // Everything after the cut goes (the sweep found all of it), so that none of it can come back.
            Tail::Salvaged { dropped, evidence_at: geo.disk_offset(evidence) }
        }
        None if swept.records > 0 || swept.end > cut || claimed_end > cut || pos != cut => Tail::Torn(dropped),
        None => Tail::Clean,
    };
    if tail_state != Tail::Clean {
        // Zero the whole reach of the torn write (and, when salvaging, everything dropped): a later write shorter
        // than the torn one must not let its remains be read as the continuation of the log, nor make the next
        // open report this damage again. All of it is free space past the new end of the log.
        let reach = view.limit.min(cut + window);
        let dropped_end = match tail_state {
            Tail::Torn(d) | Tail::Salvaged { dropped: d, .. } => cut + d.bytes,
            Tail::Clean => cut,
        };
        log::zero(view.disk, &geo, cut, reach.max(geo.align_up(dropped_end))).await?;
        view.disk.flush().await?;
    }
    Ok(Replayed { index, tail: cut, next_seq, records, tail_state })
}
