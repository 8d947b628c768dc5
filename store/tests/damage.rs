//! Damage on the disk: a corrupted tail is dropped and reported, damage in the middle of the log is detected and
//! refused (or salvaged on request), a damaged superblock copy is survived, and a read finds a rotten record.

mod support;

use sirocco_store::fake::reseal;
use sirocco_store::{
    Damage, DamageKind, Dropped, Error, FormatOptions, OnCorruption, OpenOptions, Store, Tail, HEADER_LEN,
};
use support::{block_on, contents, MemDisk};

const SECTOR: u64 = 512;

/// Disk offset of the `n`th single-put batch of a fresh store (each starts on its own sector, after the two
/// superblock sectors).
fn record_at(n: u64) -> u64 {
    2 * SECTOR + n * SECTOR
}

/// A store with three puts, a, b and c, each in its own batch (records at `record_at(0..3)`).
fn three_puts() -> MemDisk {
    let disk = MemDisk::new(SECTOR as u32, 64 * 1024);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 3, max_value_len: 1024 })).unwrap();
    for (k, v) in [("a", "apple"), ("b", "berry"), ("c", "cherry")] {
        block_on(store.put(k.as_bytes(), v.as_bytes())).unwrap();
    }
    disk
}

fn keys<D: sirocco_store::Disk>(store: &Store<D>) -> Vec<Vec<u8>> {
    store.keys().map(<[u8]>::to_vec).collect()
}

#[test]
fn a_corrupted_tail_is_dropped_reported_and_not_reported_again() {
    let disk = three_puts();
    disk.corrupt(record_at(2) + HEADER_LEN as u64 + 3, 0x10); // a byte of c's value
    let store = block_on(Store::open(&disk)).unwrap();
    let expected = Dropped {
        at: record_at(2),
        bytes: HEADER_LEN as u64 + 1 + 6,
        records: 1,
        damage: Damage { at: record_at(2), kind: DamageKind::BadChecksum { seq: 3 } },
    };
    assert_eq!(store.recovery().tail, Tail::Torn(expected));
    assert_eq!(store.recovery().records_replayed, 2);
    assert_eq!(keys(&store), [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(
        store.recovery().to_string(),
        "replayed 2 records (superblock generation 1); torn tail: dropped 59 bytes (1 records) from byte 2048: \
         bad checksum in record 3 at byte 2048 (header intact, body torn or corrupted)"
    );
    drop(store);
    let mut store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().tail, Tail::Clean, "the dropped tail was cleaned up");
    assert_eq!(store.len(), 2);
    block_on(store.put(b"d", b"date")).unwrap();
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().tail, Tail::Clean);
    assert_eq!(keys(&store), [b"a".to_vec(), b"b".to_vec(), b"d".to_vec()]);
}

#[test]
fn a_torn_header_at_the_tail_is_reported() {
    let disk = three_puts();
    disk.corrupt(record_at(2) + 30, 0x01); // inside the sequence number
    let store = block_on(Store::open(&disk)).unwrap();
    match store.recovery().tail {
        Tail::Torn(d) => {
            assert_eq!(d.damage, Damage { at: record_at(2), kind: DamageKind::BadHeader });
            assert_eq!(d.records, 0, "a record whose header is torn is not recognisable");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.len(), 2);
}

#[test]
fn damage_in_the_middle_is_refused_without_touching_the_disk() {
    let disk = three_puts();
    disk.corrupt(record_at(1) + HEADER_LEN as u64 + 2, 0x80); // b's value; c was written after b was durable
    let image = disk.peek(0, 64 * 1024);
    let error = block_on(Store::open(&disk)).err().unwrap();
    let Error::CorruptLog(corruption) = error else { panic!("{error:?}") };
    assert_eq!(corruption.damage, Damage { at: record_at(1), kind: DamageKind::BadChecksum { seq: 2 } });
    assert_eq!((corruption.from, corruption.evidence_at, corruption.evidence_seq), (record_at(1), record_at(2), 3));
    assert_eq!(
        error.to_string(),
        "log corrupted, refusing to open: bad checksum in record 2 at byte 1536 (header intact, body torn or \
         corrupted); record 3 at byte 2048 was written after this data was acknowledged"
    );
    assert_eq!(disk.peek(0, 64 * 1024), image, "a refused open writes nothing");
    assert_eq!(block_on(Store::open_or_format(&disk, FormatOptions::default())).err(), Some(error));
}

#[test]
fn salvage_cuts_the_log_at_the_damage_and_says_what_it_lost() {
    let disk = three_puts();
    disk.corrupt(record_at(1) + HEADER_LEN as u64 + 2, 0x80);
    let salvage = OpenOptions { on_corruption: OnCorruption::Salvage };
    let mut store = block_on(Store::open_with(&disk, salvage)).unwrap();
    match store.recovery().tail {
        Tail::Salvaged { dropped, evidence_at } => {
            assert_eq!((dropped.at, dropped.records, evidence_at), (record_at(1), 2, record_at(2)));
            assert_eq!(dropped.bytes, SECTOR + HEADER_LEN as u64 + 1 + 6, "b's sector and all of c");
        }
        other => panic!("{other:?}"),
    }
    assert!(store.recovery().to_string().contains("SALVAGED"));
    assert_eq!(keys(&store), [b"a".to_vec()]);
    block_on(store.put(b"e", b"elder")).unwrap();
    drop(store);
    // Settled: a plain open is clean, and nothing dropped comes back.
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().tail, Tail::Clean);
    assert_eq!(keys(&store), [b"a".to_vec(), b"e".to_vec()]);
}

