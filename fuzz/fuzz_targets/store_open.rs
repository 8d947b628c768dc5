//! Opening whatever a disk holds: a damaged, stale or hostile image must never crash the store, hang it or make
//! it read outside the disk, and open must never pass damage off as the store's contents.
//!
//! Input: one byte of flags, then either a disk image or a history and its damage.
//! - bit 0: 4096-byte sectors (else 512);
//! - bit 1: reseal the image before opening it: recompute the checksum of every superblock copy and record
//!   header that has its magic (`sirocco_store::fake::reseal`), so that changes to any field reach the code that
//!   judges that field instead of stopping at a checksum;
//! - bit 2: history mode: the rest of the input is a short history of puts, deletes, batches and compactions,
//!   run on a freshly formatted store (largest value 205 bytes, so that a 255-byte key makes a batch of exactly
//!   one batch limit with 512-byte sectors), then up to three bits flipped anywhere on the disk. Else the rest
//!   is the disk image, cut to whole sectors.
//!
//! Oracles, whatever the input: open either refuses (with a reason, changing nothing if it refuses damage in the
//! log; salvage then succeeds), or gives a store whose keys all read back; a second open finds the same store
//! with nothing left to clean up; writes after open (a delete, a put, a compaction) are durable across another
//! open. In history mode, without resealing (three flipped bits cannot forge a CRC-32C), what open gives
//! must also agree with the history: exactly the acknowledged contents when it reports nothing dropped; when it
//! reports a torn tail after one flipped bit, at most the last write missing (the format cannot tell damage to
//! the last acknowledged batch from a torn write); otherwise only values that were acknowledged for their keys.
#![no_main]

#[path = "store_common.rs"]
mod store_common;

use std::collections::BTreeMap;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sirocco_store::fake::{block_on, reseal, MemDisk};
use sirocco_store::{DamageKind, Error, FormatOptions, OnCorruption, OpenOptions, Store, Tail};
use store_common::{contents, Contents, Op, MAX_VALUE_LEN};

/// What the history acknowledged, for the oracles.
struct History {
    /// The contents after the last write.
    now: Contents,
    /// The contents before the last operation, if it was a put, delete or batch (the last batch in the log).
    before_last: Option<Contents>,
    /// Every value ever acknowledged for each key.
    values: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
    /// The bits flipped afterwards: (disk byte, mask).
    flips: Vec<(usize, u8)>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let sector = if flags & 1 == 0 { 512 } else { 4096 };
    let (mut image, history) = if flags & 4 == 0 {
        (rest[..rest.len() / sector * sector].to_vec(), None)
    } else {
        let (image, history) = build(sector, &mut Unstructured::new(rest));
        (image, Some(history))
    };
    let resealed = flags & 2 != 0;
    if resealed {
        reseal(&mut image, sector);
    }
    let disk = MemDisk::from_image(sector as u32, image);
    check(&disk, history.as_ref().filter(|_| !resealed));
});

/// Formats a store, runs the history on it, then damages the disk; returns the image and what was acknowledged.
fn build(sector: usize, u: &mut Unstructured) -> (Vec<u8>, History) {
    let capacity = if sector == 512 { 16 * 1024 } else { 48 * 1024 };
    let disk = MemDisk::new(sector as u32, capacity);
    let options = FormatOptions { volume_nonce: 1, max_value_len: MAX_VALUE_LEN };
    let mut store = block_on(Store::format(&disk, options)).expect("format");
    let mut history = History { now: Contents::new(), before_last: None, values: BTreeMap::new(), flips: Vec::new() };
    for _ in 0..u.int_in_range(0..=40u8).unwrap_or(0) {
        let op = Op::decode(u);
        let writes = disk.writes.get();
        let result = op.run(&mut store);
        let wrote = disk.writes.get() != writes;
        match (result, &op) {
            (Ok(()), Op::Write(changes)) if wrote => {
                for (key, value) in changes {
                    if let Some(value) = value {
                        history.values.entry(key.clone()).or_default().push(value.clone());
                    }
                }
                history.before_last = Some(history.now.clone());
                op.apply(&mut history.now);
            }
            // Nothing written (deletes of absent keys only, or nothing to compact): the last batch is as it was.
            (Ok(()), _) if !wrote => {}
            // A compaction, or a write refused after compacting: the last batch may be one of the copies.
            (Ok(()) | Err(Error::Full { .. } | Error::BatchTooLarge { .. }), _) => {
                if wrote {
                    history.before_last = None;
                }
            }
            (Err(e), _) => panic!("history: {op:?}: {e}"),
        }
    }
    drop(store);
    // Up to three flipped bits: CRC-32C sees every error of up to five bits in a record or a superblock copy (its
    // Hamming distance is 6 up to 5243 bits, and a record here is at most 512 bytes), so open has no excuse for
    // taking damage for data. (A zeroed or lost sector, in contrast, cannot be told from one never written, and
    // resealing forges checksums at will.)
    let mut image = disk.image();
    for _ in 0..u.int_in_range(0..=3u8).unwrap_or(0) {
        let (at, mask) = (u.int_in_range(0..=image.len() - 1).unwrap_or(0), 1 << u.int_in_range(0..=7u8).unwrap_or(0));
        image[at] ^= mask;
        history.flips.push((at, mask));
    }
    (image, history)
}

