//! Crash safety: random workloads on a disk that dies at a random point, then loses any part of what it had not
//! flushed; the store must reopen with every acknowledged write exactly as acknowledged, and at most the one
//! write in flight added. Also: compaction crashed at every one of its disk operations.

mod support;

use std::collections::BTreeMap;

use sirocco_store::{Batch, Error, FormatOptions, Store, Tail};
use support::{block_on, contents, Crash, MemDisk, Rng, CRASHES};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One thing the workload does.
#[derive(Clone, Debug)]
enum Action {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Puts (`Some`) and deletes (`None`), in order.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Compact,
}

impl Action {
    fn random(rng: &mut Rng, keys: u64, max_value: u32) -> Action {
        let key = |rng: &mut Rng| format!("key-{}", rng.below(keys)).into_bytes();
        let value = |rng: &mut Rng, max: u64| {
            let len = if rng.chance(10) { rng.below(max + 1) } else { rng.below(48) };
            rng.bytes(len as usize)
        };
        match rng.below(100) {
            0..=54 => Action::Put(key(rng), value(rng, u64::from(max_value))),
            55..=74 => Action::Delete(key(rng)),
            75..=94 => {
                let ops = (0..1 + rng.below(5))
                    .map(|_| (key(rng), if rng.chance(75) { Some(value(rng, 100)) } else { None }))
                    .collect();
                Action::Batch(ops)
            }
            _ => Action::Compact,
        }
    }

    fn apply(&self, model: &mut Model) {
        match self {
            Action::Put(k, v) => drop(model.insert(k.clone(), v.clone())),
            Action::Delete(k) => drop(model.remove(k)),
            Action::Batch(ops) => {
                for (k, v) in ops {
                    match v {
                        Some(v) => drop(model.insert(k.clone(), v.clone())),
                        None => drop(model.remove(k)),
                    }
                }
            }
            Action::Compact => {}
        }
    }

    fn run(&self, store: &mut Store<&MemDisk>) -> Result<(), Error> {
        block_on(async {
            match self {
                Action::Put(k, v) => store.put(k, v).await,
                Action::Delete(k) => store.delete(k).await.map(drop),
                Action::Batch(ops) => {
                    let mut batch = Batch::new();
                    for (k, v) in ops {
                        match v {
                            Some(v) => batch.put(k, v),
                            None => batch.delete(k),
                        };
                    }
                    store.write_batch(&batch).await
                }
                Action::Compact => store.compact().await,
            }
        })
    }
}

/// Rounds of: reopen after the last crash and check; random work until the disk dies; crash.
/// `SIROCCO_STORE_SOAK=N` runs N times the iterations, from other seeds.
fn random_crashes(sector: u32, capacity: u64, max_value_len: u32, iterations: u64, seed: u64) {
    let soak: u64 = std::env::var("SIROCCO_STORE_SOAK").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    let (iterations, seed) = (iterations * soak, seed * soak);
    let options = FormatOptions { volume_nonce: seed, max_value_len };
    let (mut torn_tails, mut died) = (0, 0);
    for iteration in 0..iterations {
        let mut rng = Rng::new(seed + iteration);
        let mut disk = MemDisk::new(sector, capacity);
        block_on(Store::format(&disk, options)).unwrap();
        let mut model = Model::new();
        let mut in_flight: Option<Action> = None;
        for round in 0..4 {
            let context = format!("sector {sector}, seed {}, round {round}", seed + iteration);
            let mut store = block_on(Store::open(&disk)).unwrap_or_else(|e| panic!("{context}: open: {e}"));
            let recovery = *store.recovery();
            assert!(!matches!(recovery.tail, Tail::Salvaged { .. }), "{context}: {recovery}");
            torn_tails += u64::from(matches!(recovery.tail, Tail::Torn(_)));
            let found = contents(&store);
            if found != model {
                // The write in flight at the crash may have made it, whole.
                let action = in_flight.take().unwrap_or_else(|| panic!("{context}: lost acknowledged data"));
                action.apply(&mut model);
                assert_eq!(found, model, "{context}: neither the acknowledged state nor it plus {action:?}");
            }
            in_flight = None;

            disk.die_after(1 + rng.below(60));
            for _ in 0..30 {
                let action = Action::random(&mut rng, 10, max_value_len);
                match action.run(&mut store) {
                    Ok(()) => action.apply(&mut model),
                    // Nothing was written, or only compaction's copies (which change nothing).
                    Err(Error::Full { .. } | Error::BatchTooLarge { .. }) => {}
                    Err(Error::Disk(_)) => {
                        died += 1;
                        in_flight = Some(action);
                        break;
                    }
                    Err(e) => panic!("{context}: {action:?}: {e}"),
                }
                if rng.chance(10) {
                    assert_eq!(contents(&store), model, "{context}: before the crash");
                }
            }
            drop(store);
            // Torn sectors are the harshest crash; give them more turns.
            let how =
                if rng.chance(30) { Crash::TearSectors } else { CRASHES[rng.below(CRASHES.len() as u64) as usize] };
            disk = disk.crash(&mut rng, how);
        }
    }
    eprintln!("sector {sector}: {died} of {rounds} rounds died, {torn_tails} torn tails", rounds = iterations * 4);
    assert!(torn_tails >= iterations / 10, "the crashes should tear writes now and then ({torn_tails})");
}

