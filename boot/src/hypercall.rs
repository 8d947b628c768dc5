//! Hypercalls through the page Xen filled at `HYPERCALL_PAGE` (at domain build for PV; for PVH/HVM when we name
//! its address in the MSR CPUID gives, `hvm::install_hypercall_page`) (our own stubs: xen-sys's declare `nostack` around
//! a `call`, which pushes a return address, so they are unsound; see ../shared/toolchain.md).
//!
//! x86_64 PV convention: `call HYPERCALL_PAGE + 32 * nr`, arguments in rdi, rsi, rdx, r10, r8, result in rax.
//! The stub saves rcx/r11 itself; debug builds of Xen scribble on the argument registers, so all of them are
//! declared clobbered.

use crate::abi::*;
use core::arch::asm;
use sirocco_boot_logic::trace::{self, Category, Phase};

extern "C" {
    /// Defined in pv/entry.rs; Xen writes the stubs into it at domain build (PV) or when we name it (PVH/HVM).
    static HYPERCALL_PAGE: [u8; 4096];
}

/// A hypercall's return value as a result: negative is Xen's error code.
fn status(rc: i64) -> Result<(), i64> {
    if rc < 0 {
        Err(rc)
    } else {
        Ok(())
    }
}

/// Address of the stub for hypercall `nr`.
fn stub(nr: u32) -> usize {
    debug_assert!(nr < 128);
    core::ptr::addr_of!(HYPERCALL_PAGE) as usize + 32 * nr as usize
}