#[test]
fn damage_inside_an_acknowledged_batch_in_the_middle_is_refused() {
    let disk = MemDisk::new(SECTOR as u32, 64 * 1024);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 3, max_value_len: 1024 })).unwrap();
    let mut batch = sirocco_store::Batch::new();
    batch.put(b"x", &[1; 200]).put(b"y", &[2; 200]).put(b"z", &[3; 200]);
    block_on(store.write_batch(&batch)).unwrap();
    block_on(store.put(b"w", b"later")).unwrap();
    drop(store);
    let y = record_at(0) + (HEADER_LEN as u64 + 201); // the second record of the batch
    disk.corrupt(y + HEADER_LEN as u64 + 100, 0x04);
    match block_on(Store::open(&disk)) {
        Err(Error::CorruptLog(c)) => {
            assert_eq!(c.damage, Damage { at: y, kind: DamageKind::BadChecksum { seq: 2 } });
            assert_eq!(c.from, record_at(0), "the batch goes as a whole");
            assert_eq!(c.evidence_seq, 4);
        }
        other => panic!("{:?}", other.map(|s| *s.recovery())),
    }
}

#[test]
fn a_damaged_superblock_copy_is_survived_and_replaced() {
    for slot in [0, 1] {
        let disk = three_puts();
        disk.corrupt(slot * SECTOR + 40, 0xFF);
        let mut store = block_on(Store::open(&disk)).unwrap();
        assert_eq!(store.recovery().damaged_superblock, Some(slot as u8));
        assert_eq!(store.len(), 3);
        block_on(store.compact()).unwrap(); // writes a superblock: into the damaged slot
        drop(store);
        let store = block_on(Store::open(&disk)).unwrap();
        assert_eq!(store.recovery().damaged_superblock, None);
        assert_eq!(store.len(), 3);
    }
}

#[test]
fn both_superblocks_damaged_is_an_error_not_a_reformat() {
    let disk = three_puts();
    disk.corrupt(40, 0xFF);
    disk.corrupt(SECTOR + 40, 0xFF);
    assert_eq!(block_on(Store::open(&disk)).err(), Some(Error::SuperblockDamaged));
    assert_eq!(block_on(Store::open_or_format(&disk, FormatOptions::default())).err(), Some(Error::SuperblockDamaged));
}

#[test]
fn a_read_finds_a_record_that_rotted_after_open() {
    let disk = three_puts();
    let store = block_on(Store::open(&disk)).unwrap();
    disk.corrupt(record_at(1) + HEADER_LEN as u64 + 1, 0x02);
    assert_eq!(
        block_on(store.get(b"b")),
        Err(Error::DamagedRecord(Damage { at: record_at(1), kind: DamageKind::BadChecksum { seq: 2 } }))
    );
    assert_eq!(block_on(store.get(b"a")).unwrap().as_deref(), Some(&b"apple"[..]));
}

#[test]
fn garbage_is_not_a_store() {
    let mut rng = support::Rng::new(5);
    let disk = MemDisk::from_image(512, rng.bytes(64 * 1024));
    assert_eq!(block_on(Store::open(&disk)).err(), Some(Error::NotFormatted));
    let mut store =
        block_on(Store::open_or_format(&disk, FormatOptions { volume_nonce: 1, max_value_len: 1024 })).unwrap();
    block_on(store.put(b"k", b"v")).unwrap();
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(contents(&store).len(), 1);
    assert_eq!(store.recovery().tail, Tail::Clean);
}

