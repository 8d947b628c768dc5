//! Size probe with embassy-executor's raw executor and a custom platform: `__pender` raises a flag, the loop
//! polls while it is set and otherwise idles (where Sirocco would SCHEDOP_poll).
#![no_std]
#![no_main]
extern crate alloc;
#[path = "../xen_rt.rs"]
mod rt;

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use embassy_executor::raw;
use executor_bench::{ring_node, Signal};
use rt::SIGS;

static PENDING: AtomicBool = AtomicBool::new(false);

#[export_name = "__pender"]
fn pender(_context: *mut ()) {
    PENDING.store(true, Ordering::Release);
}

#[embassy_executor::task(pool_size = 3)]
async fn node(me: &'static Signal, next: &'static Signal) {
    ring_node(me, next, true).await
}

static mut EXECUTOR: MaybeUninit<raw::Executor> = MaybeUninit::uninit();

#[no_mangle]
pub extern "C" fn _start() -> ! {
    rt::init_heap();
    let ex: &'static raw::Executor =
        unsafe { (*core::ptr::addr_of_mut!(EXECUTOR)).write(raw::Executor::new(core::ptr::null_mut())) };
    let sp = ex.spawner();
    sp.spawn(node(&SIGS[0], &SIGS[1]).unwrap());
    sp.spawn(node(&SIGS[1], &SIGS[2]).unwrap());
    sp.spawn(node(&SIGS[2], &SIGS[0]).unwrap());
    loop {
        if PENDING.swap(false, Ordering::AcqRel) {
            unsafe { ex.poll() };
        } else {
            rt::idle();
            SIGS[0].signal();
        }
    }
}