#[test]
fn random_crashes_512() {
    random_crashes(512, 32 * 1024, 1024, 300, 1000);
}

#[test]
fn random_crashes_4096() {
    random_crashes(4096, 160 * 1024, 1024, 200, 2000);
}

#[test]
fn random_crashes_with_large_values() {
    random_crashes(512, 96 * 1024, 8 * 1024, 100, 3000);
}

/// A store whose log has wrapped and holds superseded records, tombstones and live ones, cleanly flushed.
fn history(sector: u32, seed: u64) -> (MemDisk, Model) {
    let disk = MemDisk::new(sector, 12 * u64::from(sector) * 8);
    let mut store = block_on(Store::format(&disk, FormatOptions { volume_nonce: 1, max_value_len: 1024 })).unwrap();
    let mut rng = Rng::new(seed);
    let mut model = Model::new();
    for i in 0..300 {
        let key = format!("k{}", rng.below(12)).into_bytes();
        if i % 7 == 3 {
            block_on(store.delete(&key)).unwrap();
            model.remove(&key);
        } else {
            let len = rng.below(1000) as usize;
            let value = rng.bytes(len);
            block_on(store.put(&key, &value)).unwrap();
            model.insert(key, value);
        }
    }
    assert!(store.stats().compactions > 0, "the history should have wrapped the log");
    drop(store);
    (disk.clone_flushed(), model)
}

#[test]
fn compaction_crashed_at_every_step() {
    for sector in [512, 4096] {
        let (image, model) = history(sector, u64::from(sector));
        let steps = {
            let disk = image.clone_flushed();
            let mut store = block_on(Store::open(&disk)).unwrap();
            let before = disk.mutations();
            block_on(store.compact()).unwrap();
            assert_eq!(contents(&store), model);
            disk.mutations() - before
        };
        assert!(steps >= 4, "a compaction should take several writes and flushes ({steps})");
        let mut rng = Rng::new(7);
        let mut torn_superblocks = 0;
        for die_at in 1..=steps {
            let disk = image.clone_flushed();
            let mut store = block_on(Store::open(&disk)).unwrap();
            disk.die_after(die_at);
            assert!(matches!(block_on(store.compact()), Err(Error::Disk(_))));
            assert!(matches!(block_on(store.put(b"x", b"y")), Err(Error::Poisoned(_))));
            drop(store);
            // Every kind of crash, the random ones several times.
            for how in CRASHES.into_iter().chain([Crash::Subset, Crash::Prefix]).chain([Crash::TearSectors; 12]) {
                let crashed = disk.crash(&mut rng, how);
                let context = format!("sector {sector}, died at {die_at}/{steps}, {how:?}");
                let mut store = block_on(Store::open(&crashed)).unwrap_or_else(|e| panic!("{context}: {e}"));
                torn_superblocks += u64::from(store.recovery().damaged_superblock.is_some());
                assert_eq!(contents(&store), model, "{context}");
                // The store carries on: compaction completes, and a further reopen agrees.
                block_on(store.compact()).unwrap_or_else(|e| panic!("{context}: compact again: {e}"));
                block_on(store.put(b"after", b"crash")).unwrap();
                drop(store);
                let store = block_on(Store::open(&crashed)).unwrap();
                let mut expected = model.clone();
                expected.insert(b"after".to_vec(), b"crash".to_vec());
                assert_eq!(contents(&store), expected, "{context}: after a second open");
                assert_eq!(store.recovery().damaged_superblock, None, "{context}: the torn copy was replaced");
            }
        }
        assert!(torn_superblocks > 0, "sector {sector}: some crash should have torn a superblock write");
    }
}

#[test]
fn a_torn_batch_is_all_or_nothing() {
    let mut rng = Rng::new(99);
    let mut seen = [false; 2];
    for _ in 0..200 {
        let disk = MemDisk::new(512, 64 * 1024);
        let mut store =
            block_on(Store::format(&disk, FormatOptions { max_value_len: 4096, ..Default::default() })).unwrap();
        block_on(store.put(b"before", b"1")).unwrap();
        let mut batch = Batch::new();
        for i in 0..6 {
            batch.put(format!("b{i}").as_bytes(), &rng.bytes(300));
        }
        disk.die_after(1); // the batch's write reaches the cache, its flush never happens
        assert!(block_on(store.write_batch(&batch)).is_err());
        drop(store);
        let crashed = disk.crash(&mut rng, Crash::Subset);
        let store = block_on(Store::open(&crashed)).unwrap();
        let keys = store.len();
        assert!(keys == 1 || keys == 7, "{keys} keys: a batch must be all or nothing");
        seen[usize::from(keys == 7)] = true;
        assert_eq!(block_on(store.get(b"before")).unwrap().as_deref(), Some(&b"1"[..]));
    }
    assert_eq!(seen, [true, true], "both outcomes should occur");
}
