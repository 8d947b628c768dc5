//! Reading records back: what is at a log position ([`probe`]), and which records lie anywhere in a range
//! ([`sweep`], the forensic scan that recovery uses past the end of the log).

use crate::disk::{Disk, DiskError};
use crate::error::DamageKind;
use crate::log::{Geometry, Reader};
use crate::record::{self, has_magic, Header, HeaderError, HEADER_LEN, MAGIC};

/// Bytes the sweep examines per read.
const SWEEP_CHUNK: u64 = 64 * 1024;

/// The log being read: the disk, where the log is, and what a record of this log looks like.
pub(crate) struct View<'a, D> {
    pub disk: &'a D,
    pub geo: Geometry,
    /// Volume id of the current format.
    pub volume: u64,
    /// Largest value a record may carry.
    pub max_value_len: u32,
    /// Log position no record reaches past: the head plus the log length.
    pub limit: u64,
}

/// What a log position holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A complete record of this log, written for this position, with a sequence number at least the minimum,
    /// whose checksums hold.
    Record(Header),
    /// Nothing that claims to be a record of this log here: padding, zeros, a record of an earlier format or lap,
    /// or a leftover older than the minimum sequence number.
    NotRecord,
    /// Something that claims to be a record here but is damaged; `end` is how far it claims to reach, and
    /// `header` is its header when that is intact (only the body is damaged).
    Damaged { kind: DamageKind, end: u64, header: Option<Header> },
    /// A record of this log written here in a *later* lap than the head allows (its position is this one plus a
    /// multiple of the log's length). No write reaches a lap past the head's, so it proves the superblock in use
    /// is out of date: a newer one moved the head on and the log has come round since.
    Later(Header),
}

/// Examines log position `pos`, expecting a record with a sequence number of at least `min_seq`.
pub(crate) async fn probe<D: Disk>(
    reader: &mut Reader,
    view: &View<'_, D>,
    pos: u64,
    min_seq: u64,
) -> Result<Probe, DiskError> {
    if pos + HEADER_LEN as u64 > view.limit {
        return Ok(Probe::NotRecord);
    }
    let bytes = reader.bytes(view.disk, &view.geo, pos, HEADER_LEN).await?;
    let header = match Header::parse(bytes) {
        Ok(h) => h,
        Err(HeaderError::NoMagic) => {
            if record::still_claims(bytes, view.volume, pos, min_seq) {
                return Ok(Probe::Damaged { kind: DamageKind::BadHeader, end: pos + HEADER_LEN as u64, header: None });
            }
            return Ok(Probe::NotRecord);
        }
        Err(HeaderError::BadChecksum | HeaderError::BadField) => {
            return Ok(Probe::Damaged { kind: DamageKind::BadHeader, end: pos + HEADER_LEN as u64, header: None })
        }
    };
    if header.volume == view.volume && header.pos > pos && (header.pos - pos).is_multiple_of(view.geo.len) {
        return Ok(Probe::Later(header));
    }
    if header.volume != view.volume || header.pos != pos || header.seq < min_seq {
        return Ok(Probe::NotRecord);
    }
    // Every record this store writes ends at or before the limit; one that claims to run past it is not one.
    if header.value_len > view.max_value_len || header.end() > view.limit {
        return Ok(Probe::Damaged { kind: DamageKind::BadHeader, end: pos + HEADER_LEN as u64, header: None });
    }
    let record = reader.bytes(view.disk, &view.geo, pos, header.len() as usize).await?;
    if !header.verify(record) {
        let kind = DamageKind::BadChecksum { seq: header.seq };
        return Ok(Probe::Damaged { kind, end: header.end(), header: Some(header) });
    }
    Ok(Probe::Record(header))
}

/// Records a [`sweep`] found (damaged ones with an intact header included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    /// How many.
    pub records: u64,
    /// The largest sequence number among them.
    pub max_seq: u64,
    /// Log position just past the furthest of them (the sweep's start if none).
    pub end: u64,
    /// The first whose batch started after the sweep's start (position, sequence number): it was written when
    /// everything before its batch, including the sweep's start, was durable and acknowledged. Or the first
    /// record of a later lap ([`Probe::Later`]): written after everything this superblock describes.
    pub evidence: Option<(u64, u64)>,
}

/// Finds every record of this log that starts in `[from, limit)` with a sequence number of at least `min_seq`,
/// at any byte offset: records of a torn batch are packed, so they need not start on a sector.
///
/// All the way to the limit, not just the reach of one write past `from`: damage that stops replay may be
/// followed by acknowledged batches after any run of damaged ones, or (under an out-of-date superblock) by a
/// later lap. A record of this log that is not found could come back as the continuation of the log after new
/// writes, with a sequence number larger than theirs. The cost is a read of the free part of the log at open.
pub(crate) async fn sweep<D: Disk>(
    reader: &mut Reader,
    view: &View<'_, D>,
    from: u64,
    min_seq: u64,
) -> Result<Swept, DiskError> {
    let mut swept = Swept { end: from, ..Swept::default() };
    let mut pos = from;
    while let Some(at) = find_magic(reader, view, pos, view.limit).await? {
        match probe(reader, view, at, min_seq).await? {
            // A record of this log, or one whose header says so (written for this place, in this lap, with a
            // sequence number that counts) though its body is damaged: found all the same.
            Probe::Record(h) | Probe::Damaged { header: Some(h), .. } => {
                swept.records += 1;
                swept.max_seq = swept.max_seq.max(h.seq);
                swept.end = swept.end.max(h.end());
                if h.batch > from && swept.evidence.is_none() {
                    swept.evidence = Some((at, h.seq));
                }
                pos = h.end();
            }
            Probe::Later(h) => {
                // Found, dropped and zeroed like a record of this lap (as far as this lap goes), and counted in the
                // sequence numbers, so that nothing written from now on is older.
                swept.records += 1;
                swept.max_seq = swept.max_seq.max(h.seq);
                swept.end = swept.end.max((at + h.len()).min(view.limit));
                swept.evidence = swept.evidence.or(Some((at, h.seq)));
                pos = at + 1;
            }
            Probe::Damaged { header: None, .. } | Probe::NotRecord => pos = at + 1,
        }
    }
    Ok(swept)
}

/// The first position in `[pos, to)` where the record magic starts.
async fn find_magic<D: Disk>(
    reader: &mut Reader,
    view: &View<'_, D>,
    mut pos: u64,
    to: u64,
) -> Result<Option<u64>, DiskError> {
    let overlap = MAGIC.len() - 1;
    while pos < to {
        // Search what is buffered first: after a candidate that was no record, the search goes on from the next
        // byte, and must not read the chunk again for it.
        let buffered = reader.buffered(pos);
        let n = if buffered > overlap { (buffered - overlap) as u64 } else { SWEEP_CHUNK }.min(to - pos);
        // The extra bytes let a magic that straddles two chunks be seen in the first.
        let bytes = reader.bytes(view.disk, &view.geo, pos, n as usize + overlap).await?;
        // The first byte of the magic, then the rest: the sweep goes through the whole free log at open, and a
        // byte search is several times faster than comparing four bytes at every offset.
        let mut i = 0;
        while let Some(at) = bytes[i..n as usize].iter().position(|&b| b == MAGIC[0]) {
            if has_magic(&bytes[i + at..]) {
                return Ok(Some(pos + (i + at) as u64));
            }
            i += at + 1;
        }
        pos += n;
    }
    Ok(None)
}
