//! Size probe with embassy-executor as in size_embassy, but every task spawned as a boxed future through one
//! `#[task]` trampoline (how Sirocco's `spawn(impl Future + Send + 'static)` API would sit on embassy).
#![no_std]
#![no_main]
extern crate alloc;
#[path = "../xen_rt.rs"]
mod rt;

use alloc::boxed::Box;
use core::future::Future;
use core::mem::MaybeUninit;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use embassy_executor::raw;
use executor_bench::ring_node;
use rt::SIGS;

static PENDING: AtomicBool = AtomicBool::new(false);

#[export_name = "__pender"]
fn pender(_context: *mut ()) {
    PENDING.store(true, Ordering::Release);
}

#[embassy_executor::task(pool_size = 3)]
async fn boxed(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    f.await
}

static mut EXECUTOR: MaybeUninit<raw::Executor> = MaybeUninit::uninit();

#[no_mangle]
pub extern "C" fn _start() -> ! {
    rt::init_heap();
    let ex: &'static raw::Executor =
        unsafe { (*core::ptr::addr_of_mut!(EXECUTOR)).write(raw::Executor::new(core::ptr::null_mut())) };
    let sp = ex.spawner();
    sp.spawn(boxed(Box::pin(ring_node(&SIGS[0], &SIGS[1], true))).unwrap());
    sp.spawn(boxed(Box::pin(ring_node(&SIGS[1], &SIGS[2], true))).unwrap());
    sp.spawn(boxed(Box::pin(ring_node(&SIGS[2], &SIGS[0], true))).unwrap());
    loop {
        if PENDING.swap(false, Ordering::AcqRel) {
            unsafe { ex.poll() };
        } else {
            rt::idle();
            SIGS[0].signal();
        }
    }
}
