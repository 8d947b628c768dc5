//! The Xen ABI in one place: xen-sys's bindgen types where it has them, our own `repr(C)` definitions where it
//! does not, each checked at compile time against the offsets of Xen 4.17's public headers
//! (`/usr/include/xen/*.h`, printed with `offsetof` by a C probe when these were written).

use core::mem::{offset_of, size_of};
pub use sirocco_kernel::pagetable::MmuUpdate;
pub use xen_sys::{shared_info, start_info, vcpu_info, vcpu_time_info};

// xen.h: struct start_info.
const _: () = {
    assert!(size_of::<start_info>() == 1168);
    assert!(offset_of!(start_info, nr_pages) == 32);
    assert!(offset_of!(start_info, shared_info) == 40);
    assert!(offset_of!(start_info, store_mfn) == 56);
    assert!(offset_of!(start_info, store_evtchn) == 64);
    assert!(offset_of!(start_info, console) == 72);
    assert!(offset_of!(start_info, pt_base) == 88);
    assert!(offset_of!(start_info, nr_pt_frames) == 96);
    assert!(offset_of!(start_info, mfn_list) == 104);
    assert!(offset_of!(start_info, cmd_line) == 128);
    assert!(offset_of!(start_info, first_p2m_pfn) == 1152);
};
// xen.h: struct shared_info, struct vcpu_info, struct vcpu_time_info.
const _: () = {
    assert!(size_of::<shared_info>() == 3136);
    assert!(offset_of!(shared_info, evtchn_pending) == 2048);
    assert!(offset_of!(shared_info, evtchn_mask) == 2560);
    assert!(offset_of!(shared_info, wc_version) == 3072);
    assert!(offset_of!(shared_info, arch) == 3088);
    assert!(size_of::<vcpu_info>() == 64);
    assert!(offset_of!(vcpu_info, time) == 32);
    assert!(size_of::<vcpu_time_info>() == 32);
    assert!(offset_of!(vcpu_time_info, tsc_to_system_mul) == 24);
    assert!(offset_of!(vcpu_time_info, tsc_shift) == 28);
};
// xen.h: struct mmu_update { uint64_t ptr, val; } -- ours, so the page-table builder's batch is passed as is.
const _: () = {
    assert!(size_of::<MmuUpdate>() == 16);
    assert!(size_of::<MmuUpdate>() == size_of::<xen_sys::mmu_update>());
    assert!(offset_of!(MmuUpdate, ptr) == 0);
    assert!(offset_of!(MmuUpdate, val) == 8);
};

/// sched.h: `struct sched_poll` (xen-sys's guest-handle wrapper is not usable in a `const`-checked way).
#[repr(C)]
pub struct SchedPoll {
    /// `XEN_GUEST_HANDLE(evtchn_port_t) ports`.
    pub ports: *const u32,
    /// Number of ports.
    pub nr_ports: u32,
    /// Absolute system time (ns) to give up at; 0 = no timeout.
    pub timeout: u64,
}
const _: () = {
    assert!(size_of::<SchedPoll>() == 24);
    assert!(offset_of!(SchedPoll, nr_ports) == 8);
    assert!(offset_of!(SchedPoll, timeout) == 16);
};

pub use xen_sys::{
    __HYPERVISOR_event_channel_op as HYPERVISOR_EVENT_CHANNEL_OP, __HYPERVISOR_mmu_update as HYPERVISOR_MMU_UPDATE,
    __HYPERVISOR_sched_op as HYPERVISOR_SCHED_OP, __HYPERVISOR_update_va_mapping as HYPERVISOR_UPDATE_VA_MAPPING,
    __HYPERVISOR_xen_version as HYPERVISOR_XEN_VERSION, EVTCHNOP_send, SCHEDOP_poll, SCHEDOP_shutdown, SCHEDOP_yield,
    SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot,
};