/// A store whose second batch is exactly one batch limit long (a 255-byte key and a value of the largest size),
/// between `a` and `c = old`, `d`.
fn full_batch_between() -> MemDisk {
    let disk = MemDisk::new(SECTOR as u32, 64 * 1024);
    // 52 + 255 + 205 = 512: the batch limit, and the full batch, are one sector.
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 4, max_value_len: 205 })).unwrap();
    assert_eq!(store.stats().batch_limit, SECTOR);
    block_on(store.put(b"a", b"apple")).unwrap();
    block_on(store.put(&[b'k'; 255], &[b'v'; 205])).unwrap();
    block_on(store.put(b"c", b"old")).unwrap();
    block_on(store.put(b"d", b"date")).unwrap();
    disk
}

#[test]
fn damage_to_a_batch_of_the_largest_size_is_not_taken_for_a_torn_tail() {
    // The batch after the damaged one starts exactly one batch limit after it: where the search for later
    // records used to stop looking. It dropped c and d as a torn tail, and the next put of c was replayed before
    // the old c, which came back.
    let disk = full_batch_between();
    disk.corrupt(record_at(1) + 30, 0x01); // the full batch's header
    let image = disk.peek(0, 64 * 1024);
    match block_on(Store::open(&disk)) {
        Err(Error::CorruptLog(c)) => {
            assert_eq!(c.damage, Damage { at: record_at(1), kind: DamageKind::BadHeader });
            assert_eq!((c.from, c.evidence_at, c.evidence_seq), (record_at(1), record_at(2), 3));
        }
        other => panic!("{:?}", other.map(|s| *s.recovery())),
    }
    assert_eq!(disk.peek(0, 64 * 1024), image, "a refused open writes nothing");

    // Salvaged, what is dropped stays dropped, and what is written after wins.
    let salvage = OpenOptions { on_corruption: OnCorruption::Salvage };
    let mut store = block_on(Store::open_with(&disk, salvage)).unwrap();
    assert!(matches!(store.recovery().tail, Tail::Salvaged { dropped, .. } if dropped.records == 2));
    assert_eq!(keys(&store), [b"a".to_vec()]);
    block_on(store.put(b"c", b"NEW")).unwrap();
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().tail, Tail::Clean);
    assert_eq!(keys(&store), [b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(block_on(store.get(b"c")).unwrap().as_deref(), Some(&b"NEW"[..]));
}

#[test]
fn damage_to_several_batches_in_a_row_is_still_seen_to_be_followed() {
    // Two damaged batches of the largest size: the first intact one after them is two batch limits on.
    let disk = MemDisk::new(SECTOR as u32, 64 * 1024);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 4, max_value_len: 205 })).unwrap();
    block_on(store.put(b"a", b"apple")).unwrap();
    block_on(store.put(&[b'k'; 255], &[b'v'; 205])).unwrap();
    block_on(store.put(&[b'j'; 255], &[b'w'; 205])).unwrap();
    block_on(store.put(b"c", b"old")).unwrap();
    drop(store);
    disk.corrupt(record_at(1) + 30, 0x01);
    disk.corrupt(record_at(2) + 30, 0x01);
    match block_on(Store::open(&disk)) {
        Err(Error::CorruptLog(c)) => assert_eq!((c.from, c.evidence_at), (record_at(1), record_at(3))),
        other => panic!("{:?}", other.map(|s| *s.recovery())),
    }
}

