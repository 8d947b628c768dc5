//! The shared_info page: mapped at boot onto a page reserved in .bss (`__shared_info_page` in linker.ld), then used
//! for the PV clock and event-channel pending bits.

use crate::abi::{shared_info, vcpu_info};
use crate::hypercall;
use core::arch::asm;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU64, Ordering};
use sirocco_boot_logic::pagetable::DATA_FLAGS;
use sirocco_boot_logic::time::{to_ns, ClockOffset, TimeInfo};

extern "C" {
    static mut __shared_info_page: [u8; 4096];
}

static MAPPED: AtomicBool = AtomicBool::new(false);

fn shared() -> Option<*mut shared_info> {
    MAPPED.load(Ordering::Acquire).then_some(addr_of_mut!(__shared_info_page) as *mut shared_info)
}

fn vcpu0() -> Option<*mut vcpu_info> {
    // SAFETY: vcpu_info[0] lies inside the mapped shared_info page.
    shared().map(|s| unsafe { addr_of_mut!((*s).vcpu_info[0]) })
}

/// PV: points the reserved page at the hypervisor's shared_info frame (machine address `maddr` from start_info), at
/// boot and again after a suspend (a new frame after a restore).
pub(crate) fn map_shared_info_pv(maddr: u64) -> Result<(), i64> {
    // SAFETY: the reserved page is never used as Rust data (it is only reached through `shared()`), so re-pointing
    // its mapping cannot invalidate any reference; the new frame is the domain's own shared_info.
    unsafe {
        let va = addr_of!(__shared_info_page) as u64;
        hypercall::update_va_mapping(va, (maddr & !0xfff) | DATA_FLAGS)?;
    }
    mapped();
    Ok(())
}

/// Before a suspend: shared_info is not to be read any more (the clock and event bitmaps answer `None` and
/// nothing), and under PV its mapping goes (the toolstack refuses to save a page table that maps a frame outside
/// the domain's memory: "Bad mfn for L1").
pub(crate) fn suspend_shared_info() -> Result<(), i64> {
    MAPPED.store(false, Ordering::Release);
    if crate::mode::boot_mode().translated() {
        return Ok(());
    }
    // SAFETY: the reserved page is only reached through `shared()`, which now answers `None`.
    unsafe { hypercall::update_va_mapping(addr_of!(__shared_info_page) as u64, 0) }
}

/// PVH/HVM: asks Xen to put shared_info at the reserved page's guest frame (`XENMAPSPACE_shared_info`); our
/// identity map then reaches it at the page's address. At boot, and again after a suspend (a restore does not
/// carry frames placed this way: the guest frame is a hole until then).
pub(crate) fn map_shared_info_hvm() -> Result<(), i64> {
    let gpfn = addr_of!(__shared_info_page) as u64 >> 12;
    // SAFETY: the reserved page is never used as Rust data (only through `shared()`), so replacing the RAM frame
    // behind it with shared_info invalidates nothing.
    unsafe { hypercall::add_to_physmap(crate::abi::XENMAPSPACE_SHARED_INFO, 0, gpfn)? };
    mapped();
    Ok(())
}

/// Marks shared_info usable and masks event upcalls: Sirocco waits for events with `SCHEDOP_poll` (which wakes a
/// blocked vCPU for a pending port whether or not upcalls are masked, in every mode and every Xen since 3.0), never
/// by asynchronous callback or interrupt.
fn mapped() {
    MAPPED.store(true, Ordering::Release);
    // Uptime counts from the first mapping, the first moment the clock can be read (log lines before it show 0);
    // mapping it again after a suspend (issue 16) keeps that start.
    let now = system_time_ns().unwrap_or(0);
    let _ = crate::BOOT_NS.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    if let Some(v) = vcpu0() {
        // SAFETY: a byte of the mapped vcpu_info; a volatile store is what the PV ABI expects.
        unsafe { addr_of_mut!((*v).evtchn_upcall_mask).write_volatile(1) };
    }
}

