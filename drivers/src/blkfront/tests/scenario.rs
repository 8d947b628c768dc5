//! The fuzz target's scenarios (`fake::scenario`) replayed: the committed seed corpus and the inputs the fuzzer
//! found.

use crate::blkfront::fake::scenario::run;

/// Every input committed in `fuzz/corpus/blkfront/` runs clean.
#[test]
fn the_committed_fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/blkfront");
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 8, "the seeds are in {}", dir.display());
    for path in names {
        let input = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| run(&input));
        assert!(result.is_ok(), "{} failed", path.display());
    }
}

fn seed(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/blkfront").join(name);
    std::fs::read(path).unwrap()
}

/// The seeds do what their names say.
#[test]
fn the_seeds_reach_what_they_are_named_for() {
    let c = run(&seed("round-trip"));
    assert_eq!((c.bytes_written, c.bytes_read, c.faults()), (128 * 512 + 1536, 128 * 512 + 1536, 0));
    assert!(run(&seed("cancel-transfer")).abandoned >= 2);
    let c = run(&seed("hostile-ids"));
    assert!(c.bad_id >= 1 && c.duplicate >= 1 && c.wrong_operation >= 1 && c.bad_status >= 1, "{c}");
    assert!(c.lost_requests >= 1, "{c}");
    assert_eq!(run(&seed("rsp-prod-jump")).ring_overruns, 1);
    let c = run(&seed("cancelled-write-then-flush"));
    assert!(c.abandoned >= 1 && c.flushes >= 1 && c.busy >= 1, "{c}");
    assert!(run(&seed("close-with-futures")).resets >= 2);
    assert!(run(&seed("abandon-sync")).abandoned >= 2);
}
