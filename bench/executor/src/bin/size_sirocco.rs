//! Size probe with Sirocco's executor (kernel/src/executor.rs).
#![no_std]
#![no_main]
extern crate alloc;
#[path = "../xen_rt.rs"]
mod rt;

use executor_bench::ring_node;
use rt::SIGS;
use executor_bench::sirocco_executor::Executor;

#[no_mangle]
pub extern "C" fn _start() -> ! {
    rt::init_heap();
    let mut ex = Executor::new();
    let sp = ex.spawner();
    sp.spawn(ring_node(&SIGS[0], &SIGS[1], true));
    sp.spawn(ring_node(&SIGS[1], &SIGS[2], true));
    sp.spawn(ring_node(&SIGS[2], &SIGS[0], true));
    loop {
        if ex.run_ready(64) == 0 {
            rt::idle();
            SIGS[0].signal();
        }
    }
}
