//! PV memory: the machine<->pseudo-physical translations and page tables over all of the domain's memory (the logic
//! is `sirocco_boot_logic::pagetable`, tested on the host; this is its hypervisor-facing half).

use crate::abi::{start_info, MmuUpdate, MACH2PHYS_VIRT_START};
use crate::grant::Page;
use crate::hypercall;
use crate::mm::{init_heap, MemoryInfo};
use alloc::vec::Vec;
use core::fmt;
use core::ptr::addr_of;
use sirocco_boot_logic::layout::{self, LayoutError, StartOfDay};
use sirocco_boot_logic::pagetable::{self, MapRequest, PageTableError, PageTableOps};
use sirocco_boot_logic::{Mfn, Pfn, PAGE_SIZE};

extern "C" {
    static __image_start: u8;
    static __stack_guard: u8;
}

static P2M: spin::Once<&'static [u64]> = spin::Once::new();

/// Looks up the machine-to-phys table Xen maps read-only into every PV guest.
pub(crate) fn mfn_to_pfn(mfn: Mfn) -> Pfn {
    // SAFETY: xen.h guarantees the M2P table is mapped readable at MACH2PHYS_VIRT_START for PV guests, one u64 per
    // machine frame; the frames asked about (console, xenstore, our page tables) are real frames of this domain.
    Pfn(unsafe { (MACH2PHYS_VIRT_START as *const u64).add(mfn.0 as usize).read_volatile() })
}

/// The platform half of the page-table builder.
struct XenPageTables {
    p2m: &'static [u64],
}

impl PageTableOps for XenPageTables {
    fn read_entry(&self, table: Mfn, index: usize) -> u64 {
        assert!(index < pagetable::ENTRIES);
        let va = mfn_to_pfn(table).vaddr();
        // SAFETY: the builder only asks about tables reachable from the L4 in use; every one of them lies in the
        // start-of-day region or was taken from a mapped free frame, and page tables are always mapped (read-only)
        // at their identity address. Volatile: Xen, not Rust, writes these pages.
        unsafe { (va as *const u64).add(index).read_volatile() }
    }

    fn zero_page(&mut self, pfn: Pfn) {
        // SAFETY: the builder zeroes only frames at or after the first free frame that it has checked are mapped;
        // nothing else uses them yet.
        unsafe { core::ptr::write_bytes(pfn.vaddr() as *mut u8, 0, PAGE_SIZE as usize) };
    }

    fn pfn_to_mfn(&self, pfn: Pfn) -> Mfn {
        Mfn(self.p2m.get(pfn.0 as usize).copied().unwrap_or(u64::MAX))
    }

    fn mmu_update(&mut self, updates: &[MmuUpdate]) -> Result<(), i64> {
        // SAFETY: the builder only adds mappings of unused frames and makes new table frames read-only, and
        // `protect` only takes rights away from the image's pages that no Rust code uses that way: it never writes
        // code or constants (`static`s without interior mutability), and never runs code outside `.text`. No
        // mapping Rust code relies on changes.
        unsafe { hypercall::mmu_update(updates) }
    }
}

/// Why memory could not be set up.
#[derive(Debug)]
pub enum MemoryError {
    /// start_info's layout breaks the rules.
    Layout(LayoutError),
    /// Mapping the rest of memory failed.
    PageTables(PageTableError),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::Layout(e) => write!(f, "start-of-day layout: {e}"),
            MemoryError::PageTables(e) => write!(f, "mapping memory: {e}"),
        }
    }
}

