//! Numbers on the disk are checked before they are used: a checksum says a field was written whole, not that
//! a store wrote it. Superblocks and records with fields no store could have written (resealed, so that their
//! checksums hold) are refused or treated as damage, never overflowed or wrapped.

mod support;

use sirocco_store::fake::reseal;
use sirocco_store::{Error, FormatOptions, Store, Tail};
use support::{block_on, contents, MemDisk};

const SECTOR: usize = 512;
const CAPACITY: usize = 64 * 1024;

/// Superblock fields (byte offsets in a copy).
const GENERATION: usize = 32;
const LOG_LEN: usize = 48;
const HEAD: usize = 56;
const SEQ_FLOOR: usize = 64;
const COMPACTIONS: usize = 72;
/// Record header field: the sequence number.
const SEQ: usize = 28;

/// A store with a, b and c, each in its own batch (records at sectors 2, 3, 4), cleanly shut down.
fn three_puts() -> Vec<u8> {
    let disk = MemDisk::new(SECTOR as u32, CAPACITY as u64);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 3, max_value_len: 1024 })).unwrap();
    for (k, v) in [("a", "apple"), ("b", "berry"), ("c", "cherry")] {
        block_on(store.put(k.as_bytes(), v.as_bytes())).unwrap();
    }
    disk.image()
}

fn set(image: &mut [u8], at: usize, value: u64) {
    image[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The image with `value` in the field at `field` of both superblock copies, checksums resealed.
fn superblocks_with(field: usize, value: u64) -> MemDisk {
    let mut image = three_puts();
    for slot in 0..2 {
        set(&mut image, slot * SECTOR + field, value);
    }
    reseal(&mut image, SECTOR);
    MemDisk::from_image(SECTOR as u32, image)
}

#[test]
fn superblock_numbers_no_store_writes_are_refused() {
    let cases = [
        (LOG_LEN, u64::MAX - 511, "a log area whose end overflows"),
        (LOG_LEN, 1 << 63, "a log area larger than any disk"),
        (HEAD, u64::MAX - 511, "a head whose log limit overflows"),
        (HEAD, 1 << 62, "a head past 2^62"),
        (SEQ_FLOOR, u64::MAX, "a sequence floor no record can reach"),
        (GENERATION, u64::MAX, "a generation that wraps at the next compaction"),
        (COMPACTIONS, u64::MAX, "a compaction count that wraps at the next compaction"),
    ];
    for (field, value, what) in cases {
        let disk = superblocks_with(field, value);
        match block_on(Store::open(&disk)) {
            Err(Error::SuperblockDamaged | Error::BadSuperblock(_) | Error::DiskTooSmall { .. }) => {}
            other => panic!("{what}: {:?}", other.map(|s| *s.recovery())),
        }
    }
}

#[test]
fn a_copy_with_impossible_numbers_loses_to_the_sound_one() {
    // The newer copy claims the largest generation: it must not win, and it must not make the next superblock
    // written (generation + 1) wrap to zero and lose to the older copy.
    let mut image = three_puts();
    set(&mut image, SECTOR + GENERATION, u64::MAX);
    reseal(&mut image, SECTOR);
    let disk = MemDisk::from_image(SECTOR as u32, image);
    let mut store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().superblock_generation, 1);
    assert_eq!(store.recovery().damaged_superblock, Some(1));
    block_on(store.put(b"d", b"date")).unwrap();
    block_on(store.compact()).unwrap();
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().superblock_generation, 2);
    assert_eq!(store.recovery().damaged_superblock, None);
    assert_eq!(store.len(), 4);
}

#[test]
fn formatting_over_impossible_numbers_gives_a_store_that_works() {
    let disk = superblocks_with(GENERATION, u64::MAX);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 1, max_value_len: 1024 })).unwrap();
    block_on(store.put(b"k", b"v")).unwrap();
    block_on(store.compact()).unwrap();
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().superblock_generation, 2);
    assert_eq!(contents(&store).len(), 1);
}

#[test]
fn a_record_with_the_largest_sequence_number_is_damage_not_an_overflow() {
    for at in [2 * SECTOR, 4 * SECTOR] {
        // In the middle of the log (then c follows it), and at its end.
        let mut image = three_puts();
        set(&mut image, at + SEQ, u64::MAX);
        reseal(&mut image, SECTOR);
        let disk = MemDisk::from_image(SECTOR as u32, image);
        match block_on(Store::open(&disk)) {
            Err(Error::CorruptLog(c)) if at == 2 * SECTOR => assert_eq!(c.from, at as u64),
            Ok(mut store) if at == 4 * SECTOR => {
                assert!(matches!(store.recovery().tail, Tail::Torn(_)), "{}", store.recovery());
                block_on(store.put(b"d", b"date")).unwrap();
                drop(store);
                let store = block_on(Store::open(&disk)).unwrap();
                assert_eq!(store.recovery().tail, Tail::Clean);
                assert_eq!(contents(&store).len(), 3, "a, b and d");
            }
            other => panic!("seq u64::MAX at byte {at}: {:?}", other.map(|s| *s.recovery())),
        }
    }
}

#[test]
fn sequence_numbers_past_what_a_store_writes_are_refused() {
    // Sound checksums, and each number one more than the last: but no store writes 2^62 records.
    let mut image = three_puts();
    for (i, at) in [2 * SECTOR, 3 * SECTOR, 4 * SECTOR].into_iter().enumerate() {
        set(&mut image, at + SEQ, (1 << 62) + i as u64);
    }
    reseal(&mut image, SECTOR);
    let disk = MemDisk::from_image(SECTOR as u32, image);
    match block_on(Store::open(&disk)) {
        Err(Error::BadSuperblock(_)) => {}
        other => panic!("{:?}", other.map(|s| *s.recovery())),
    }
}
