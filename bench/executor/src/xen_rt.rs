//! What every size probe shares (so it cancels out of the comparison): a heap on linked_list_allocator over a
//! static array, one allocation the "application" keeps, a panic handler, and the idle instruction standing in
//! for Sirocco's SCHEDOP_poll sleep. Nothing is booted; the images only have to link.

use core::alloc::{GlobalAlloc, Layout};
use core::panic::PanicInfo;
use linked_list_allocator::LockedHeap;

/// linked_list_allocator behind out-of-line entry points, so its code is present (and identical) in every probe
/// whether or not the probe's own allocations get optimised away.
struct Heap(LockedHeap);
unsafe impl GlobalAlloc for Heap {
    #[inline(never)]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        self.0.alloc(l)
    }
    #[inline(never)]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        self.0.dealloc(p, l)
    }
}

#[global_allocator]
static HEAP: Heap = Heap(LockedHeap::empty());
const ARENA_LEN: usize = 1 << 20;
static mut ARENA: [u8; ARENA_LEN] = [0; ARENA_LEN];

/// Initialises the heap and makes one allocation, so the allocator is linked into every probe.
pub fn init_heap() {
    unsafe { HEAP.0.lock().init(core::ptr::addr_of_mut!(ARENA) as *mut u8, ARENA_LEN) };
    let v = alloc::vec![7u8; 64];
    core::hint::black_box(&v);
}

/// Stand-in for blocking in the hypervisor until an event arrives.
#[inline(never)]
pub fn idle() {
    unsafe { core::arch::asm!("hlt", options(nomem, nostack)) }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        idle()
    }
}

/// Three signals forming the probes' ring of tasks; SIGS[0] is also signalled "from outside" when idle.
pub static SIGS: [executor_bench::Signal; 3] =
    [executor_bench::Signal::new(), executor_bench::Signal::new(), executor_bench::Signal::new()];
