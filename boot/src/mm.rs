//! Memory every mode shares: the heap, what boot did with memory, and the frame numbers Xen knows our pages by.
//! (Each mode's own set-up is `pv::memory` and `hvm::memory_init`.)

use linked_list_allocator::LockedHeap;
use sirocco_boot_logic::PAGE_SIZE;

/// The heap over every free page. linked_list_allocator is the well-kept crate for a first-fit heap over one
/// region; Sirocco needs nothing fancier until it has many cores.
#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

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
    let h = HEAP.lock();
    HeapStats { size: h.size(), used: h.used(), free: h.free() }
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
    unsafe { HEAP.lock().init(start as *mut u8, bytes as usize) };
}
