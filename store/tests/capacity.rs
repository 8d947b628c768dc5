//! Room: compaction reclaims superseded data as the log wraps, a full store says so and still reads and deletes,
//! and values of the full default size (1 MiB) go in and come back out.

mod support;

use std::collections::BTreeMap;

use sirocco_store::{Error, FormatOptions, Store, Tail, DEFAULT_MAX_VALUE_LEN, HEADER_LEN};
use support::{block_on, contents, MemDisk, Rng};

#[test]
fn the_log_wraps_many_times_and_reopens_at_every_point() {
    for sector in [512u32, 4096] {
        let disk = MemDisk::new(sector, 40 * u64::from(sector) * 4);
        let options = FormatOptions { volume_nonce: 9, max_value_len: 1024 };
        let mut store = block_on(Store::format(&disk, options)).unwrap();
        let mut rng = Rng::new(u64::from(sector));
        let mut model = BTreeMap::new();
        let mut written = 0;
        for i in 0..800 {
            let key = format!("key{}", rng.below(8)).into_bytes();
            let len = rng.below(700) as usize;
            let value = rng.bytes(len);
            block_on(store.put(&key, &value)).unwrap();
            written +=
                (HEADER_LEN as u64 + key.len() as u64 + len as u64).div_ceil(u64::from(sector)) * u64::from(sector);
            model.insert(key, value);
            if i % 50 == 49 {
                drop(store);
                store = block_on(Store::open(&disk)).unwrap();
                assert_eq!(store.recovery().tail, Tail::Clean);
                assert_eq!(contents(&store), model, "sector {sector}, after {i} puts");
            }
        }
        let stats = store.stats();
        assert!(written > 4 * stats.log_capacity, "the log should have gone round several times: {written} {stats:?}");
        assert!(stats.compactions >= 4, "{stats:?}");
        assert!(stats.records < 100, "superseded records are reclaimed: {stats:?}");
    }
}

#[test]
fn compact_reclaims_superseded_records_and_tombstones() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 1, max_value_len: 1024 })).unwrap();
    for i in 0..50u8 {
        block_on(store.put(&[b'k', i % 5], &[i; 300])).unwrap();
    }
    for i in 0..3u8 {
        block_on(store.delete(&[b'k', i])).unwrap();
    }
    let before = store.stats();
    assert_eq!((before.records, before.live_keys), (53, 2));
    block_on(store.compact()).unwrap();
    let after = store.stats();
    assert_eq!((after.records, after.live_keys, after.compactions), (2, 2, 1));
    assert!(after.used_bytes <= 1024, "two live records, packed: {after:?}");
    assert_eq!(block_on(store.get(&[b'k', 4])).unwrap().unwrap(), [49; 300]);
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.stats().records, 2);
    assert_eq!(store.stats().compactions, 1, "kept in the superblock");
    assert_eq!(store.keys().count(), 2);
}

#[test]
fn a_full_store_says_so_and_still_reads_and_deletes() {
    for sector in [512u32, 4096] {
        let disk = MemDisk::new(sector, 48 * 1024);
        let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 2, max_value_len: 1024 })).unwrap();
        let mut model = BTreeMap::new();
        let full = loop {
            assert!(model.len() < 1000, "sector {sector}: the store never filled up");
            let key = format!("key-{}", model.len()).into_bytes();
            match block_on(store.put(&key, &[model.len() as u8; 900])) {
                Ok(()) => drop(model.insert(key, vec![model.len() as u8; 900])),
                Err(e) => break e,
            }
        };
        let Error::Full { needed, free } = full else { panic!("{full}") };
        assert!(free < needed);
        assert!(full.to_string().starts_with("store full: needs"));
        assert!(model.len() > 10, "sector {sector}: only {} values fit", model.len());
        // Overwrites are refused too, reads still work.
        assert!(matches!(block_on(store.put(b"key-0", b"x")), Err(Error::Full { .. })));
        assert_eq!(contents(&store), model);
        // Every key can be deleted, even though puts are refused.
        let keys: Vec<_> = model.keys().cloned().collect();
        for key in &keys {
            assert!(block_on(store.delete(key)).unwrap(), "sector {sector}: delete {key:?}");
        }
        assert!(store.is_empty());
        // And the room comes back.
        block_on(store.put(b"again", &[1; 900])).unwrap();
        drop(store);
        let store = block_on(Store::open(&disk)).unwrap();
        assert_eq!(store.keys().collect::<Vec<_>>(), [b"again"]);
    }
}

#[test]
fn values_of_a_mebibyte_round_trip() {
    for sector in [512u32, 4096] {
        let disk = MemDisk::new(sector, 8 << 20);
        let mut store = block_on(Store::format(&disk, FormatOptions::default())).unwrap();
        let max = DEFAULT_MAX_VALUE_LEN as usize;
        assert_eq!(
            block_on(store.put(b"big", &vec![0; max + 1])),
            Err(Error::ValueTooLarge { len: max + 1, max: 1 << 20 })
        );
        let mut rng = Rng::new(11);
        let mut model = BTreeMap::new();
        // Twelve mebibytes through an eight-mebibyte disk: the log wraps and compaction copies big records.
        for i in 0..12 {
            let key = format!("big{}", i % 3).into_bytes();
            let value = rng.bytes(max - i);
            block_on(store.put(&key, &value)).unwrap();
            assert_eq!(block_on(store.get(&key)).unwrap().as_ref(), Some(&value));
            model.insert(key, value);
        }
        assert!(store.stats().compactions > 0);
        drop(store);
        let store = block_on(Store::open(&disk)).unwrap();
        assert_eq!(contents(&store), model, "sector {sector}");
    }
}

#[test]
fn open_reads_the_log_about_once_even_after_a_crash() {
    // A log that has gone round many times: stale records everywhere past the tail, for the sweep to wade through.
    // A value limit well above the sweep's read-ahead, so that the sweep spans many reads.
    let disk = MemDisk::new(512, 1 << 20);
    let options = FormatOptions { volume_nonce: 4, max_value_len: 128 * 1024 };
    let mut store = block_on(Store::format(&disk, options)).unwrap();
    let mut rng = Rng::new(8);
    for i in 0..6000u32 {
        let len = rng.below(200) as usize;
        block_on(store.put(format!("k{}", i % 40).as_bytes(), &rng.bytes(len))).unwrap();
    }
    disk.die_after(1);
    assert!(block_on(store.put(b"torn", &[7; 3000])).is_err());
    drop(store);
    let crashed = disk.crash(&mut rng, support::Crash::TearSectors);
    let store = block_on(Store::open(&crashed)).unwrap();
    let log = store.stats().log_capacity;
    let read = crashed.read_bytes.get();
    assert!(read < 2 * log, "open read {read} bytes of a {log}-byte log ({})", store.recovery());
}
