//! Grant tables (v1), the platform half: the table frames (PV: from `GNTTABOP_setup_table`, mapped with
//! `update_va_mapping`; PVH/HVM: placed with `XENMAPSPACE_grant_table`) over a reserved range of the image
//! (`__grant_table_area`), the entries accessed with the ordering Xen requires, and an
//! API that ties each grant to the page it shares. The reference bookkeeping (allocation, revoke protocol,
//! deferred revokes) is `sirocco_drivers::grant`, tested on the host.

use crate::abi::*;
use crate::{hypercall, mm};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::addr_of_mut;
use core::sync::atomic::{fence, AtomicU16, Ordering};
use sirocco_boot_logic::pagetable::DATA_FLAGS;
use sirocco_drivers::grant::abi::GrantEntryV1;
use sirocco_drivers::grant::{EndAccess, GrantEntries, GrantError, GrantRef, GrantTable};

/// Frames reserved in linker.ld.
const MAX_FRAMES: u32 = 16;

extern "C" {
    static mut __grant_table_area: [u8; MAX_FRAMES as usize * 4096];
}

/// The mapped table: `capacity` entries (`grant_entry_v1_t`, `GrantEntryV1`) that Xen reads, and updates
/// (`GTF_reading`/`GTF_writing`) while a peer maps or copies a granted page. Never reached through a reference.
struct XenGrantEntries {
    base: *mut GrantEntryV1,
    capacity: u32,
}

// SAFETY: the table stays mapped for the domain's life; Sirocco runs on one vCPU and the Mutex below serialises
// our side.
unsafe impl Send for XenGrantEntries {}

impl XenGrantEntries {
    fn entry(&self, r: GrantRef) -> *mut GrantEntryV1 {
        assert!(r.0 < self.capacity, "grant ref {} beyond the table", r.0);
        self.base.wrapping_add(r.0 as usize)
    }
    fn flags_atomic(&self, r: GrantRef) -> &AtomicU16 {
        let e = self.entry(r);
        // SAFETY: `e` is an entry inside the mapped table (checked in `entry`), so `flags` is a valid, 2-aligned
        // u16 for the table's life (the domain's). Xen updates it concurrently with atomic operations of the same
        // size, and we only ever access it atomically; `addr_of_mut!` makes no reference.
        unsafe { AtomicU16::from_ptr(addr_of_mut!((*e).flags)) }
    }
}

impl GrantEntries for XenGrantEntries {
    fn capacity(&self) -> u32 {
        self.capacity
    }
    fn flags(&self, r: GrantRef) -> u16 {
        self.flags_atomic(r).load(Ordering::SeqCst)
    }
    fn set_frame_and_domid(&mut self, r: GrantRef, frame: u32, domid: u16) {
        let e = self.entry(r);
        // SAFETY: `domid` and `frame` of an entry inside the mapped table (checked in `entry`), aligned; volatile
        // stores through raw pointers. The entry is free (flags clear), so Xen does not act on these fields until
        // `publish_flags` (release) makes them part of a grant.
        unsafe {
            addr_of_mut!((*e).domid).write_volatile(domid);
            addr_of_mut!((*e).frame).write_volatile(frame);
        }
    }
    fn publish_flags(&mut self, r: GrantRef, flags: u16) {
        fence(Ordering::Release);
        self.flags_atomic(r).store(flags, Ordering::SeqCst);
    }
    fn compare_exchange_flags(&mut self, r: GrantRef, current: u16, new: u16) -> Result<u16, u16> {
        self.flags_atomic(r).compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
    }
}

static TABLE: spin::Mutex<Option<GrantTable<XenGrantEntries>>> = spin::Mutex::new(None);

/// Why the grant table could not be set up.
#[derive(Debug)]
pub struct SetupError {
    pub(crate) what: &'static str,
    pub(crate) code: i64,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grant table setup: {} (code {})", self.what, self.code)
    }
}

