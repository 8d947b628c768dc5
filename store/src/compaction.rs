//! Compaction: reclaiming the oldest part of the circular log.
//!
//! The cleaner works at the head, a few whole batches per step. A step copies the records of those batches that
//! are still live to the tail (one new batch, written and flushed like any other), and only then moves the head
//! past the old batches by writing a new superblock and flushing it. Superseded records and tombstones are simply
//! left behind: a tombstone at the head can go, because every older record of its key lies before it, so is
//! already behind the head.
//!
//! A crash at any point leaves a consistent store. Before the superblock is durable, the old head still holds:
//! replay reads the originals and then the copies, which say the same thing with newer sequence numbers. A torn
//! superblock write damages only the copy being replaced (see [`crate::superblock`]), so the previous one wins.
//! Once the new superblock is durable the copies are the live records. The space behind the old head is written
//! only after that.
//!
//! Why a step always fits: it copies whole batches, and a batch occupies whole sectors, so the copies of some
//! batches never take more room than those batches did. Every write leaves at least one batch limit free (puts
//! leave two, so that deletes still work when puts are refused), so the live records of the batch at the head can
//! always be copied; and no step makes the free space smaller.

use alloc::vec::Vec;

use crate::disk::Disk;
use crate::error::{Damage, DamageKind, Error};
use crate::index::Entry;
use crate::log::Reader;
use crate::record::{key_of, value_of, Kind};
use crate::scan::{probe, Probe};
use crate::store::{NewRecord, Store};

/// The batches one compaction step cleans.
struct Step {
    /// Log position after the last batch cleaned: the new head.
    end: u64,
    /// Records in those batches.
    records: u64,
    /// Live records among them: key, value, old position.
    live: Vec<(Vec<u8>, Vec<u8>, u64)>,
}

impl<D: Disk> Store<D> {
    /// Compacts the whole log once round: copies every live record forward and reclaims everything else.
    pub async fn compact(&mut self) -> Result<(), Error> {
        self.compact_until(u64::MAX).await
    }

    /// Compacts from the head until `want_free` log bytes are free or the log has been gone through once.
    pub(crate) async fn compact_until(&mut self, want_free: u64) -> Result<(), Error> {
        self.check_writable()?;
        // Copies go past this point; cleaning stops here, after one round.
        let stop = self.log.tail;
        let mut counted = false;
        while self.log.free() < want_free && self.log.head < stop {
            let room = self.log.free().min(self.log.batch_limit);
            let step = self.gather(stop, room).await?;
            if step.end == self.log.head {
                break; // The batch at the head does not fit the free room (cannot happen; see above).
            }
            let records: Vec<NewRecord<'_>> =
                step.live.iter().map(|(key, value, _)| NewRecord { kind: Kind::Put, key, value }).collect();
            if !records.is_empty() {
                let placed = self.commit(&records).await?;
                for ((key, value, _), (pos, seq)) in step.live.iter().zip(placed) {
                    self.index.put(key, Entry { pos, seq, value_len: value.len() as u32 });
                }
            }
            let mut sb = self.log.sb;
            sb.generation += 1;
            sb.head = step.end;
            sb.seq_floor = self.seq_at(step.end).await?;
            if !counted {
                sb.compactions += 1;
                counted = true;
            }
            self.write_superblock(sb).await?;
            self.log.head = step.end;
            self.log.records -= step.records;
        }
        Ok(())
    }

    /// Reads whole batches from the head, up to `stop`, as long as their live records fit in `room` bytes.
    async fn gather(&self, stop: u64, room: u64) -> Result<Step, Error> {
        let view = self.view();
        let geo = view.geo;
        let mut reader = Reader::new();
        let mut step = Step { end: self.log.head, records: 0, live: Vec::new() };
        let mut live_bytes = 0;
        while step.end < stop {
            let start = step.end;
            let (mut pos, mut records, mut batch_bytes, mut batch_live) = (start, 0, 0, Vec::new());
            loop {
                let header = match probe(&mut reader, &view, pos, 0).await? {
                    Probe::Record(h) if h.batch == start => h,
                    Probe::Damaged { kind, .. } => return Err(damaged(geo.disk_offset(pos), kind)),
                    _ => return Err(damaged(geo.disk_offset(pos), DamageKind::Missing)),
                };
                let record = reader.bytes(view.disk, &geo, pos, header.len() as usize).await?;
                let key = key_of(&header, record);
                if header.kind == Kind::Put && self.index.is_live(key, pos) {
                    batch_live.push((key.to_vec(), value_of(&header, record).to_vec(), pos));
                    batch_bytes += header.len();
                }
                records += 1;
                pos = header.end();
                if header.last {
                    break;
                }
            }
            if geo.align_up(live_bytes + batch_bytes) > room {
                break;
            }
            live_bytes += batch_bytes;
            step.records += records;
            step.live.append(&mut batch_live);
            step.end = geo.align_up(pos);
        }
        Ok(step)
    }

    /// The sequence number of the record at `pos` (the head-to-be), or the next one if the log ends there.
    async fn seq_at(&self, pos: u64) -> Result<u64, Error> {
        if pos == self.log.tail {
            return Ok(self.log.next_seq);
        }
        match probe(&mut Reader::new(), &self.view(), pos, 0).await? {
            Probe::Record(h) => Ok(h.seq),
            Probe::Damaged { kind, .. } => Err(damaged(self.log.geo.disk_offset(pos), kind)),
            Probe::NotRecord | Probe::Later(_) => Err(damaged(self.log.geo.disk_offset(pos), DamageKind::Missing)),
        }
    }
}

fn damaged(at: u64, kind: DamageKind) -> Error {
    Error::DamagedRecord(Damage { at, kind })
}
