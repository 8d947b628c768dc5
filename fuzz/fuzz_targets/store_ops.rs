//! Crash safety under the fuzzer's choices: rounds of open, a workload of puts, deletes, batches and compactions
//! until the disk dies at a chosen write or flush, then a power cut that keeps a chosen part of what had not been
//! flushed (none, all, a prefix, any subset, or any subset with sectors torn part-way).
//!
//! Input, read front to back: sector size, then per round (up to four) when the disk dies, the operations, and
//! the crash's choices. Stores are small (12 KiB with 512-byte sectors, 48 KiB with 4096), so that the log wraps
//! and compaction runs, and a 255-byte key with a 205-byte value fills a batch exactly.
//!
//! Oracles: every open succeeds (a crash is no corruption, so never salvaged); the store holds exactly what was
//! acknowledged, or that plus the whole of the one write in flight when the disk died (a batch is all or
//! nothing); a second open agrees and is clean; after a failed write the store refuses writes until reopened.
#![no_main]

#[path = "store_common.rs"]
mod store_common;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sirocco_store::fake::{block_on, MemDisk, CRASHES};
use sirocco_store::{Error, FormatOptions, Store, Tail};
use store_common::{contents, Contents, InputChoices, Op, MAX_VALUE_LEN};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let sector = if u.ratio(1, 4).unwrap_or(false) { 4096 } else { 512 };
    let mut disk = MemDisk::new(sector, if sector == 512 { 12 * 1024 } else { 48 * 1024 });
    block_on(Store::format(&disk, FormatOptions { volume_nonce: 2, max_value_len: MAX_VALUE_LEN })).expect("format");
    let mut model = Contents::new();
    let mut in_flight: Option<Op> = None;
    for round in 0..u.int_in_range(1..=4u8).unwrap_or(1) {
        let store = block_on(Store::open(&disk)).unwrap_or_else(|e| panic!("round {round}: open: {e}"));
        let recovery = *store.recovery();
        assert!(!matches!(recovery.tail, Tail::Salvaged { .. }), "round {round}: {recovery}");
        let found = contents(&store);
        if found != model {
            let op = in_flight.take().unwrap_or_else(|| panic!("round {round}: acknowledged data lost: {recovery}"));
            op.apply(&mut model);
            assert!(found == model, "round {round}: neither what was acknowledged nor that plus {op:?}: {recovery}");
        }
        in_flight = None;
        // Settled: a second open finds the same, with nothing to clean up.
        drop(store);
        let mut store = block_on(Store::open(&disk)).unwrap_or_else(|e| panic!("round {round}: second open: {e}"));
        assert_eq!(store.recovery().tail, Tail::Clean, "round {round}: second open after {recovery}");
        assert!(contents(&store) == model, "round {round}: the second open differs");

        disk.die_after(u.int_in_range(1..=80u64).unwrap_or(1));
        for _ in 0..u.int_in_range(0..=30u8).unwrap_or(0) {
            let op = Op::decode(&mut u);
            match op.run(&mut store) {
                Ok(()) => op.apply(&mut model),
                // Nothing written, or only compaction's copies (which change nothing).
                Err(Error::Full { .. } | Error::BatchTooLarge { .. }) => {}
                Err(Error::Disk(_)) => {
                    assert!(matches!(op.run(&mut store), Err(Error::Poisoned(_))), "writes after a disk error");
                    in_flight = Some(op);
                    break;
                }
                Err(e) => panic!("round {round}: {op:?}: {e}"),
            }
        }
        drop(store);
        let how = CRASHES[u.int_in_range(0..=CRASHES.len() - 1).unwrap_or(0)];
        disk = disk.crash(&mut InputChoices(&mut u), how);
    }
});