/// Sets up and maps the grant table. Called once at boot.
pub(crate) fn init() -> Result<u32, SetupError> {
    let mut q = GnttabQuerySize { dom: DOMID_SELF as u16, nr_frames: 0, max_nr_frames: 0, status: 0 };
    // SAFETY: GnttabQuerySize is the struct for GNTTABOP_query_size (layout checked in abi.rs).
    let rc = unsafe { hypercall::grant_table_op(GNTTABOP_QUERY_SIZE, &mut q) };
    if rc < 0 || q.status != 0 {
        return Err(SetupError { what: "query_size refused", code: if rc < 0 { rc } else { q.status.into() } });
    }
    let frames = q.max_nr_frames.min(MAX_FRAMES);
    FRAMES.store(frames, core::sync::atomic::Ordering::Relaxed);
    let base = addr_of_mut!(__grant_table_area) as *mut u8;
    if crate::mode::boot_mode().translated() {
        map_frames_hvm(base as u64, frames)?;
    } else {
        map_frames_pv(base as u64, frames)?;
    }
    let entries =
        XenGrantEntries { base: base as *mut GrantEntryV1, capacity: sirocco_drivers::grant::abi::entries_in(frames) };
    *TABLE.lock() = Some(GrantTable::new(entries));
    Ok(frames)
}

/// How many table frames `init` mapped (for a suspend to unmap and a resume to map again).
static FRAMES: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Before a suspend (PV): the table frames' mappings go, since the toolstack refuses to save a page table that maps
/// a frame outside the domain's memory ("Bad mfn for L1"). Nothing touches the table until [`resume_frames`].
pub(crate) fn suspend_frames() -> Result<(), SetupError> {
    if crate::mode::boot_mode().translated() {
        return Ok(());
    }
    let base = addr_of_mut!(__grant_table_area) as u64;
    for i in 0..u64::from(FRAMES.load(core::sync::atomic::Ordering::Relaxed)) {
        // SAFETY: the reserved area is only reached through XenGrantEntries, which nothing uses until the resume.
        unsafe { hypercall::update_va_mapping(base + i * 4096, 0) }
            .map_err(|code| SetupError { what: "unmapping a table frame before a suspend", code })?;
    }
    Ok(())
}

/// After a suspend: the table frames mapped again (`GNTTABOP_setup_table` names them afresh: after a restore they
/// are the new host's, and the table is empty but for the toolstack's entries 0 and 1).
pub(crate) fn resume_frames() -> Result<(), SetupError> {
    let base = addr_of_mut!(__grant_table_area) as u64;
    let frames = FRAMES.load(core::sync::atomic::Ordering::Relaxed);
    if crate::mode::boot_mode().translated() {
        map_frames_hvm(base, frames)
    } else {
        map_frames_pv(base, frames)
    }
}

/// PVH/HVM: each table frame placed at a page of the reserved area with `XENMAPSPACE_grant_table` (which also
/// grows the table to that many frames); the identity map reaches them there.
fn map_frames_hvm(base: u64, frames: u32) -> Result<(), SetupError> {
    for i in 0..frames {
        let gpfn = (base >> 12) + u64::from(i);
        // SAFETY: the reserved area is never used as Rust data (only through XenGrantEntries), so replacing the RAM
        // frames behind it with grant-table frames invalidates nothing.
        unsafe { hypercall::add_to_physmap(XENMAPSPACE_GRANT_TABLE, u64::from(i), gpfn) }
            .map_err(|code| SetupError { what: "placing a table frame (add_to_physmap)", code })?;
    }
    Ok(())
}

/// PV: `GNTTABOP_setup_table` gives the frames' machine numbers; each is mapped over a page of the reserved area.
fn map_frames_pv(base: u64, frames: u32) -> Result<(), SetupError> {
    let mut list = [0u64; MAX_FRAMES as usize];
    let mut s =
        GnttabSetupTable { dom: DOMID_SELF as u16, nr_frames: frames, status: 0, frame_list: list.as_mut_ptr() };
    // SAFETY: GnttabSetupTable is the struct for GNTTABOP_setup_table; `list` has room for `frames` entries and
    // lives for the call.
    let rc = unsafe { hypercall::grant_table_op(GNTTABOP_SETUP_TABLE, &mut s) };
    if rc < 0 || s.status != 0 {
        return Err(SetupError { what: "setup_table refused", code: if rc < 0 { rc } else { s.status.into() } });
    }
    for (i, &mfn) in list[..frames as usize].iter().enumerate() {
        let va = base + i as u64 * 4096;
        // SAFETY: the reserved area is never used as Rust data (only through XenGrantEntries), so re-pointing its
        // pages at the grant frames Xen gave us invalidates nothing.
        unsafe { hypercall::update_va_mapping(va, (mfn << 12) | DATA_FLAGS) }
            .map_err(|code| SetupError { what: "mapping a table frame", code })?;
    }
    Ok(())
}

