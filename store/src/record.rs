//! The log record: a fixed header, then the key, then the value, all little-endian.
//!
//! ```text
//!  0..4   magic "SKVR"            20..28 volume id (which format of the disk wrote it)
//!  4      kind (1 PUT, 2 DELETE)  28..36 sequence number (grows with every record ever written)
//!  5      flags (bit 0: LAST)     36..44 log position of this record
//!  6      key length (1..=255)    44..52 log position of the first record of its batch
//!  7      reserved, 0             52..   key, then value
//!  8..12  value length
//! 12..16  header checksum: CRC-32C of bytes 0..12 and 20..52
//! 16..20  record checksum: CRC-32C of bytes 0..12, 20..52, the key and the value
//! ```
//!
//! Records of one batch (one write, one flush) are packed back to back; the batch's last record carries LAST and
//! the batch is padded with zeros to a sector boundary, so the next batch starts on a fresh sector. The header
//! checksum lets recovery tell a torn body ("header intact, record incomplete") from a torn header, and lets the
//! forensic scan reject garbage without reading a body. The volume id, the position and the sequence number tell
//! a record of this log from stale bytes: a record of an earlier format, of an earlier lap of the circular log, or
//! left behind by a write that was never acknowledged.

use crate::log::COUNTER_LIMIT;

/// CRC-32C (Castagnoli). See `Cargo.toml` for the choice of crate.
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Bytes in a record header.
pub const HEADER_LEN: usize = 52;
/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// The first four bytes of every record.
pub(crate) const MAGIC: [u8; 4] = *b"SKVR";
/// Flag: the last record of its batch.
const FLAG_LAST: u8 = 1;

/// Byte ranges of the header fields.
mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const KIND: usize = 4;
    pub const FLAGS: usize = 5;
    pub const KEY_LEN: usize = 6;
    pub const RESERVED: usize = 7;
    pub const VALUE_LEN: Range<usize> = 8..12;
    pub const HEADER_CRC: Range<usize> = 12..16;
    pub const RECORD_CRC: Range<usize> = 16..20;
    pub const VOLUME: Range<usize> = 20..28;
    pub const SEQ: Range<usize> = 28..36;
    pub const POS: Range<usize> = 36..44;
    pub const BATCH: Range<usize> = 44..52;
}

/// What a record does to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Sets the key to the value.
    Put = 1,
    /// Removes the key (a tombstone); the value is empty.
    Delete = 2,
}

/// A parsed, checksum-verified record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: Kind,
    /// The last record of its batch.
    pub last: bool,
    pub key_len: u8,
    pub value_len: u32,
    /// Checksum over the header fields, the key and the value.
    pub record_crc: u32,
    pub volume: u64,
    pub seq: u64,
    /// Log position of this record.
    pub pos: u64,
    /// Log position of the first record of this record's batch: everything before it was durable and acknowledged
    /// when this record was written.
    pub batch: u64,
}

/// Why a header did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// No record magic: not a record at all (padding, zeros, other data).
    NoMagic,
    /// The magic is there but the header checksum fails: a torn or corrupted header.
    BadChecksum,
    /// The checksum holds but a field is impossible (unknown kind, empty key, reserved bits set, a sequence number
    /// no store reaches).
    BadField,
}

