//! The store's interface: format and open, reads and writes, limits, batches, statistics, and disk errors
//! reaching the caller.

mod support;

use sirocco_store::{
    Batch, DiskErrorKind, DiskOp, Error, FormatOptions, Store, Tail, DEFAULT_MAX_VALUE_LEN, HEADER_LEN, MAX_KEY_LEN,
};
use support::{block_on, contents, MemDisk};

fn small() -> FormatOptions {
    FormatOptions { volume_nonce: 7, max_value_len: 4096 }
}

#[test]
fn blank_disk_is_not_formatted_and_open_or_format_formats_it() {
    for sector in [512, 4096] {
        let disk = MemDisk::new(sector, 256 * 1024);
        assert!(matches!(block_on(Store::open(&disk)), Err(Error::NotFormatted)));
        let mut store = block_on(Store::open_or_format(&disk, small())).unwrap();
        assert!(store.is_empty());
        block_on(store.put(b"k", b"v")).unwrap();
        drop(store);
        // The second time it opens what is there.
        let store = block_on(Store::open_or_format(&disk, small())).unwrap();
        assert_eq!(block_on(store.get(b"k")).unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(store.recovery().records_replayed, 1);
        assert_eq!(store.recovery().tail, Tail::Clean);
    }
}

#[test]
fn put_get_delete_survive_reopen() {
    for sector in [512, 4096] {
        let disk = MemDisk::new(sector, 256 * 1024);
        let mut store = block_on(Store::format(&disk, small())).unwrap();
        block_on(store.put(b"alpha", b"1")).unwrap();
        block_on(store.put(b"beta", b"2")).unwrap();
        block_on(store.put(b"alpha", b"one")).unwrap();
        block_on(store.put(b"empty", b"")).unwrap();
        assert!(block_on(store.delete(b"beta")).unwrap());
        assert!(!block_on(store.delete(b"beta")).unwrap(), "deleting an absent key says so");
        assert!(!block_on(store.delete(b"never")).unwrap());
        assert_eq!(block_on(store.get(b"beta")).unwrap(), None);
        assert_eq!(store.value_len(b"alpha"), Some(3));
        let before = contents(&store);
        drop(store);

        let reopened = disk.clone_flushed();
        let store = block_on(Store::open(&reopened)).unwrap();
        assert_eq!(contents(&store), before);
        assert_eq!(store.keys().collect::<Vec<_>>(), [&b"alpha"[..], b"empty"]);
        assert_eq!(block_on(store.get(b"empty")).unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(store.recovery().records_replayed, 5, "four puts and one tombstone");
    }
}

#[test]
fn every_acknowledged_write_is_flushed() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    for i in 0..10u8 {
        block_on(store.put(&[b'k', i], &[i; 100])).unwrap();
        assert_eq!(disk.unflushed(), 0, "put {i} returned before its flush");
    }
    assert!(block_on(store.delete(&[b'k', 3])).unwrap());
    assert_eq!(disk.unflushed(), 0);
}

#[test]
fn keys_and_values_are_limited() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    assert_eq!(block_on(store.put(b"", b"v")), Err(Error::EmptyKey));
    assert_eq!(block_on(store.delete(b"")), Err(Error::EmptyKey));
    let long = [b'x'; MAX_KEY_LEN + 1];
    assert_eq!(block_on(store.put(&long, b"v")), Err(Error::KeyTooLong { len: 256 }));
    block_on(store.put(&long[..MAX_KEY_LEN], b"v")).unwrap();
    assert_eq!(block_on(store.put(b"k", &[0; 4097])), Err(Error::ValueTooLarge { len: 4097, max: 4096 }));
    block_on(store.put(b"k", &[9; 4096])).unwrap();
    assert_eq!(block_on(store.get(b"k")).unwrap().unwrap(), [9; 4096]);
    assert_eq!(store.len(), 2);
    assert_eq!(Error::KeyTooLong { len: 256 }.to_string(), "key of 256 bytes is longer than 255");
}