fn with_table<R>(f: impl FnOnce(&mut GrantTable<XenGrantEntries>) -> R) -> R {
    f(TABLE.lock().as_mut().expect("grant table set up at boot"))
}

/// A page-aligned 4 KiB buffer from the heap, shareable with another domain. Held by raw pointer (not a `Box`)
/// because once granted the peer may write it at any time: shared pages are only touched with volatile accesses.
pub struct Page(core::ptr::NonNull<PageBuf>);

#[repr(C, align(4096))]
struct PageBuf([u8; 4096]);

// SAFETY: a Page owns its allocation exclusively (like a Box); it is sent between tasks, never shared.
unsafe impl Send for Page {}

impl Page {
    /// A zeroed page: from the page pool while it lasts (`mm::take_pool_page`), then from the heap.
    pub fn new() -> Page {
        match mm::take_pool_page() {
            Some(page) => Page(page.cast()),
            None => Page(core::ptr::NonNull::from(Box::leak(Box::new(PageBuf([0; 4096]))))),
        }
    }
    /// Its bytes (an ungranted page is ours alone).
    pub fn bytes(&self) -> &[u8; 4096] {
        // SAFETY: the allocation is live and owned by this Page; while it is not granted nobody else writes it.
        unsafe { &self.0.as_ref().0 }
    }
    /// Its bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8; 4096] {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { &mut self.0.as_mut().0 }
    }
    /// The machine frame holding it (what a grant names).
    pub fn mfn(&self) -> u64 {
        mm::virt_to_mfn(self.0.as_ptr() as u64)
    }
    /// The page's address, for volatile access while it is shared.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr() as *mut u8
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if mm::is_pool_page(self.0.as_ptr() as *const u8) {
            mm::give_back_pool_page(self.0.cast());
        } else {
            // SAFETY: not a pool page, so allocated by Box::leak in `new`, and freed only here.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        }
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

/// A page granted to another domain. The page cannot be touched again until the grant is revoked: [`revoke`]
/// gives it back, or returns the grant with the reason when the peer still has it mapped.
///
/// [`revoke`]: Grant::revoke
pub struct Grant {
    page: Option<Page>,
    gref: GrantRef,
    domid: u16,
    readonly: bool,
}

impl Grant {
    /// Grants `domid` access to `page`.
    pub fn new(domid: u16, page: Page, readonly: bool) -> Result<Grant, (Page, GrantError)> {
        match with_table(|t| t.grant_access(domid, page.mfn(), readonly)) {
            Ok(gref) => Ok(Grant { page: Some(page), gref, domid, readonly }),
            Err(e) => Err((page, e)),
        }
    }
    /// The reference to hand to the peer.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }
    /// The domain granted.
    pub fn domid(&self) -> u16 {
        self.domid
    }
    /// The shared page's address, for volatile access by drivers.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.page.as_ref().expect("page present until revoked").as_ptr()
    }
    /// Copies `out.len()` bytes at `offset` out of the shared page. Volatile: the peer may be writing the page
    /// even now (a writable grant stays writable until revoked); the caller gets a copy to validate.
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= 4096, "read past the page");
        // SAFETY: `offset..offset + out.len()` lies inside the live 4 KiB page (checked above).
        unsafe { copy_from_shared(self.as_ptr().add(offset), out) };
    }
    /// Copies `data` into the shared page at `offset`. Volatile: the peer may be reading (or, if it may write,
    /// writing) the page concurrently.
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= 4096, "write past the page");
        // SAFETY: `offset..offset + data.len()` lies inside the live 4 KiB page (checked above).
        unsafe { copy_to_shared(self.as_ptr().add(offset), data) };
    }
    /// After a resume in a new domain, whose grant table Xen starts empty: grants the page again, to `domid`
    /// (the new backend's domain), under the same ref (`GrantTable::regrant`).
    pub fn regrant(&mut self, domid: u16) -> Result<(), GrantError> {
        let mfn = self.page.as_ref().expect("page present until revoked").mfn();
        with_table(|t| t.regrant(self.gref, domid, mfn, self.readonly))?;
        self.domid = domid;
        Ok(())
    }
    /// Ends the peer's access and returns the page; refused (nothing changes) while the peer still maps it.
    pub fn revoke(mut self) -> Result<Page, (Grant, GrantError)> {
        match with_table(|t| t.end_access(self.gref)) {
            Ok(()) => Ok(self.page.take().expect("page present until revoked")),
            Err(e) => Err((self, e)),
        }
    }
}