impl Header {
    /// Bytes in the record: header, key and value (without padding).
    pub fn len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.key_len) + u64::from(self.value_len)
    }

    /// Log position just past the record.
    pub fn end(&self) -> u64 {
        self.pos + self.len()
    }

    /// Parses the first [`HEADER_LEN`] bytes of `bytes` and checks the header checksum.
    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        let h = &bytes[..HEADER_LEN];
        if h[field::MAGIC] != MAGIC {
            return Err(HeaderError::NoMagic);
        }
        if u32_at(h, field::HEADER_CRC.start) != header_crc(h) {
            return Err(HeaderError::BadChecksum);
        }
        let kind = match h[field::KIND] {
            1 => Kind::Put,
            2 => Kind::Delete,
            _ => return Err(HeaderError::BadField),
        };
        let flags = h[field::FLAGS];
        let value_len = u32_at(h, field::VALUE_LEN.start);
        let seq = u64_at(h, field::SEQ.start);
        if flags & !FLAG_LAST != 0
            || seq >= 2 * COUNTER_LIMIT
            || h[field::RESERVED] != 0
            || h[field::KEY_LEN] == 0
            || (kind == Kind::Delete && value_len != 0)
        {
            return Err(HeaderError::BadField);
        }
        Ok(Header {
            kind,
            last: flags & FLAG_LAST != 0,
            key_len: h[field::KEY_LEN],
            value_len,
            record_crc: u32_at(h, field::RECORD_CRC.start),
            volume: u64_at(h, field::VOLUME.start),
            seq,
            pos: u64_at(h, field::POS.start),
            batch: u64_at(h, field::BATCH.start),
        })
    }

    /// Whether `record` (header, key and value: [`Header::len`] bytes) matches the record checksum.
    pub fn verify(&self, record: &[u8]) -> bool {
        record.len() as u64 == self.len() && record_crc(&record[..HEADER_LEN], &record[HEADER_LEN..]) == self.record_crc
    }

    /// Appends the encoded record (header, key, value; no padding) to `out`. `record_crc` is computed here.
    pub fn emit(&self, key: &[u8], value: &[u8], out: &mut alloc::vec::Vec<u8>) {
        debug_assert_eq!(key.len(), usize::from(self.key_len));
        debug_assert_eq!(value.len() as u64, u64::from(self.value_len));
        let mut h = [0u8; HEADER_LEN];
        h[field::MAGIC].copy_from_slice(&MAGIC);
        h[field::KIND] = self.kind as u8;
        h[field::FLAGS] = if self.last { FLAG_LAST } else { 0 };
        h[field::KEY_LEN] = self.key_len;
        h[field::VALUE_LEN].copy_from_slice(&self.value_len.to_le_bytes());
        h[field::VOLUME].copy_from_slice(&self.volume.to_le_bytes());
        h[field::SEQ].copy_from_slice(&self.seq.to_le_bytes());
        h[field::POS].copy_from_slice(&self.pos.to_le_bytes());
        h[field::BATCH].copy_from_slice(&self.batch.to_le_bytes());
        let header_crc = header_crc(&h);
        let mut body = alloc::vec::Vec::with_capacity(key.len() + value.len());
        body.extend_from_slice(key);
        body.extend_from_slice(value);
        let record_crc = record_crc(&h, &body);
        h[field::HEADER_CRC].copy_from_slice(&header_crc.to_le_bytes());
        h[field::RECORD_CRC].copy_from_slice(&record_crc.to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&body);
    }
}

/// Whether `h`, which lacks the record magic, still says it is the header of the record of log `volume` at
/// position `pos` with a sequence number from `min_seq` on: a record whose magic is damaged, which must not pass
/// for the end of the log. Any one witness is enough: the header checksum with the magic put back, the volume
/// id, a sequence number in range, the position, the batch start. So damage hides a record only if it hits the
/// magic and all five (stale bytes that happen to match one are a false alarm: a harmless torn-tail report).
pub(crate) fn still_claims(h: &[u8], volume: u64, pos: u64, min_seq: u64) -> bool {
    let h = &h[..HEADER_LEN];
    if h.iter().all(|&b| b == 0) {
        return false;
    }
    let mut restored = [0u8; HEADER_LEN];
    restored.copy_from_slice(h);
    restored[field::MAGIC].copy_from_slice(&MAGIC);
    let seq = u64_at(h, field::SEQ.start);
    u32_at(h, field::HEADER_CRC.start) == header_crc(&restored)
        || u64_at(h, field::VOLUME.start) == volume
        || (min_seq..min_seq.saturating_add(1 << 32)).contains(&seq)
        || u64_at(h, field::POS.start) == pos
        || u64_at(h, field::BATCH.start) == pos
}

/// The record's key, given the whole record.
pub(crate) fn key_of<'a>(header: &Header, record: &'a [u8]) -> &'a [u8] {
    &record[HEADER_LEN..HEADER_LEN + usize::from(header.key_len)]
}

/// The record's value, given the whole record.
pub(crate) fn value_of<'a>(header: &Header, record: &'a [u8]) -> &'a [u8] {
    &record[HEADER_LEN + usize::from(header.key_len)..]
}

