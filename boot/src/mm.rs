//! Memory every mode shares: the heap, what boot did with memory, and the frame numbers Xen knows our pages by.
//! (Each mode's own set-up is `pv::memory` and `hvm::memory_init`.)

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::LockedHeap;
use sirocco_boot_logic::PAGE_SIZE;
use spin::{Mutex, Once};

/// The heap over every free page. linked_list_allocator is the well-kept crate for a first-fit heap over one
/// region; Sirocco needs nothing fancier until it has many cores. Wrapped only to count what it refuses, for the
/// out-of-memory report (`crash::print_heap`).
#[global_allocator]
static HEAP: Heap = Heap(LockedHeap::empty());

struct Heap(LockedHeap);

// SAFETY: every call is forwarded to linked_list_allocator's `LockedHeap` with the caller's layout and pointer
// unchanged; the wrapper only records a null return.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's promises, passed on.
        let p = unsafe { self.0.alloc(layout) };
        if p.is_null() {
            crate::crash::allocation_refused(layout.size(), layout.align());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's promises, passed on.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// What boot did with memory; apps see it in `Env::memory`.
#[derive(Clone, Copy, Debug)]
pub struct MemoryInfo {
    /// Memory the domain owns (`nr_pages` * 4 KiB).
    pub domain_bytes: u64,
    /// Bytes of the loaded image (text, data, bss, boot stack).
    pub image_bytes: u64,
    /// Start of the heap.
    pub heap_start: u64,
    /// Bytes handed to the heap.
    pub heap_bytes: u64,
    /// Page-table pages added to map all memory.
    pub page_tables_added: u64,
    /// Pages Sirocco mapped itself (PV: the rest Xen had mapped at start of day; PVH/HVM: 4 KiB pages, counting a
    /// 2 MiB page as 512).
    pub pages_mapped: u64,
    /// `mmu_update` hypercalls used for that (PV; 0 under PVH/HVM, whose page tables are the guest's own).
    pub mmu_hypercalls: u64,
}

/// A snapshot of the heap.
#[derive(Clone, Copy, Debug)]
pub struct HeapStats {
    /// Bytes under management.
    pub size: usize,
    /// Bytes allocated.
    pub used: usize,
    /// Bytes free (possibly fragmented).
    pub free: usize,
}

/// The heap now.
pub fn heap_stats() -> HeapStats {
    HeapStats::of(&HEAP.0.lock())
}

/// The heap now, unless its lock is held (by code that panicked or faulted inside the allocator).
pub(crate) fn try_heap_stats() -> Option<HeapStats> {
    HEAP.0.try_lock().map(|h| HeapStats::of(&h))
}

impl HeapStats {
    fn of(h: &linked_list_allocator::Heap) -> HeapStats {
        HeapStats { size: h.size(), used: h.used(), free: h.free() }
    }
}

/// The frame number Xen knows the page at virtual address `va` by (any address of ours): the machine frame under
/// PV (through the p2m list), the guest frame under PVH/HVM (virtual = guest-physical, and Xen translates).
pub fn virt_to_mfn(va: u64) -> u64 {
    match crate::pv::memory::p2m() {
        Some(p2m) => p2m[(va / PAGE_SIZE) as usize],
        None => {
            assert!(crate::mode::boot_mode().translated(), "memory set up at boot");
            va / PAGE_SIZE
        }
    }
}

/// Hands `[start, start + bytes)` to the heap. Called once, by the mode's memory set-up.
///
/// # Safety
/// The range must be mapped writable, and nothing else may use it, for the domain's life.
pub(crate) unsafe fn init_heap(start: u64, bytes: u64) {
    // SAFETY: the caller's promise.
    unsafe { HEAP.0.lock().init(start as *mut u8, bytes as usize) };
}

/// Whole free pages outside the heap, handed out by [`crate::grant::Page::new`] before the heap. Under PV the
/// frames below the image (1 KiB short of its first MiB: frame 0 stays unmapped) are RAM nobody uses, and the heap
/// cannot take them (linked_list_allocator manages one contiguous region, which is above the image): on a guest
/// of 4 MiB that is a quarter of its memory. Ring and buffer pages are page-sized and page-aligned anyway, so the
/// vifs' and vbds' pages come from here first.
static PAGE_POOL: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// The pool's address range, to tell its pages from the heap's when they are given back.
static PAGE_POOL_RANGE: Once<(u64, u64)> = Once::new();

/// Gives the pages of `[start, end)` (page-aligned) to the page pool. Called once, by the mode's memory set-up,
/// after the heap is up (the pool's list lives on the heap).
///
/// # Safety
/// The range must be mapped writable, and nothing else may use it, for the domain's life.
pub(crate) unsafe fn init_page_pool(start: u64, end: u64) {
    let mut pool = PAGE_POOL.lock();
    let mut va = end;
    while va > start {
        va -= PAGE_SIZE;
        pool.push(va);
    }
    PAGE_POOL_RANGE.call_once(|| (start, end));
}

/// A zeroed page from the pool, if one is left.
pub(crate) fn take_pool_page() -> Option<NonNull<u8>> {
    let va = PAGE_POOL.lock().pop()?;
    let page = va as *mut u8;
    // SAFETY: the pool owns `va`'s page (mapped writable, used by nobody: `init_page_pool`'s promise) until now,
    // when it passes to the caller.
    unsafe { core::ptr::write_bytes(page, 0, PAGE_SIZE as usize) };
    NonNull::new(page)
}

/// Whether `page` came from the pool.
pub(crate) fn is_pool_page(page: *const u8) -> bool {
    PAGE_POOL_RANGE.get().is_some_and(|&(start, end)| (start..end).contains(&(page as u64)))
}

/// Gives a page from [`take_pool_page`] back.
pub(crate) fn give_back_pool_page(page: NonNull<u8>) {
    PAGE_POOL.lock().push(page.as_ptr() as u64);
}

/// Bytes in the page pool's free pages (0 under PVH/HVM, which have no pool).
pub fn page_pool_free() -> usize {
    PAGE_POOL.lock().len() * PAGE_SIZE as usize
}