/// Copies `out.len()` bytes from shared memory at `src` with volatile loads (8 bytes at a time where aligned), each
/// byte read once: the peer may write the memory concurrently, which can change what we copy but not make the copy
/// unsound, since no reference to the shared bytes is made.
///
/// # Safety
/// `src..src + out.len()` must be inside one live allocation (or mapping) for the whole call.
pub(crate) unsafe fn copy_from_shared(src: *const u8, out: &mut [u8]) {
    let mut i = 0;
    while i < out.len() && !(src as usize + i).is_multiple_of(8) {
        // SAFETY: `src + i` is inside the range the caller vouches for.
        out[i] = unsafe { src.add(i).read_volatile() };
        i += 1;
    }
    while i + 8 <= out.len() {
        // SAFETY: `src + i` is 8-aligned (the loop above) and the 8 bytes from it are inside the caller's range.
        let word = unsafe { (src.add(i) as *const u64).read_volatile() };
        out[i..i + 8].copy_from_slice(&word.to_ne_bytes());
        i += 8;
    }
    while i < out.len() {
        // SAFETY: `src + i` is inside the caller's range.
        out[i] = unsafe { src.add(i).read_volatile() };
        i += 1;
    }
}

/// Copies `data` to shared memory at `dst` with volatile stores (8 bytes at a time where aligned).
///
/// # Safety
/// `dst..dst + data.len()` must be inside one live, writable allocation (or mapping) for the whole call.
pub(crate) unsafe fn copy_to_shared(dst: *mut u8, data: &[u8]) {
    let mut i = 0;
    while i < data.len() && !(dst as usize + i).is_multiple_of(8) {
        // SAFETY: `dst + i` is inside the range the caller vouches for.
        unsafe { dst.add(i).write_volatile(data[i]) };
        i += 1;
    }
    while i + 8 <= data.len() {
        let word = u64::from_ne_bytes(data[i..i + 8].try_into().expect("8 bytes"));
        // SAFETY: `dst + i` is 8-aligned (the loop above) and the 8 bytes from it are inside the caller's range.
        unsafe { (dst.add(i) as *mut u64).write_volatile(word) };
        i += 8;
    }
    while i < data.len() {
        // SAFETY: `dst + i` is inside the caller's range.
        unsafe { dst.add(i).write_volatile(data[i]) };
        i += 1;
    }
}

/// Pages whose revoke had to wait for the peer: kept alive (never reused) until the peer lets go.
static PARKED: spin::Mutex<Vec<(GrantRef, Page)>> = spin::Mutex::new(Vec::new());

impl Drop for Grant {
    fn drop(&mut self) {
        let Some(page) = self.page.take() else { return };
        match with_table(|t| t.end_access_deferred(self.gref)) {
            Ok(EndAccess::Freed) => {}
            Ok(EndAccess::Deferred { .. }) => PARKED.lock().push((self.gref, page)),
            // Not revocable and not deferrable: keep the page forever rather than let it be reused.
            Err(e) => {
                log::error!("grant: dropping {}: {e}; leaking its page", self.gref);
                core::mem::forget(page);
            }
        }
    }
}

/// Retries deferred revokes; frees the pages the peers have released. Returns how many.
pub fn poll_deferred() -> usize {
    let freed = with_table(|t| t.poll_deferred());
    if freed > 0 {
        let mut parked = PARKED.lock();
        parked.retain(|(gref, _)| with_table(|t| t.is_deferred(*gref)));
    }
    freed
}

/// (granted, deferred, free) counts.
pub fn stats() -> (u32, u32, u32) {
    with_table(|t| (t.granted(), t.deferred(), t.free()))
}