/// Rewrites the checksums of the record header at the start of `bytes`, whatever its fields say, and its record
/// checksum if the record it describes fits in `bytes` (for fuzzing).
#[cfg(feature = "fake")]
pub(crate) fn reseal(bytes: &mut [u8]) {
    let crc = header_crc(bytes);
    bytes[field::HEADER_CRC].copy_from_slice(&crc.to_le_bytes());
    let body = usize::from(bytes[field::KEY_LEN]) + u32_at(bytes, field::VALUE_LEN.start) as usize;
    if let Some(record) = bytes.get(..HEADER_LEN.saturating_add(body)) {
        let crc = record_crc(record, &record[HEADER_LEN..]);
        bytes[field::RECORD_CRC].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Whether `bytes` starts with the record magic (cheap test for the forensic scan).
pub(crate) fn has_magic(bytes: &[u8]) -> bool {
    bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] == MAGIC
}

/// CRC-32C of the header without its two checksum fields.
fn header_crc(h: &[u8]) -> u32 {
    let mut digest = CASTAGNOLI.digest();
    digest.update(&h[..field::HEADER_CRC.start]);
    digest.update(&h[field::RECORD_CRC.end..HEADER_LEN]);
    digest.finalize()
}

/// CRC-32C of the header without its two checksum fields, then `body` (key and value).
fn record_crc(h: &[u8], body: &[u8]) -> u32 {
    let mut digest = CASTAGNOLI.digest();
    digest.update(&h[..field::HEADER_CRC.start]);
    digest.update(&h[field::RECORD_CRC.end..HEADER_LEN]);
    digest.update(body);
    digest.finalize()
}

/// CRC-32C of `bytes` (for the superblock).
pub(crate) fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut digest = CASTAGNOLI.digest();
    for part in parts {
        digest.update(part);
    }
    digest.finalize()
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn sample() -> Header {
        Header {
            kind: Kind::Put,
            last: true,
            key_len: 1,
            value_len: 2,
            record_crc: 0,
            volume: 0x1122_3344_5566_7788,
            seq: 7,
            pos: 512,
            batch: 512,
        }
    }

    #[test]
    fn emits_the_documented_layout() {
        let mut out = Vec::new();
        sample().emit(b"k", b"vv", &mut out);
        assert_eq!(out.len(), HEADER_LEN + 3);
        assert_eq!(&out[..4], b"SKVR");
        assert_eq!(out[4..8], [1, 1, 1, 0]);
        assert_eq!(out[8..12], [2, 0, 0, 0]);
        assert_eq!(out[20..28], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(out[28..36], [7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(out[36..44], [0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(out[44..52], [0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[52..], b"kvv");
        // CRC-32C check value of the standard: "123456789" -> 0xE3069283.
        assert_eq!(crc32c(&[b"123456789"]), 0xE306_9283);
    }

    #[test]
    fn parses_what_it_emits_and_verifies_the_body() {
        let mut out = Vec::new();
        sample().emit(b"k", b"vv", &mut out);
        let h = Header::parse(&out).unwrap();
        assert_eq!(Header { record_crc: 0, ..h }, sample());
        assert!(h.verify(&out));
        assert_eq!(key_of(&h, &out), b"k");
        assert_eq!(value_of(&h, &out), b"vv");
        let mut torn = out.clone();
        torn[HEADER_LEN + 2] ^= 1;
        assert!(!h.verify(&torn), "a changed value byte fails the record checksum");
    }

    #[test]
    fn tells_torn_headers_from_non_records() {
        let mut out = Vec::new();
        sample().emit(b"k", b"vv", &mut out);
        let mut bad = out.clone();
        bad[30] ^= 0x40;
        assert_eq!(Header::parse(&bad), Err(HeaderError::BadChecksum));
        assert_eq!(Header::parse(&[0u8; HEADER_LEN]), Err(HeaderError::NoMagic));
        let mut no_magic = out.clone();
        no_magic[2] ^= 0x10;
        assert_eq!(Header::parse(&no_magic), Err(HeaderError::NoMagic));
        let (volume, seq, pos) = (sample().volume, sample().seq, sample().pos);
        assert!(still_claims(&no_magic, volume, pos, seq), "a damaged magic is damage");
        for field in [12, 20, 28, 36, 44] {
            no_magic[field] ^= 0x01; // the checksum, then each witness in turn
            assert_eq!(still_claims(&no_magic, volume, pos, seq), field != 44, "witnesses left after byte {field}");
        }
        assert!(!still_claims(&[0u8; HEADER_LEN], volume, 0, 0), "zeros are no record");
        let mut tomb = Vec::new();
        Header { kind: Kind::Delete, value_len: 0, ..sample() }.emit(b"k", b"", &mut tomb);
        assert_eq!(Header::parse(&tomb).map(|h| h.kind), Ok(Kind::Delete));
    }
}