fn check(disk: &MemDisk, history: Option<&History>) {
    let store = match block_on(Store::open(disk)) {
        Ok(store) => store,
        Err(Error::CorruptLog(corruption)) => {
            assert_eq!(disk.mutations(), 0, "a refused open changed the disk: {corruption}");
            let options = OpenOptions { on_corruption: OnCorruption::Salvage };
            let store = block_on(Store::open_with(disk, options))
                .unwrap_or_else(|e| panic!("salvaging after \"{corruption}\": {e}"));
            let recovery = *store.recovery();
            match recovery.tail {
                Tail::Salvaged { dropped, .. } => assert_eq!(dropped.at, corruption.from, "{recovery}"),
                _ => panic!("salvaging after \"{corruption}\" found no corruption: {recovery}"),
            }
            store
        }
        // The fake disk never fails an operation the store has the right to make.
        Err(e @ (Error::Disk(_) | Error::DamagedRecord(_))) => panic!("open: {e}"),
        // Taken for a blank disk, a store would be formatted over by open_or_format.
        Err(Error::NotFormatted) if history.is_some() => panic!("a store with bits flipped taken for a blank disk"),
        Err(_) => return,
    };
    let recovery = *store.recovery();
    if recovery.tail == Tail::Clean {
        assert_eq!(disk.mutations(), 0, "a clean open wrote to the disk: {recovery}");
    }
    let stats = store.stats();
    assert!(stats.used_bytes + stats.free_bytes == stats.log_capacity, "{stats:?}");
    assert_eq!(stats.records, recovery.records_replayed, "{stats:?}");
    let mut model = contents(&store);
    if let Some(history) = history {
        if let Err(what) = agrees(&model, &recovery.tail, history) {
            let differ: Vec<_> =
                history.now.keys().chain(model.keys()).filter(|k| history.now.get(*k) != model.get(*k)).collect();
            panic!(
                "{what}: {recovery}; bits flipped {:?}; keys that differ from the acknowledged contents: {differ:?}",
                history.flips
            );
        }
    }
    drop(store);

    // Whatever open cleaned up stays cleaned up, and nothing else changes.
    let mut store = block_on(Store::open(disk)).unwrap_or_else(|e| panic!("second open after {recovery}: {e}"));
    let again = *store.recovery();
    assert_eq!(again.tail, Tail::Clean, "second open after {recovery}: {again}");
    assert_eq!(again.records_replayed, recovery.records_replayed, "second open after {recovery}: {again}");
    assert_eq!(contents(&store), model, "second open after {recovery}");

    // The store takes writes, and keeps them. (A hostile image may describe a log fuller than the store would
    // ever let it get: then it is full, and says so.)
    if let Some(key) = model.keys().next().cloned() {
        match block_on(store.delete(&key)) {
            Ok(true) => drop(model.remove(&key)),
            Ok(false) => panic!("delete {key:?}: not live"),
            Err(Error::Full { .. }) => {}
            Err(e) => panic!("delete {key:?} after {recovery}: {e}"),
        }
    }
    // (An image may be formatted with any largest value from 1 byte: smaller than this one, the put is refused,
    // naming the image's own limit.)
    let value = b"written after open";
    let max_value_len = store.stats().max_value_len;
    match block_on(store.put(b"fuzz", value)) {
        Ok(()) => drop(model.insert(b"fuzz".to_vec(), value.to_vec())),
        Err(Error::Full { .. }) => {}
        Err(Error::ValueTooLarge { len, max }) if len == value.len() && max == max_value_len && len > max as usize => {}
        Err(e) => panic!("put after {recovery}: {e}"),
    }
    block_on(store.compact()).unwrap_or_else(|e| panic!("compact after {recovery}: {e}"));
    assert_eq!(contents(&store), model, "after writes and compaction");
    drop(store);
    let store = block_on(Store::open(disk)).unwrap_or_else(|e| panic!("open after writes: {e}"));
    let after = *store.recovery();
    match after.tail {
        Tail::Clean => {}
        // Stale bytes past the old end that look like a damaged header, now where the log ends: a false alarm
        // (documented in recovery.rs), but nothing of this log may be dropped.
        Tail::Torn(d) if d.records == 0 && d.damage.kind == DamageKind::BadHeader => {}
        _ => panic!("open after writes, after {recovery}: {after}"),
    }
    assert_eq!(contents(&store), model, "open after writes");
}

/// What open gave against what the history acknowledged, given what open reported.
fn agrees(found: &Contents, tail: &Tail, history: &History) -> Result<(), &'static str> {
    let acknowledged = || found.iter().all(|(key, value)| history.values.get(key).is_some_and(|v| v.contains(value)));
    let ok = match tail {
        Tail::Clean => *found == history.now,
        // One flipped bit damages one batch: at most the last one goes.
        Tail::Torn(_) if history.flips.len() == 1 => match &history.before_last {
            Some(before) => *found == history.now || found == before,
            // After a compaction the last batch in the log may be one of its copies: its keys may be gone.
            None => found.iter().all(|(key, value)| history.now.get(key) == Some(value)),
        },
        // Several damaged batches at the end, with nothing intact after them, go together: the log is cut at the
        // first, and whatever is left was acknowledged.
        Tail::Torn(_) | Tail::Salvaged { .. } => acknowledged(),
    };
    match (ok, tail) {
        (true, _) => Ok(()),
        (false, Tail::Clean) => Err("nothing reported dropped, but the contents differ"),
        (false, Tail::Torn(_)) => Err("a torn tail dropped more than the damaged batches"),
        (false, Tail::Salvaged { .. }) => Err("salvaged a value that was never acknowledged"),
    }
}
