//! Size probe without an executor: the same three task futures, each polled on every round through one
//! out-of-line poll function with a no-op waker (the least any run loop can do).
#![no_std]
#![no_main]
extern crate alloc;
#[path = "../xen_rt.rs"]
mod rt;

use core::future::Future;
use core::pin::{pin, Pin};
use core::task::{Context, Waker};
use executor_bench::ring_node;
use rt::SIGS;

#[inline(never)]
fn poll_one<F: Future>(f: Pin<&mut F>, cx: &mut Context<'_>) {
    let _ = f.poll(cx);
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    rt::init_heap();
    let mut tasks = pin!([
        ring_node(&SIGS[0], &SIGS[1], true),
        ring_node(&SIGS[1], &SIGS[2], true),
        ring_node(&SIGS[2], &SIGS[0], true),
    ]);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        for i in 0..3 {
            // SAFETY: the array is pinned and its elements are never moved out.
            poll_one(unsafe { tasks.as_mut().map_unchecked_mut(|t| &mut t[i]) }, &mut cx);
        }
        rt::idle();
        SIGS[0].signal();
    }
}