/// PV: maps all memory and starts the heap.
pub(crate) fn init(si: &start_info) -> Result<MemoryInfo, MemoryError> {
    // The image's end includes the symbol table the build appended after `__image_end`.
    let (image_start, image_end, guard) =
        (addr_of!(__image_start) as u64, crate::crash::image_end(), addr_of!(__stack_guard) as u64);
    let sod = StartOfDay {
        nr_pages: si.nr_pages,
        pt_base: si.pt_base,
        nr_pt_frames: si.nr_pt_frames,
        mfn_list: si.mfn_list,
        start_info: si as *const start_info as u64,
        image_start,
        image_end,
    };
    let plan = layout::plan(&sod).map_err(MemoryError::Layout)?;
    // SAFETY: Xen puts the p2m list (nr_pages u64s) at mfn_list inside the start-of-day region (checked by
    // `layout::plan` to lie after the image); it stays there, and only Xen would change it (it does not for a
    // domain that does not balloon).
    let p2m: &'static [u64] = unsafe { core::slice::from_raw_parts(si.mfn_list as *const u64, si.nr_pages as usize) };

    P2M.call_once(|| p2m);
    let mut ops = XenPageTables { p2m };
    let root = ops.pfn_to_mfn(Pfn::containing(si.pt_base));
    let protection = crate::protect::image(crate::protect::cpu_has_nx());
    let req = MapRequest {
        root,
        first_pfn: plan.first_mapped,
        nr_pages: plan.nr_pages,
        first_free: plan.first_free,
        nx: protection.nx,
        image: (Pfn::containing(image_start), Pfn(image_end.div_ceil(PAGE_SIZE))),
    };
    let mut batch = [MmuUpdate::default(); 256];
    let out = pagetable::map_all(&mut ops, &req, &mut batch).map_err(MemoryError::PageTables)?;
    // W^X for the image the builder mapped writable and executable: code read-only, constants read-only, the rest
    // (data, .bss with the boot stack, the symbol table) not executable. Frames are kept, so a page re-pointed
    // already (shared_info) keeps its frame.
    pagetable::protect(&mut ops, root, image_start, image_end, &protection, &mut batch)
        .map_err(MemoryError::PageTables)?;
    if let Err(e) = hypercall::tlb_flush_local() {
        log::warn!("TLB flush after protecting the image failed: error {e}; stale entries may allow writes to code");
    }
    crate::protect::applied(&protection);
    // Only now, so the builder (which checks every present entry against the p2m, and maps every missing one)
    // sees the start-of-day mappings untouched: unmap page 0 (null pointers fault) and the guard page under the
    // boot stack (an overflow faults instead of corrupting .bss).
    for (va, what) in [(0u64, "page 0"), (guard, "stack guard page")] {
        // SAFETY: nothing uses page 0 (the image starts at 1 MiB) or the guard page (reserved in linker.ld).
        if let Err(e) = unsafe { hypercall::update_va_mapping(va, 0) } {
            log::debug!("could not unmap {what} at {va:#x}: error {e} (was it mapped?)");
        }
    }
    let (heap_start, heap_bytes) = layout::heap_region(out.next_free, plan.nr_pages);
    // SAFETY: the heap region runs from the first frame after the new page tables to the end of memory: all of it
    // is now mapped writable, and nothing else uses it.
    unsafe { init_heap(heap_start, heap_bytes) };
    // SAFETY: frames 1 up to the image are RAM the builder left unused (it lays out everything from the image
    // up: `layout::plan` checks the start-of-day region lies after it), mapped writable by `map_all` (from frame
    // 1), and used by nothing else from now on.
    unsafe { crate::mm::init_page_pool(Pfn(1).vaddr(), image_start) };
    Ok(MemoryInfo {
        domain_bytes: si.nr_pages * PAGE_SIZE,
        image_bytes: image_end - image_start,
        heap_start,
        heap_bytes,
        page_tables_added: out.new_tables.iter().sum(),
        pages_mapped: out.pages_mapped,
        mmu_hypercalls: out.hypercalls,
    })
}

/// The p2m list (PV only; `None` in the translated modes).
pub(crate) fn p2m() -> Option<&'static [u64]> {
    P2M.get().copied()
}

/// The pages of the published p2m tree: the top page, then the frame-list pages (kept for the domain's life, and
/// rewritten after a resume).
static P2M_TREE: spin::Mutex<Vec<Page>> = spin::Mutex::new(Vec::new());

/// Publishes the p2m list in shared_info the way Linux does (`arch.max_pfn` and the three-level
/// `pfn_to_mfn_frame_list_list`: one page naming the frame-list pages, each naming up to 512 pages of the p2m list),
/// so the toolstack can read the domain's memory by pseudo-physical frame: `xl dump-core` refuses a PV domain
/// without it ("p2m_size < nr_pages"), and so does `xl save`. Called at boot, and again after a resume (issue 16):
/// a restore zeroes the published top and leaves the tree naming the old host's frames, so the same pages are
/// filled again from the p2m list, which the toolstack rewrote with the new frames.
pub(crate) fn publish_p2m() {
    let Some(p2m) = p2m() else { return };
    let base = p2m.as_ptr() as u64;
    if !base.is_multiple_of(PAGE_SIZE) {
        log::warn!("the p2m list at {base:#x} is not page-aligned: not published (xl dump-core will refuse us)");
        return;
    }
    const PER_PAGE: usize = 512;
    let p2m_pages = p2m.len().div_ceil(PER_PAGE);
    let list_pages = p2m_pages.div_ceil(PER_PAGE);
    let mut tree = P2M_TREE.lock();
    while tree.len() < 1 + list_pages {
        tree.push(Page::new());
    }
    let (top, lists) = tree.split_at_mut(1);
    for (l, list) in lists.iter_mut().enumerate() {
        let first = l * PER_PAGE;
        for (k, entry) in list.bytes_mut().chunks_exact_mut(8).take(p2m_pages - first).enumerate() {
            entry.copy_from_slice(&crate::mm::virt_to_mfn(base + ((first + k) as u64) * PAGE_SIZE).to_le_bytes());
        }
        top[0].bytes_mut()[l * 8..l * 8 + 8].copy_from_slice(&list.mfn().to_le_bytes());
    }
    crate::xen::publish_p2m(p2m.len() as u64, top[0].mfn());
}