/// version.h: `XENVER_version` (returns major << 16 | minor).
pub const XENVER_VERSION: u32 = 0;
/// version.h: `XENVER_extraversion` (fills `char[16]`).
pub const XENVER_EXTRAVERSION: u32 = 1;
/// xen.h: `UVMF_INVLPG`, flush this address's TLB entry after `update_va_mapping`.
pub const UVMF_INVLPG: u64 = 2;
/// xen.h: `DOMID_SELF`.
pub const DOMID_SELF: u64 = 0x7FF0;
/// xen.h (x86_64): read-only machine-to-phys table, `MACH2PHYS_VIRT_START`.
pub const MACH2PHYS_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// The prefix of `start_info.magic` for a 64-bit PV guest ("xen-3.0-x86_64").
pub const START_INFO_MAGIC: &[u8] = b"xen-3.0-x86_64";

// event_channel.h: the EVTCHNOP argument structs (xen-sys's bindgen types), checked against the header.
pub use xen_sys::{evtchn_alloc_unbound, evtchn_bind_interdomain, evtchn_bind_virq};
const _: () = {
    assert!(size_of::<evtchn_bind_interdomain>() == 12);
    assert!(offset_of!(evtchn_bind_interdomain, remote_port) == 4);
    assert!(offset_of!(evtchn_bind_interdomain, local_port) == 8);
    assert!(size_of::<evtchn_bind_virq>() == 12);
    assert!(offset_of!(evtchn_bind_virq, port) == 8);
    assert!(size_of::<evtchn_alloc_unbound>() == 8);
    assert!(offset_of!(evtchn_alloc_unbound, remote_dom) == 2);
    assert!(offset_of!(evtchn_alloc_unbound, port) == 4);
    assert!(offset_of!(shared_info, wc_sec) == 3076);
    assert!(offset_of!(shared_info, wc_nsec) == 3080);
    assert!(offset_of!(shared_info, wc_sec_hi) == 3084);
    assert!(offset_of!(vcpu_info, evtchn_upcall_mask) == 1);
    assert!(offset_of!(vcpu_info, evtchn_pending_sel) == 8);
};
/// event_channel.h operation numbers.
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// `EVTCHNOP_bind_virq`.
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// `EVTCHNOP_close`.
pub const EVTCHNOP_CLOSE: u32 = 3;
/// `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// `EVTCHNOP_unmask`.
pub const EVTCHNOP_UNMASK: u32 = 9;
/// xen.h: `VIRQ_TIMER`, the per-vCPU timer set by `set_timer_op`.
pub const VIRQ_TIMER: u32 = 0;
/// xen.h: `__HYPERVISOR_set_timer_op`.
pub use xen_sys::__HYPERVISOR_set_timer_op as HYPERVISOR_SET_TIMER_OP;

/// grant_table.h: `struct gnttab_query_size` (GNTTABOP_query_size = 6).
#[repr(C)]
pub struct GnttabQuerySize {
    /// IN: domid (DOMID_SELF).
    pub dom: u16,
    /// OUT: frames in use.
    pub nr_frames: u32,
    /// OUT: the most we may set up.
    pub max_nr_frames: u32,
    /// OUT: GNTST_* status.
    pub status: i16,
}
/// grant_table.h: `struct gnttab_setup_table` (GNTTABOP_setup_table = 2).
#[repr(C)]
pub struct GnttabSetupTable {
    /// IN: domid (DOMID_SELF).
    pub dom: u16,
    /// IN: frames wanted.
    pub nr_frames: u32,
    /// OUT: GNTST_* status.
    pub status: i16,
    /// IN: where Xen writes the frames (machine frame numbers for a PV guest).
    pub frame_list: *mut u64,
}
const _: () = {
    assert!(size_of::<GnttabQuerySize>() == 16);
    assert!(offset_of!(GnttabQuerySize, max_nr_frames) == 8);
    assert!(offset_of!(GnttabQuerySize, status) == 12);
    assert!(size_of::<GnttabSetupTable>() == 24);
    assert!(offset_of!(GnttabSetupTable, status) == 8);
    assert!(offset_of!(GnttabSetupTable, frame_list) == 16);
};
pub use sirocco_drivers::grant::abi::{GNTTABOP_QUERY_SIZE, GNTTABOP_SETUP_TABLE};
pub use xen_sys::__HYPERVISOR_grant_table_op as HYPERVISOR_GRANT_TABLE_OP;