#[test]
fn a_rotten_newest_superblock_does_not_bring_back_an_old_log() {
    // When the newest copy is damaged, open uses the older one, whose head is older. That is right after a torn
    // superblock write (nothing behind the new head has been reused yet), but after rot, once the log has come
    // round past the old head, acknowledged data lies where the old superblock expects other records: open used
    // to find an empty or partial store there and call it clean, and later writes brought old records back.
    let (mut refused, mut opened) = (0, 0);
    for puts in 40..100 {
        let disk = MemDisk::new(SECTOR as u32, 12 * 1024);
        let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 8, max_value_len: 100 })).unwrap();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..puts {
            let (key, value) = (format!("k{}", i % 7).into_bytes(), vec![i as u8; 20 + i % 50]);
            block_on(store.put(&key, &value)).unwrap();
            model.insert(key, value);
        }
        assert!(store.stats().compactions >= 2, "{puts} puts");
        drop(store);
        let generation = |slot: u64| u64::from_le_bytes(disk.peek(slot * SECTOR + 32, 8).try_into().unwrap());
        let newest = if generation(1) > generation(0) { 1 } else { 0 };
        disk.corrupt(newest * SECTOR + 60, 0x04); // a bit of its head
        let image = disk.peek(0, 12 * 1024);
        match block_on(Store::open(&disk)) {
            Ok(store) => {
                assert_eq!(store.recovery().damaged_superblock, Some(newest as u8));
                assert_eq!(contents(&store), model, "{puts} puts: opened with the older copy");
                opened += 1;
            }
            Err(Error::CorruptLog(_)) => {
                assert_eq!(disk.peek(0, 12 * 1024), image, "a refused open writes nothing");
                refused += 1;
                // Salvaged, the records of the later lap are gone for good, and what is written after stays.
                let salvage = OpenOptions { on_corruption: OnCorruption::Salvage };
                let mut store = block_on(Store::open_with(&disk, salvage)).unwrap();
                block_on(store.put(b"new", b"after")).unwrap();
                drop(store);
                let store = block_on(Store::open(&disk)).unwrap_or_else(|e| panic!("{puts} puts: after salvage: {e}"));
                assert_eq!(store.recovery().tail, Tail::Clean);
                assert_eq!(block_on(store.get(b"new")).unwrap().as_deref(), Some(&b"after"[..]));
            }
            Err(e) => panic!("{puts} puts: {e}"),
        }
    }
    assert!(refused > 0 && opened > 0, "both cases should occur: {refused} refused, {opened} opened");
}

#[test]
fn acknowledged_records_after_more_than_a_batch_limit_of_lost_log_are_seen() {
    // The first four batches (four sectors, more than the batch limit of three) read back as zeros: replay finds
    // nothing at the head. e, acknowledged after them, is the evidence, however far on it is; the store used to
    // open empty and clean, and e came back once new writes reached it (found by fuzzing store_open).
    let disk = MemDisk::new(SECTOR as u32, 64 * 1024);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 3, max_value_len: 1024 })).unwrap();
    assert_eq!(store.stats().batch_limit, 3 * SECTOR);
    for key in ["a", "b", "c", "d", "e"] {
        block_on(store.put(key.as_bytes(), b"value")).unwrap();
    }
    drop(store);
    for n in 0..4 {
        for i in 0..HEADER_LEN as u64 + 6 {
            let byte = disk.peek(record_at(n) + i, 1)[0];
            disk.corrupt(record_at(n) + i, byte);
        }
    }
    match block_on(Store::open(&disk)) {
        Err(Error::CorruptLog(c)) => {
            assert_eq!((c.from, c.evidence_at, c.evidence_seq), (record_at(0), record_at(4), 5))
        }
        other => panic!("{:?}", other.map(|s| *s.recovery())),
    }
}

#[test]
fn a_record_of_a_later_lap_is_evidence_and_salvage_removes_it() {
    // b's record, copied far past the end of the log with the position of the next lap there (resealed): what the
    // log looks like under an out-of-date superblock. No write reaches a later lap, so it proves acknowledged data
    // this superblock does not describe.
    let disk = three_puts();
    let mut image = disk.peek(0, 64 * 1024);
    let (log_start, log_len) = (2 * SECTOR, 64 * 1024 - 2 * SECTOR);
    let at = 20 * 1024;
    let record = image[record_at(1) as usize..record_at(1) as usize + HEADER_LEN + 6].to_vec();
    let copy = (log_start + at) as usize;
    image[copy..copy + record.len()].copy_from_slice(&record);
    for field in [36, 44] {
        image[copy + field..copy + field + 8].copy_from_slice(&(at + log_len).to_le_bytes());
    }
    reseal(&mut image, SECTOR as usize);
    let disk = MemDisk::from_image(SECTOR as u32, image);
    match block_on(Store::open(&disk)) {
        Err(Error::CorruptLog(c)) => assert_eq!((c.from, c.evidence_at), (record_at(3), log_start + at)),
        other => panic!("{:?}", other.map(|s| *s.recovery())),
    }
    let salvage = OpenOptions { on_corruption: OnCorruption::Salvage };
    let store = block_on(Store::open_with(&disk, salvage)).unwrap();
    assert_eq!(store.len(), 3);
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap_or_else(|e| panic!("after salvage: {e}"));
    assert_eq!(store.recovery().tail, Tail::Clean);
}