/// Raw hypercall with up to five arguments.
///
/// # Safety
/// The arguments must be valid for hypercall `nr` as Xen's public headers define it: pointers must point to live,
/// correctly laid-out memory for as long as the call needs it, and the call's effect (on mappings, on memory Xen
/// writes) must not break any Rust invariant.
pub unsafe fn hypercall5(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: i64;
    // SAFETY: the caller upholds the argument contract; the stub follows the convention in the module docs and
    // uses our stack (so no `nostack`), and every register it may change is declared.
    unsafe {
        asm!(
            "call {stub}",
            stub = in(reg) stub(nr),
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            lateout("rax") ret,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// `HYPERVISOR_sched_op(SCHEDOP_shutdown, {reason})`: ends the domain; returns only if Xen refused.
pub fn shutdown(reason: u32) -> i64 {
    let arg = reason;
    // SAFETY: `struct sched_shutdown` is a single u32; the pointer is live for the call.
    unsafe { hypercall5(HYPERVISOR_SCHED_OP, u64::from(SCHEDOP_shutdown), &arg as *const u32 as u64, 0, 0, 0) }
}

/// `SCHEDOP_shutdown(SHUTDOWN_suspend)`: the domain suspends (issue 16) until the toolstack restores it elsewhere
/// (returns 0: a new domain) or cancels (returns 1: the same domain, as after `xl save -c`). `srec` goes in the
/// third argument register: for a PV guest the machine frame of its start_info page, which the toolstack reads to
/// find it (sched.h); 0 in the translated modes.
pub fn suspend(srec: u64) -> i64 {
    let arg = SHUTDOWN_suspend;
    // SAFETY: `struct sched_shutdown` is a single u32; the pointer is live for the call. Xen reads `srec` from the
    // vCPU's registers when it saves the domain; execution resumes here.
    unsafe { hypercall5(HYPERVISOR_SCHED_OP, u64::from(SCHEDOP_shutdown), &arg as *const u32 as u64, srec, 0, 0) }
}

/// `SCHEDOP_yield`: lets other vCPUs run.
pub fn sched_yield() {
    // SAFETY: takes no memory argument.
    unsafe { hypercall5(HYPERVISOR_SCHED_OP, u64::from(SCHEDOP_yield), 0, 0, 0, 0) };
}

/// `SCHEDOP_poll`: blocks until one of `ports` is pending or system time reaches `timeout_ns` (0 = never).
pub fn sched_poll(ports: &[u32], timeout_ns: u64) -> i64 {
    // The deadline is on the guest's clock (`xen::system_time_ns`); Xen takes its own.
    let arg =
        SchedPoll { ports: ports.as_ptr(), nr_ports: ports.len() as u32, timeout: crate::xen::to_xen_time(timeout_ns) };
    // SAFETY: `arg` and the port array it points to live for the call; Xen only reads them.
    unsafe { hypercall5(HYPERVISOR_SCHED_OP, u64::from(SCHEDOP_poll), &arg as *const SchedPoll as u64, 0, 0, 0) }
}

/// `EVTCHNOP_send`: notifies the other end of event channel `port`.
pub fn evtchn_send(port: u32) -> i64 {
    crate::profile::add_kick();
    trace::event(Category::Evtchn, Phase::Instant, "notify", u64::from(port));
    let arg = port;
    // SAFETY: `struct evtchn_send` is a single u32; the pointer is live for the call.
    unsafe { hypercall5(HYPERVISOR_EVENT_CHANNEL_OP, u64::from(EVTCHNOP_send), &arg as *const u32 as u64, 0, 0, 0) }
}

/// `XENVER_version`: (major, minor).
pub fn xen_version() -> (u16, u16) {
    // SAFETY: XENVER_version takes no buffer.
    let v = unsafe { hypercall5(HYPERVISOR_XEN_VERSION, u64::from(XENVER_VERSION), 0, 0, 0, 0) };
    ((v >> 16) as u16, v as u16)
}

/// `XENVER_extraversion`: the text after "major.minor", e.g. ".7" or "-pre".
pub fn xen_extraversion() -> [u8; 16] {
    let mut buf = [0u8; 16];
    // SAFETY: Xen writes at most 16 bytes (xen_extraversion_t) into the live buffer.
    unsafe { hypercall5(HYPERVISOR_XEN_VERSION, u64::from(XENVER_EXTRAVERSION), buf.as_mut_ptr() as u64, 0, 0, 0) };
    buf
}

/// `HYPERVISOR_mmu_update` on our own domain; `Err` carries Xen's error code.
///
/// # Safety
/// The updates must not unmap or re-map memory Rust code still uses as something else.
pub unsafe fn mmu_update(updates: &[MmuUpdate]) -> Result<(), i64> {
    let mut done: u32 = 0;
    // SAFETY: `MmuUpdate` has `struct mmu_update`'s layout (abi.rs); the slice and `done` live for the call; the
    // caller vouches for the effect of the updates.
    let rc = unsafe {
        hypercall5(
            HYPERVISOR_MMU_UPDATE,
            updates.as_ptr() as u64,
            updates.len() as u64,
            &mut done as *mut u32 as u64,
            DOMID_SELF,
            0,
        )
    };
    status(rc)
}

/// `HYPERVISOR_update_va_mapping`: sets the leaf entry for `va` to `pte` and flushes that TLB entry.
///
/// # Safety
/// As for [`mmu_update`]: nothing may still use the old mapping of `va` in a way the new one breaks.
pub unsafe fn update_va_mapping(va: u64, pte: u64) -> Result<(), i64> {
    // SAFETY: no memory argument; the caller vouches for the mapping change.
    let rc = unsafe { hypercall5(HYPERVISOR_UPDATE_VA_MAPPING, va, pte, UVMF_INVLPG, 0, 0) };
    status(rc)
}

/// `HYPERVISOR_mmuext_op(MMUEXT_TLB_FLUSH_LOCAL)`: flushes this vCPU's TLB, after `mmu_update`s that took rights
/// away (Xen leaves that flush to the guest).
pub fn tlb_flush_local() -> Result<(), i64> {
    let mut op = xen_sys::mmuext_op {
        cmd: xen_sys::MMUEXT_TLB_FLUSH_LOCAL,
        arg1: xen_sys::mmuext_op__bindgen_ty_1 { linear_addr: 0 },
        arg2: xen_sys::mmuext_op__bindgen_ty_2 { nr_ents: 0 },
    };
    let mut done: u32 = 0;
    // SAFETY: `op` has xen.h's `struct mmuext_op` layout (xen-sys's binding of it), it and `done` live for the call,
    // and a TLB flush changes no mapping.
    let rc = unsafe {
        hypercall5(
            xen_sys::__HYPERVISOR_mmuext_op,
            &mut op as *mut xen_sys::mmuext_op as u64,
            1,
            &mut done as *mut u32 as u64,
            DOMID_SELF,
            0,
        )
    };
    status(rc)
}

/// `HYPERVISOR_event_channel_op(cmd, arg)` with an in/out argument struct.
///
/// # Safety
/// `T` must be the argument struct event_channel.h defines for `cmd`.
pub unsafe fn evtchn_op<T>(cmd: u32, arg: &mut T) -> i64 {
    // SAFETY: the caller guarantees `T` matches `cmd`; the pointer is live and writable for the call.
    unsafe { hypercall5(HYPERVISOR_EVENT_CHANNEL_OP, u64::from(cmd), arg as *mut T as u64, 0, 0, 0) }
}

/// `HYPERVISOR_set_timer_op(deadline)`: VIRQ_TIMER fires at absolute system time `deadline_ns` (0 cancels).
pub fn set_timer_op(deadline_ns: u64) -> i64 {
    // The deadline is on the guest's clock (`xen::system_time_ns`); Xen takes its own.
    let deadline = crate::xen::to_xen_time(deadline_ns);
    // SAFETY: no memory argument.
    unsafe { hypercall5(HYPERVISOR_SET_TIMER_OP, deadline, 0, 0, 0, 0) }
}

/// `HYPERVISOR_grant_table_op(cmd, arg, 1)`.
///
/// # Safety
/// `T` must be the argument struct grant_table.h defines for `cmd`, and any buffer it points to must be live.
pub unsafe fn grant_table_op<T>(cmd: u32, arg: &mut T) -> i64 {
    // SAFETY: the caller guarantees the argument; one struct, live and writable for the call.
    unsafe { hypercall5(HYPERVISOR_GRANT_TABLE_OP, u64::from(cmd), arg as *mut T as u64, 1, 0, 0) }
}

/// `XENMEM_add_to_physmap`: places frame `idx` of `space` (shared_info, a grant-table frame) at guest frame `gpfn`
/// of our own physical address space (PVH/HVM: the guest's page tables then reach it at that address).
///
/// # Safety
/// Whatever page was at `gpfn` is replaced (Xen frees it): nothing may use that page as Rust data.
pub unsafe fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<(), i64> {
    let mut arg = AddToPhysmap { domid: DOMID_SELF as u16, size: 0, space, idx, gpfn };
    // SAFETY: `arg` is a live `struct xen_add_to_physmap`; the caller vouches for replacing the page at `gpfn`.
    let rc = unsafe {
        hypercall5(HYPERVISOR_MEMORY_OP, u64::from(XENMEM_ADD_TO_PHYSMAP), &mut arg as *mut _ as u64, 0, 0, 0)
    };
    status(rc)
}

/// `XENMEM_memory_map`: the domain's e820 map as 20-byte entries into `buf`; the number of entries written.
pub fn memory_map(buf: &mut [u8]) -> Result<usize, i64> {
    let mut arg = MemoryMapArg { nr_entries: (buf.len() / 20) as u32, buffer: buf.as_mut_ptr() };
    // SAFETY: `arg` is a live `struct xen_memory_map` pointing at `buf`, which has room for `nr_entries` entries.
    let rc =
        unsafe { hypercall5(HYPERVISOR_MEMORY_OP, u64::from(XENMEM_MEMORY_MAP), &mut arg as *mut _ as u64, 0, 0, 0) };
    status(rc).map(|()| arg.nr_entries as usize)
}

/// `HVMOP_get_param` on our own domain.
pub fn hvm_get_param(index: u32) -> Result<u64, i64> {
    let mut arg = HvmParam { domid: DOMID_SELF as u16, pad: 0, index, value: 0 };
    // SAFETY: `arg` is a live `struct xen_hvm_param`; Xen writes only its `value`.
    let rc = unsafe { hypercall5(HYPERVISOR_HVM_OP, u64::from(HVMOP_GET_PARAM), &mut arg as *mut _ as u64, 0, 0, 0) };
    status(rc).map(|()| arg.value)
}

/// `HVMOP_set_param` on our own domain.
pub fn hvm_set_param(index: u32, value: u64) -> Result<(), i64> {
    let mut arg = HvmParam { domid: DOMID_SELF as u16, pad: 0, index, value };
    // SAFETY: `arg` is a live `struct xen_hvm_param`; Xen only reads it.
    let rc = unsafe { hypercall5(HYPERVISOR_HVM_OP, u64::from(HVMOP_SET_PARAM), &mut arg as *mut _ as u64, 0, 0, 0) };
    status(rc)
}

/// `XENVER_get_features`, submap 0 (the only one Xen defines).
pub fn xen_features() -> u32 {
    let mut arg = FeatureInfo { submap_idx: 0, submap: 0 };
    // SAFETY: `arg` is a live `struct xen_feature_info`.
    let rc = unsafe {
        hypercall5(HYPERVISOR_XEN_VERSION, u64::from(XENVER_GET_FEATURES), &mut arg as *mut _ as u64, 0, 0, 0)
    };
    if rc < 0 {
        0
    } else {
        arg.submap
    }
}