/// `count` virtually contiguous, page-aligned, zeroed pages, each granted to `domid` once for as long as this
/// value lives: multi-page rings (which must be contiguous to us, in `ring-ref0..N` order) and pools of data
/// pages reused for every request. Accessed only through raw pointers and volatile or `copy` operations, since
/// the peer may write them at any time.
pub struct SharedPages {
    ptr: core::ptr::NonNull<u8>,
    count: usize,
    grefs: Vec<GrantRef>,
    readonly: bool,
}

// SAFETY: the allocation is owned by this value alone (like a Box); it moves between tasks, never aliased by us.
unsafe impl Send for SharedPages {}

impl SharedPages {
    fn layout(count: usize) -> core::alloc::Layout {
        core::alloc::Layout::from_size_align(count * 4096, 4096).expect("page layout")
    }

    /// Allocates and grants `count` pages (writable by the peer unless `readonly`).
    pub fn new(domid: u16, count: usize, readonly: bool) -> Result<SharedPages, GrantError> {
        assert!(count > 0, "no pages");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc::alloc_zeroed(Self::layout(count)) };
        let ptr = core::ptr::NonNull::new(raw).unwrap_or_else(|| alloc::alloc::handle_alloc_error(Self::layout(count)));
        let mut pages = SharedPages { ptr, count, grefs: Vec::with_capacity(count), readonly };
        for i in 0..count {
            let mfn = mm::virt_to_mfn(pages.page_ptr(i) as u64);
            // On failure, `pages` is dropped here and ends the grants made so far.
            pages.grefs.push(with_table(|t| t.grant_access(domid, mfn, readonly))?);
        }
        Ok(pages)
    }

    /// After a resume in a new domain, whose grant table Xen starts empty: grants every page again, to `domid`
    /// (the new backend's domain), under the same refs (`GrantTable::regrant`), so requests naming them stay valid.
    pub fn regrant(&mut self, domid: u16) -> Result<(), GrantError> {
        for i in 0..self.count {
            let mfn = mm::virt_to_mfn(self.page_ptr(i) as u64);
            with_table(|t| t.regrant(self.grefs[i], domid, mfn, self.readonly))?;
        }
        Ok(())
    }

    /// How many pages.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The grant reference of page `i`.
    pub fn gref(&self, i: usize) -> GrantRef {
        self.grefs[i]
    }

    /// Every page's grant reference, in order.
    pub fn grefs(&self) -> &[GrantRef] {
        &self.grefs
    }

    /// The address of page `i`.
    pub(crate) fn page_ptr(&self, i: usize) -> *mut u8 {
        assert!(i < self.count, "page {i} of {}", self.count);
        self.ptr.as_ptr().wrapping_add(i * 4096)
    }

    /// The whole area's address.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Copies `data` into page `page` at `offset`, volatile. Meant for pages no published request names, but the
    /// grant stays in force, so a hostile peer may access the page at any time: the copy is sound regardless (the
    /// peer can only see or spoil bytes of its own page).
    pub fn write(&mut self, page: usize, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= 4096, "write past the page");
        // SAFETY: the destination lies inside page `page` of the live allocation (checked above).
        unsafe { copy_to_shared(self.page_ptr(page).add(offset), data) };
    }

    /// Copies bytes of page `page` at `offset` out, volatile. Meant for pages the peer says it has finished with
    /// (its response is in, and the acquire load of `rsp_prod` ordered its writes before this copy); but the
    /// grant stays in force, so a hostile peer may still be writing: the caller gets a copy it must validate.
    pub fn read(&self, page: usize, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= 4096, "read past the page");
        // SAFETY: the source lies inside page `page` of the live allocation (checked above).
        unsafe { copy_from_shared(self.page_ptr(page).add(offset), out) };
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        let mut still_mapped = 0;
        for &gref in &self.grefs {
            match with_table(|t| t.end_access_deferred(gref)) {
                Ok(EndAccess::Freed) => {}
                Ok(EndAccess::Deferred { .. }) | Err(_) => still_mapped += 1,
            }
        }
        if still_mapped > 0 {
            // The peer still maps some: the memory must never be reused. Leak it all (rare: a backend that
            // did not let go on disconnect).
            log::warn!("grant: {still_mapped} of {} shared pages still mapped by the peer; leaking them", self.count);
            return;
        }
        // SAFETY: allocated in `new` with this layout, every grant ended, freed only here.
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.count)) };
    }
}