#[test]
fn a_flipped_bit_in_the_magic_of_the_last_record_is_damage_not_the_end_of_the_log() {
    // Without its magic the record looked like no record at all, and the log seemed to end cleanly before it:
    // c was gone without a word (found by fuzzing store_open).
    // Then with the header damaged elsewhere too (its value length), so that its checksum fails even with the
    // magic put back: its volume, sequence number, position and batch start still say what it is.
    for more in [None, Some(10)] {
        let disk = three_puts();
        disk.corrupt(record_at(2), 0x01);
        if let Some(at) = more {
            disk.corrupt(record_at(2) + at, 0x04);
        }
        let store = block_on(Store::open(&disk)).unwrap();
        match store.recovery().tail {
            Tail::Torn(d) => assert_eq!(d.damage, Damage { at: record_at(2), kind: DamageKind::BadHeader }),
            other => panic!("{more:?}: {other:?}"),
        }
        assert_eq!(keys(&store), [b"a".to_vec(), b"b".to_vec()]);
    }
}

#[test]
fn only_a_later_batch_vouches_for_the_last_one() {
    // The exact guarantee at the end of the log (see the crate documentation): damage to the last batch cannot be
    // told from a torn write, so it is dropped and reported as a torn tail, never silently; the same damage with
    // any batch after it is refused as corruption.
    for (what, offset) in [("value", HEADER_LEN as u64 + 3), ("header", 30), ("magic", 0)] {
        let disk = three_puts();
        disk.corrupt(record_at(2) + offset, 0x01);
        let store = block_on(Store::open(&disk)).unwrap();
        match store.recovery().tail {
            Tail::Torn(d) => assert_eq!((d.at, d.damage.at), (record_at(2), record_at(2)), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(keys(&store), [b"a".to_vec(), b"b".to_vec()], "{what}: only the last batch goes");

        let disk = three_puts();
        let mut store = block_on(Store::open(&disk)).unwrap();
        block_on(store.put(b"d", b"date")).unwrap();
        drop(store);
        disk.corrupt(record_at(2) + offset, 0x01);
        match block_on(Store::open(&disk)) {
            Err(Error::CorruptLog(c)) => assert_eq!((c.from, c.evidence_at), (record_at(2), record_at(3)), "{what}"),
            other => panic!("{what}: {:?}", other.map(|s| *s.recovery())),
        }
    }
}

#[test]
fn a_later_record_with_an_intact_header_is_evidence_even_if_its_body_is_damaged() {
    // b's header and c's value are damaged: c's header still proves that c's batch began after b was durable.
    // The sweep used to pass over c as mere damage, call b and c a torn tail, and leave c on the disk, where
    // the log found it again once new writes reached it (found by fuzzing store_open).
    let disk = three_puts();
    disk.corrupt(record_at(1) + 30, 0x01);
    disk.corrupt(record_at(2) + HEADER_LEN as u64 + 2, 0x01);
    match block_on(Store::open(&disk)) {
        Err(Error::CorruptLog(c)) => {
            assert_eq!(c.damage, Damage { at: record_at(1), kind: DamageKind::BadHeader });
            assert_eq!((c.from, c.evidence_at, c.evidence_seq), (record_at(1), record_at(2), 3));
        }
        other => panic!("{:?}", other.map(|s| *s.recovery())),
    }
    let salvage = OpenOptions { on_corruption: OnCorruption::Salvage };
    let store = block_on(Store::open_with(&disk, salvage)).unwrap();
    assert!(matches!(store.recovery().tail, Tail::Salvaged { dropped, .. } if dropped.records == 1));
    assert_eq!(keys(&store), [b"a".to_vec()]);
}

#[test]
fn superblocks_whose_magic_rotted_are_damaged_not_absent() {
    // One flipped bit in each copy's magic made the disk look never formatted, and open_or_format formatted over
    // the store.
    let disk = three_puts();
    disk.corrupt(0, 0x01);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.recovery().damaged_superblock, Some(0));
    drop(store);
    disk.corrupt(SECTOR + 2, 0x40);
    assert_eq!(block_on(Store::open(&disk)).err(), Some(Error::SuperblockDamaged));
    assert_eq!(block_on(Store::open_or_format(&disk, FormatOptions::default())).err(), Some(Error::SuperblockDamaged));
}