#[test]
fn a_batch_is_one_write_and_one_flush() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    block_on(store.put(b"gone", b"x")).unwrap();
    let (writes, flushes) = (disk.writes.get(), disk.flushes.get());
    let mut batch = Batch::new();
    batch.put(b"a", b"1").put(b"b", b"2").delete(b"gone").put(b"a", b"3").delete(b"nothing").delete(b"b");
    assert_eq!(batch.len(), 6);
    block_on(store.write_batch(&batch)).unwrap();
    assert_eq!((disk.writes.get() - writes, disk.flushes.get() - flushes), (1, 1));
    let expected = [(b"a".to_vec(), b"3".to_vec())].into_iter().collect();
    assert_eq!(contents(&store), expected);
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(contents(&store), expected);
    // Five records: the delete of "nothing" wrote none.
    assert_eq!(store.recovery().records_replayed, 1 + 5);

    // A batch of deletes of absent keys writes nothing at all.
    let mut store = store;
    let writes = disk.writes.get();
    block_on(store.write_batch(Batch::new().delete(b"absent"))).unwrap();
    block_on(store.write_batch(&Batch::new())).unwrap();
    assert_eq!(disk.writes.get(), writes);
}

#[test]
fn a_batch_larger_than_one_write_is_refused() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    let limit = store.stats().batch_limit;
    let mut batch = Batch::new();
    batch.put(b"a", &[1; 4000]).put(b"b", &[2; 4000]);
    assert!(batch.log_bytes() > limit);
    assert!(matches!(block_on(store.write_batch(&batch)), Err(Error::BatchTooLarge { max, .. }) if max == limit));
    assert!(store.is_empty());
    // Each record on its own is fine, and the batch may carry a bad key: then nothing is written.
    let mut bad = Batch::new();
    bad.put(b"ok", b"1").put(b"", b"2");
    assert_eq!(block_on(store.write_batch(&bad)), Err(Error::EmptyKey));
    assert!(store.is_empty());
}

#[test]
fn stats_count_what_is_there() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    block_on(store.put(b"ab", b"1234")).unwrap();
    block_on(store.put(b"ab", b"12")).unwrap();
    block_on(store.put(b"c", b"")).unwrap();
    block_on(store.delete(b"c")).unwrap();
    let stats = store.stats();
    assert_eq!((stats.live_keys, stats.live_bytes, stats.records), (1, 4, 4));
    assert_eq!(stats.used_bytes, 4 * 512, "each single write starts on a fresh sector");
    assert_eq!(stats.used_bytes + stats.free_bytes, stats.log_capacity);
    assert_eq!(stats.log_capacity, 256 * 1024 - 2 * 512);
    assert_eq!(stats.batch_limit, (HEADER_LEN as u64 + 255 + 4096).div_ceil(512) * 512);
    assert_eq!((stats.sector_size, stats.max_value_len, stats.compactions), (512, 4096, 0));
    assert_eq!(FormatOptions::default().max_value_len, DEFAULT_MAX_VALUE_LEN);
}

#[test]
fn reformatting_forgets_the_old_store_even_with_the_same_nonce() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    for i in 0..20u8 {
        block_on(store.put(&[b'k', i], &[i; 50])).unwrap();
    }
    drop(store);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    assert!(store.is_empty());
    // The new log starts where the old one did; its records must not be mistaken for the old ones.
    block_on(store.put(b"new", b"1")).unwrap();
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(store.keys().collect::<Vec<_>>(), [b"new"]);
    assert_eq!(store.recovery().tail, Tail::Clean);
    assert_eq!(store.recovery().superblock_generation, 2);
}

