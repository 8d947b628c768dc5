//! The superblock: where the live log starts, kept twice (sectors 0 and 1) and written alternately.
//!
//! ```text
//!  0..4   magic "SKVS"                      32..40 generation (grows by one with every write)
//!  4..6   version (1)                       40..48 log area: first byte on the disk
//!  6..8   reserved, 0                       48..56 log area: length in bytes
//!  8..12  CRC-32C of bytes 0..8 and 12..80  56..64 head: log position of the oldest live record
//! 12..16  sector size                       64..72 sequence floor: no live record has a smaller one
//! 16..20  largest value (bytes)             72..80 compactions so far
//! 20..24  reserved, 0                       80..   zero up to the end of the sector
//! 24..32  volume id
//! ```
//!
//! Only formatting and compaction write it; appends never do (the log's end is found by scanning). A new copy goes
//! to the slot that does *not* hold the current one, so a torn superblock write can only damage the copy being
//! replaced: open takes the valid copy with the higher generation, and a torn one fails its checksum. This needs
//! no atomic sector write.

use crate::log::COUNTER_LIMIT;
use crate::record::{crc32c, u32_at, u64_at};

/// Bytes of the superblock that carry data; the rest of its sector is zero.
pub(crate) const SUPERBLOCK_LEN: usize = 80;
/// Superblock slots at the start of the disk, one sector each.
pub(crate) const SLOTS: u64 = 2;

const MAGIC: [u8; 4] = *b"SKVS";
const VERSION: u16 = 1;

/// The decoded superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Superblock {
    pub sector_size: u32,
    pub max_value_len: u32,
    pub volume: u64,
    pub generation: u64,
    pub log_start: u64,
    pub log_len: u64,
    pub head: u64,
    pub seq_floor: u64,
    pub compactions: u64,
}

/// Why a superblock slot did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotError {
    /// No superblock magic: never formatted (or something else lives here).
    NoMagic,
    /// The checksum fails (a torn or corrupted copy), or holds only with the magic put back (a damaged magic).
    BadChecksum,
    /// A superblock from a newer version of this crate.
    Version(u16),
    /// The checksum holds but a counter is past any a store reaches, or the log area is larger than any disk
    /// (see [`COUNTER_LIMIT`]): not written by this store, whatever wrote it.
    Impossible,
}

impl Superblock {
    /// Encodes into a sector-sized buffer (zero-filled beyond [`SUPERBLOCK_LEN`]).
    pub fn emit(&self, sector: &mut [u8]) {
        sector.fill(0);
        let b = &mut sector[..SUPERBLOCK_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.sector_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.max_value_len.to_le_bytes());
        for (at, v) in [
            (24, self.volume),
            (32, self.generation),
            (40, self.log_start),
            (48, self.log_len),
            (56, self.head),
            (64, self.seq_floor),
            (72, self.compactions),
        ] {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        let crc = checksum(b);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes one slot.
    pub fn parse(sector: &[u8]) -> Result<Superblock, SlotError> {
        let b = &sector[..SUPERBLOCK_LEN];
        if b[0..4] != MAGIC {
            // A copy whose checksum holds once the magic is put back is a superblock whose magic was damaged: the
            // disk is not unformatted (and must not be formatted over).
            let mut restored = [0u8; SUPERBLOCK_LEN];
            restored.copy_from_slice(b);
            restored[0..4].copy_from_slice(&MAGIC);
            if u32_at(b, 8) == checksum(&restored) {
                return Err(SlotError::BadChecksum);
            }
            return Err(SlotError::NoMagic);
        }
        if u32_at(b, 8) != checksum(b) {
            return Err(SlotError::BadChecksum);
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(SlotError::Version(version));
        }
        let sb = Superblock {
            sector_size: u32_at(b, 12),
            max_value_len: u32_at(b, 16),
            volume: u64_at(b, 24),
            generation: u64_at(b, 32),
            log_start: u64_at(b, 40),
            log_len: u64_at(b, 48),
            head: u64_at(b, 56),
            seq_floor: u64_at(b, 64),
            compactions: u64_at(b, 72),
        };
        if [sb.generation, sb.log_len, sb.head, sb.seq_floor, sb.compactions].iter().any(|&n| n >= COUNTER_LIMIT) {
            return Err(SlotError::Impossible);
        }
        Ok(sb)
    }
}

/// The current superblock among the two slots: the valid one with the higher generation, and its slot.
pub(crate) fn newest(slots: &[Result<Superblock, SlotError>; 2]) -> Option<(Superblock, usize)> {
    match (slots[0], slots[1]) {
        (Ok(a), Ok(b)) if b.generation > a.generation => Some((b, 1)),
        (Ok(a), _) => Some((a, 0)),
        (_, Ok(b)) => Some((b, 1)),
        _ => None,
    }
}

fn checksum(b: &[u8]) -> u32 {
    crc32c(&[&b[0..8], &b[12..SUPERBLOCK_LEN]])
}

/// Rewrites the checksum of a superblock copy that has the magic, whatever its fields say (for fuzzing).
#[cfg(feature = "fake")]
pub(crate) fn reseal(b: &mut [u8]) {
    if b[0..4] == MAGIC {
        let crc = checksum(b);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(generation: u64) -> Superblock {
        Superblock {
            sector_size: 512,
            max_value_len: 1 << 20,
            volume: 42,
            generation,
            log_start: 1024,
            log_len: 1 << 20,
            head: 4096,
            seq_floor: 9,
            compactions: 3,
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let mut sector = [0xAAu8; 512];
        sample(5).emit(&mut sector);
        assert_eq!(&sector[0..6], b"SKVS\x01\x00");
        assert!(sector[SUPERBLOCK_LEN..].iter().all(|&b| b == 0));
        assert_eq!(Superblock::parse(&sector), Ok(sample(5)));
        sector[60] ^= 1;
        assert_eq!(Superblock::parse(&sector), Err(SlotError::BadChecksum));
        assert_eq!(Superblock::parse(&[0u8; 512]), Err(SlotError::NoMagic));
    }

    #[test]
    fn newest_valid_copy_wins() {
        let bad = Err(SlotError::BadChecksum);
        assert_eq!(newest(&[Ok(sample(3)), Ok(sample(4))]), Some((sample(4), 1)));
        assert_eq!(newest(&[Ok(sample(5)), Ok(sample(4))]), Some((sample(5), 0)));
        assert_eq!(newest(&[bad, Ok(sample(4))]), Some((sample(4), 1)));
        assert_eq!(newest(&[Ok(sample(2)), bad]), Some((sample(2), 0)));
        assert_eq!(newest(&[bad, Err(SlotError::NoMagic)]), None);
    }
}