/// The time-stamp counter, read after every earlier load has completed: `rdtsc` is not ordered with loads, so
/// without `lfence` it could be executed before the loads of `vcpu_time_info` it is paired with (Linux's
/// `rdtsc_ordered`, Xen's own `rdtsc_ordered`), and the version check would not cover it.
fn rdtsc_ordered() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence waits for earlier instructions to complete and rdtsc reads the time-stamp counter; neither
    // touches memory, and both are allowed in a PV guest (lfence is SSE2, which every x86_64 CPU has).
    unsafe { asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The guest's monotonic time in ns: Xen's system time (vcpu 0's PV clock, ns since the host booted) plus the offset
/// a resume sets (`ClockOffset`: after a restore or migration Xen's clock is another host's, and the time suspended
/// is not counted); at boot they are the same. `None` before shared_info is mapped.
pub fn system_time_ns() -> Option<u64> {
    xen_time_ns().map(|t| offset().to_guest(t))
}

/// The guest's clock's offset from Xen's (0 until a resume).
static OFFSET: AtomicI64 = AtomicI64::new(0);

fn offset() -> ClockOffset {
    ClockOffset(OFFSET.load(Ordering::Relaxed))
}

/// Xen's time for a deadline on the guest's clock (what `set_timer_op` and `SCHEDOP_poll` take); 0 stays 0.
pub(crate) fn to_xen_time(guest_ns: u64) -> u64 {
    offset().to_xen(guest_ns)
}

/// After a resume: the guest's clock goes on from `guest_at_suspend_ns`, whatever Xen's clock now reads.
pub(crate) fn resume_clock(guest_at_suspend_ns: u64) {
    if let Some(now) = xen_time_ns() {
        OFFSET.store(ClockOffset::resumed(guest_at_suspend_ns, now).0, Ordering::Relaxed);
    }
}

/// Xen's system time in ns (since the host booted), from vcpu 0's PV clock.
fn xen_time_ns() -> Option<u64> {
    let v = vcpu0()?;
    loop {
        // SAFETY: all reads are of the mapped vcpu_time_info, volatile because Xen updates it concurrently; the
        // version protocol (odd = update in progress, changed = torn read) gives a consistent snapshot.
        unsafe {
            let t = addr_of!((*v).time);
            let version = addr_of!((*t).version).read_volatile();
            fence(Ordering::Acquire);
            let info = TimeInfo {
                tsc_timestamp: addr_of!((*t).tsc_timestamp).read_volatile(),
                system_time: addr_of!((*t).system_time).read_volatile(),
                tsc_to_system_mul: addr_of!((*t).tsc_to_system_mul).read_volatile(),
                tsc_shift: addr_of!((*t).tsc_shift).read_volatile(),
            };
            let tsc = rdtsc_ordered();
            fence(Ordering::Acquire);
            if version & 1 == 0 && addr_of!((*t).version).read_volatile() == version {
                return Some(to_ns(&info, tsc));
            }
        }
    }
}

/// Clears the pending bit of event channel `port` (2-level ABI: bit `port % 64` of word `port / 64`).
pub fn clear_pending(port: u32) {
    if let Some(s) = shared() {
        bitmap_word(s, false, (port / 64) as usize).fetch_and(!(1u64 << (port % 64)), Ordering::SeqCst);
    }
}

/// Word `word` of the mask or pending bitmap, as the atomic Xen shares it as.
fn bitmap_word(s: *mut shared_info, mask: bool, word: usize) -> &'static AtomicU64 {
    assert!(word < 64, "event channel word {word} beyond the 2-level bitmap");
    // SAFETY: `s` is the mapped shared_info (`shared()` answered it; it is unmapped only inside a suspend, which
    // runs between rounds of the loop, when no caller holds a word and `shared()` answers `None`) and `word < 64` is
    // inside the bitmap arrays; `addr_of_mut!` makes no reference. The word is 8-aligned; Xen sets and clears
    // bits in it with atomic operations of the same size, and we only access it atomically.
    unsafe {
        let p = if mask { addr_of_mut!((*s).evtchn_mask[word]) } else { addr_of_mut!((*s).evtchn_pending[word]) };
        AtomicU64::from_ptr(p)
    }
}

/// Word `word` of the pending and mask bitmaps.
pub fn pending_word(word: usize) -> (u64, u64) {
    let Some(s) = shared() else { return (0, 0) };
    (bitmap_word(s, false, word).load(Ordering::SeqCst), bitmap_word(s, true, word).load(Ordering::SeqCst))
}

/// Sets or clears the mask bit of `port`.
pub(crate) fn set_mask(port: u32, masked: bool) {
    if let Some(s) = shared() {
        let bit = 1u64 << (port % 64);
        let a = bitmap_word(s, true, (port / 64) as usize);
        if masked {
            a.fetch_or(bit, Ordering::SeqCst);
        } else {
            a.fetch_and(!bit, Ordering::SeqCst);
        }
    }
}

/// Clears vCPU 0's upcall-pending flag and selector (we scan the bitmap ourselves; upcalls stay masked).
pub fn clear_upcall_pending() {
    if let Some(v) = vcpu0() {
        // SAFETY: fields of the mapped vcpu_info; the selector is updated atomically as Xen sets bits in it.
        unsafe {
            addr_of_mut!((*v).evtchn_upcall_pending).write_volatile(0);
            AtomicU64::from_ptr(addr_of_mut!((*v).evtchn_pending_sel)).swap(0, Ordering::SeqCst);
        }
    }
}

/// Wall-clock time (ns since the Unix epoch): shared_info's wallclock (the wall time at system time 0, read under
/// its version protocol) plus the current system time. `None` before shared_info is mapped.
pub fn wall_clock_ns() -> Option<u64> {
    let s = shared()?;
    loop {
        // SAFETY: fields of the mapped shared_info; volatile and versioned because Xen updates them concurrently.
        unsafe {
            let version = addr_of!((*s).wc_version).read_volatile();
            fence(Ordering::Acquire);
            let sec = u64::from(addr_of!((*s).wc_sec).read_volatile())
                | u64::from(addr_of!((*s).wc_sec_hi).read_volatile()) << 32;
            let nsec = u64::from(addr_of!((*s).wc_nsec).read_volatile());
            fence(Ordering::Acquire);
            if version & 1 == 0 && addr_of!((*s).wc_version).read_volatile() == version {
                return Some(sec * 1_000_000_000 + nsec + xen_time_ns()?);
            }
        }
    }
}

/// PV: the faulting address of the last page fault, which Xen puts in `vcpu_info.arch.cr2` (a PV guest cannot
/// read CR2 itself). `None` before shared_info is mapped.
pub(crate) fn pv_cr2() -> Option<u64> {
    // SAFETY: a field of the mapped vcpu_info, which Xen writes when it delivers a page fault; read volatile.
    vcpu0().map(|v| unsafe { core::ptr::read_volatile(addr_of!((*v).arch.cr2)) })
}

/// PV: publishes the p2m list to the toolstack (`shared_info.arch`): `max_pfn` and the machine frame of the top of
/// the three-level `pfn_to_mfn_frame_list_list`. Without them `xl dump-core` (and saving the domain) refuse it.
pub(crate) fn publish_p2m(max_pfn: u64, frame_list_list_mfn: u64) {
    if let Some(s) = shared() {
        // SAFETY: fields of the mapped shared_info that the guest owns and the toolstack reads; volatile stores.
        unsafe {
            core::ptr::write_volatile(addr_of_mut!((*s).arch.pfn_to_mfn_frame_list_list), frame_list_list_mfn);
            core::ptr::write_volatile(addr_of_mut!((*s).arch.max_pfn), max_pfn);
        }
    }
}
