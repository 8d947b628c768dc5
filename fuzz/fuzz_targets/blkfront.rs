//! blkfront against a hostile blkback: fuzzer-chosen response ids (unknown, duplicate, stale after a
//! cancellation), operations and statuses, `rsp_prod` jumps, partial and reordered completion, and cancellation
//! of operations and async transfers at any point. The scenario and its oracles (conservation of pages, grants and
//! ids; read data exactly the backend's for that request; no panic; bounded work per poll) are
//! `sirocco_drivers::blkfront::fake::scenario`, so a failing input replays as a host test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sirocco_drivers::blkfront::fake::scenario::run(data);
});