#[test]
fn unusable_disks_and_options_are_refused() {
    let odd = MemDisk::new(520, 520 * 100);
    assert_eq!(block_on(Store::format(&odd, small())).err(), Some(Error::BadSectorSize(520)));
    let tiny = MemDisk::new(512, 8 * 1024);
    assert!(matches!(block_on(Store::format(&tiny, small())), Err(Error::DiskTooSmall { capacity: 8192, .. })));
    // Too small even for the superblocks: said so, not a read past the end (found by fuzzing).
    for (sector, capacity) in [(512, 0), (512, 512), (4096, 4096)] {
        let tiny = MemDisk::new(sector, capacity);
        let too_small = Error::DiskTooSmall { capacity, needed: 2 * u64::from(sector) };
        assert_eq!(block_on(Store::open(&tiny)).err(), Some(too_small));
        assert!(matches!(block_on(Store::open_or_format(&tiny, small())), Err(Error::DiskTooSmall { .. })));
    }
    let disk = MemDisk::new(512, 64 * 1024);
    let options = FormatOptions { max_value_len: 0, ..small() };
    assert!(matches!(block_on(Store::format(&disk, options)), Err(Error::BadOption(_))));
    // A store moved to a disk that reports another sector size.
    block_on(Store::format(&disk, small())).unwrap();
    let image = disk.peek(0, 64 * 1024);
    let moved = MemDisk::from_image(4096, image);
    assert_eq!(block_on(Store::open(&moved)).err(), Some(Error::SectorSizeChanged { formatted: 512, device: 4096 }));
}

#[test]
fn disk_errors_reach_the_caller() {
    let disk = MemDisk::new(512, 256 * 1024);
    let mut store = block_on(Store::format(&disk, small())).unwrap();
    block_on(store.put(b"k", b"v")).unwrap();

    disk.fail_next(DiskOp::Read);
    match block_on(store.get(b"k")) {
        Err(Error::Disk(e)) => assert_eq!((e.op, e.kind), (DiskOp::Read, DiskErrorKind::Io)),
        other => panic!("{other:?}"),
    }
    assert_eq!(block_on(store.get(b"k")).unwrap().as_deref(), Some(&b"v"[..]), "a read error changes nothing");

    disk.fail_next(DiskOp::Flush);
    match block_on(store.put(b"k", b"w")) {
        Err(Error::Disk(e)) => assert_eq!(e.op, DiskOp::Flush),
        other => panic!("{other:?}"),
    }
    // Uncertain now: writes are refused until reopened, reads still work.
    assert!(matches!(block_on(store.put(b"x", b"y")), Err(Error::Poisoned(e)) if e.op == DiskOp::Flush));
    assert!(matches!(block_on(store.delete(b"k")), Err(Error::Poisoned(_))));
    assert!(matches!(block_on(store.compact()), Err(Error::Poisoned(_))));
    assert!(store.poisoned().is_some());
    assert_eq!(block_on(store.get(b"k")).unwrap().as_deref(), Some(&b"v"[..]));
    drop(store);
    // The write reached the disk's cache, so the reopened store has it; and it works again.
    let mut store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(block_on(store.get(b"k")).unwrap().as_deref(), Some(&b"w"[..]));
    disk.fail_next(DiskOp::Write);
    assert!(matches!(block_on(store.put(b"k", b"z")), Err(Error::Disk(e)) if e.op == DiskOp::Write));
    drop(store);
    let store = block_on(Store::open(&disk)).unwrap();
    assert_eq!(block_on(store.get(b"k")).unwrap().as_deref(), Some(&b"w"[..]));

    disk.fail_next(DiskOp::Read);
    assert!(matches!(block_on(Store::open(&disk)), Err(Error::Disk(e)) if e.op == DiskOp::Read));
    disk.fail_next(DiskOp::Write);
    assert!(matches!(block_on(Store::format(&disk, small())), Err(Error::Disk(e)) if e.op == DiskOp::Write));
    assert_eq!(
        Error::Disk(sirocco_store::DiskError { op: DiskOp::Write, offset: 4096, kind: DiskErrorKind::Io }).to_string(),
        "disk write at byte 4096: I/O error reported by the backend"
    );
}
