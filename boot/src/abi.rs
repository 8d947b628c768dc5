//! The Xen ABI in one place: xen-sys's bindgen types where it has them, our own `repr(C)` definitions where it
//! does not, each checked at compile time against the offsets of Xen 4.17's public headers
//! (`/usr/include/xen/*.h`, printed with `offsetof` by a C probe when these were written).

use core::mem::{offset_of, size_of};
pub use sirocco_boot_logic::pagetable::MmuUpdate;
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
    SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend,
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
/// event_channel.h: `EVTCHNOP_status`.
pub const EVTCHNOP_STATUS: u32 = 5;
/// event_channel.h: `EVTCHNSTAT_virq` (the port is bound to a virtual IRQ).
pub const EVTCHNSTAT_VIRQ: u32 = 4;

/// event_channel.h: `struct evtchn_status` (`dom`, `port` in; `status`, `vcpu` and the union out). The union's
/// largest arm is `interdomain { domid_t dom; evtchn_port_t port; }`; for a VIRQ its first word is the VIRQ.
#[repr(C)]
#[derive(Default)]
pub struct EvtchnStatus {
    pub dom: u16,
    pub port: u32,
    pub status: u32,
    pub vcpu: u32,
    pub u: [u32; 2],
}

const _: () = {
    assert!(size_of::<EvtchnStatus>() == 24);
    assert!(offset_of!(EvtchnStatus, port) == 4);
    assert!(offset_of!(EvtchnStatus, u) == 16);
};
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

// The hypercalls and structures of the PVH/HVM start of day (checked against Xen 4.17's public headers).
/// xen.h: `__HYPERVISOR_memory_op`.
pub const HYPERVISOR_MEMORY_OP: u32 = 12;
/// xen.h: `__HYPERVISOR_hvm_op`.
pub const HYPERVISOR_HVM_OP: u32 = 34;
/// memory.h: `XENMEM_add_to_physmap`.
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// memory.h: `XENMEM_memory_map` (the domain's e820 map, for PVH start infos of version 0).
pub const XENMEM_MEMORY_MAP: u32 = 9;
/// memory.h: `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// memory.h: `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// hvm/hvm_op.h: `HVMOP_set_param`.
pub const HVMOP_SET_PARAM: u32 = 0;
/// hvm/hvm_op.h: `HVMOP_get_param`.
pub const HVMOP_GET_PARAM: u32 = 1;
/// hvm/params.h: `HVM_PARAM_CALLBACK_IRQ`: how vCPU 0's event notifications are delivered (0 = not at all).
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// hvm/params.h: `HVM_PARAM_CALLBACK_TYPE_GSI` (in bits 63:56 of the value; bits 55:0 are the GSI).
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
/// hvm/params.h: `HVM_PARAM_CALLBACK_TYPE_VECTOR` (bits 7:0 are the vector; needs `XENFEAT_hvm_callback_vector`).
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;
/// features.h: `XENFEAT_hvm_callback_vector`.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// hvm/params.h: `HVM_PARAM_STORE_PFN`, `HVM_PARAM_STORE_EVTCHN`, `HVM_PARAM_CONSOLE_PFN`, `HVM_PARAM_CONSOLE_EVTCHN`.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// See [`HVM_PARAM_STORE_PFN`].
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// See [`HVM_PARAM_STORE_PFN`].
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// See [`HVM_PARAM_STORE_PFN`].
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// version.h: `XENVER_get_features`.
pub const XENVER_GET_FEATURES: u32 = 6;
/// features.h: `XENFEAT_auto_translated_physmap` (always set for PVH/HVM).
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// features.h: `XENFEAT_hvm_safe_pvclock`: the PV clock in shared_info is usable by an HVM guest.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;

/// memory.h: `struct xen_add_to_physmap`.
#[repr(C)]
pub struct AddToPhysmap {
    /// `DOMID_SELF`.
    pub domid: u16,
    /// Only for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index in the space (grant-table frame number).
    pub idx: u64,
    /// Guest frame to place it at.
    pub gpfn: u64,
}
/// memory.h: `struct xen_memory_map`.
#[repr(C)]
pub struct MemoryMapArg {
    /// IN: room in `buffer` (entries); OUT: entries written.
    pub nr_entries: u32,
    /// Array of 20-byte e820 entries.
    pub buffer: *mut u8,
}
/// hvm/hvm_op.h: `struct xen_hvm_param`.
#[repr(C)]
pub struct HvmParam {
    /// `DOMID_SELF`.
    pub domid: u16,
    /// Padding.
    pub pad: u16,
    /// `HVM_PARAM_*`.
    pub index: u32,
    /// OUT: the value.
    pub value: u64,
}
/// version.h: `struct xen_feature_info`.
#[repr(C)]
pub struct FeatureInfo {
    /// IN: which 32-bit submap.
    pub submap_idx: u32,
    /// OUT: its bits.
    pub submap: u32,
}
const _: () = {
    assert!(size_of::<AddToPhysmap>() == 24);
    assert!(offset_of!(AddToPhysmap, space) == 4);
    assert!(offset_of!(AddToPhysmap, idx) == 8);
    assert!(offset_of!(AddToPhysmap, gpfn) == 16);
    assert!(size_of::<MemoryMapArg>() == 16);
    assert!(offset_of!(MemoryMapArg, buffer) == 8);
    assert!(size_of::<HvmParam>() == 16);
    assert!(offset_of!(HvmParam, index) == 4);
    assert!(offset_of!(HvmParam, value) == 8);
    assert!(size_of::<FeatureInfo>() == 8);
};

/// xen.h: `__HYPERVISOR_set_trap_table`.
pub const HYPERVISOR_SET_TRAP_TABLE: u32 = 0;
/// arch-x86/xen-x86_64.h: `FLAT_KERNEL_CS64`, the code selector of a 64-bit PV kernel.
pub const FLAT_KERNEL_CS64: u16 = 0xe033;

/// arch-x86/xen.h: `struct trap_info`, one entry of the table `HYPERVISOR_set_trap_table` takes (ended by an entry
/// whose address is 0). `flags` bits 0-1: the privilege level that may raise the vector with `int`; bit 2: mask
/// events on entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapInfo {
    /// The exception vector.
    pub vector: u8,
    /// `TI_SET_DPL` / `TI_SET_IF` bits.
    pub flags: u8,
    /// The handler's code selector.
    pub cs: u16,
    /// The handler's address (0 ends the table).
    pub address: u64,
}
const _: () = {
    assert!(size_of::<TrapInfo>() == 16);
    assert!(offset_of!(TrapInfo, cs) == 2);
    assert!(offset_of!(TrapInfo, address) == 8);
    // struct arch_vcpu_info { unsigned long cr2, pad; } inside vcpu_info.
    assert!(offset_of!(vcpu_info, arch) == 16);
};
