//! The PV start of day: Xen built our page tables and entered `_start` (`entry.rs`) in 64-bit mode with
//! `start_info`; we extend the page tables over all memory (`memory.rs`), map shared_info, and join the steps every
//! mode shares (`crate::start`).

mod entry;
pub(crate) mod memory;
mod trap;

use crate::abi::{start_info, START_INFO_MAGIC};
use crate::mode::{self, BootMode};
use crate::{console, hypercall, start, xen};
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicPtr, Ordering};
use sirocco_boot_logic::cmdline::Cmdline;
use sirocco_boot_logic::Mfn;

/// start_info, for a suspend (issue 16): the guest writes two of its fields before suspending and reads the ones
/// the toolstack rewrote after a resume.
static START_INFO: AtomicPtr<start_info> = AtomicPtr::new(core::ptr::null_mut());

/// Entered from `_start` (PV) on our own stack with the `start_info` pointer Xen passed in `%rsi`.
pub(crate) extern "C" fn start(si: *const start_info) -> ! {
    mode::set(BootMode::Pv);
    START_INFO.store(si as *mut start_info, Ordering::Relaxed);
    // SAFETY: Xen passes the virtual address of start_info, which lies in the start-of-day region, stays mapped and
    // is written by no one after boot; we only read it.
    let si: &'static start_info = unsafe { &*si };
    // SAFETY: `magic` is a plain byte array; reading it as u8 is always valid.
    let magic: &[u8; 32] = unsafe { &*(si.magic.as_ptr() as *const [u8; 32]) };
    if !magic.starts_with(START_INFO_MAGIC) {
        // Not a 64-bit PV start of day: there is no console to say so on.
        hypercall::shutdown(crate::abi::SHUTDOWN_crash);
    }
    // SAFETY: `console` is a union of the dom0 and domU variants; a domU (all Sirocco guests) uses domU.
    let (con_mfn, con_port) = unsafe { (si.console.domU.mfn, si.console.domU.evtchn) };
    console::init(memory::mfn_to_pfn(Mfn(con_mfn)).vaddr(), con_port);
    // Every fault from here on is reported.
    trap::init();
    let xen = start::announce();

    // SAFETY: cmd_line is a byte array inside start_info; reading it as u8 is always valid.
    let raw: &'static [u8; 1024] = unsafe { &*(si.cmd_line.as_ptr() as *const [u8; 1024]) };
    let cmdline = start::command_line(Cmdline::from_bytes(raw));

    // Memory first: the page-table builder checks the start-of-day mappings, which mapping shared_info changes.
    let memory = memory::init(si).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = xen::map_shared_info_pv(si.shared_info) {
        panic!("could not map shared_info (maddr {:#x}): error {e}", si.shared_info);
    }
    memory::publish_p2m();
    let store_va = memory::mfn_to_pfn(Mfn(si.store_mfn)).vaddr();
    start::finish(cmdline, memory, xen, (store_va, si.store_evtchn))
}

/// The frames of xenstore's and the console's rings as start_info names them before a suspend: machine frames.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RingFrames {
    store_mfn: u64,
    console_mfn: u64,
}

fn start_info_ptr() -> *mut start_info {
    let si = START_INFO.load(Ordering::Relaxed);
    assert!(!si.is_null(), "PV start of day done");
    si
}

/// Before a suspend: start_info's xenstore and console frames become pseudo-physical frame numbers, which the
/// toolstack's restore reads and replaces with the new host's machine frames (Linux's `xen_pv_pre_suspend`). Returns
/// the machine frames, for a cancelled suspend to put back.
pub(crate) fn canonicalise_start_info() -> RingFrames {
    let si = start_info_ptr();
    // SAFETY: start_info is the page Xen gave us at boot, mapped for the domain's life; only this vCPU touches it,
    // and the two fields are plain u64s (the console union's domU arm, which every domU uses). Volatile: the
    // toolstack reads and rewrites them while the domain is suspended.
    unsafe {
        let store = addr_of_mut!((*si).store_mfn);
        let console = addr_of_mut!((*si).console.domU.mfn);
        let frames = RingFrames { store_mfn: store.read_volatile(), console_mfn: console.read_volatile() };
        store.write_volatile(memory::mfn_to_pfn(Mfn(frames.store_mfn)).0);
        console.write_volatile(memory::mfn_to_pfn(Mfn(frames.console_mfn)).0);
        frames
    }
}

/// After a cancelled suspend: start_info's ring frames back as they were (the toolstack did not rewrite them).
pub(crate) fn restore_start_info(frames: RingFrames) {
    let si = start_info_ptr();
    // SAFETY: as in `canonicalise_start_info`.
    unsafe {
        addr_of_mut!((*si).store_mfn).write_volatile(frames.store_mfn);
        addr_of_mut!((*si).console.domU.mfn).write_volatile(frames.console_mfn);
    }
}

/// The machine frame of start_info, which `SCHEDOP_shutdown(suspend)` passes to the toolstack.
pub(crate) fn start_info_mfn() -> u64 {
    crate::mm::virt_to_mfn(start_info_ptr() as u64)
}

/// What start_info says now (after a resume, as the toolstack rewrote it): shared_info's machine address, the
/// xenstore port and the console port.
pub(crate) fn resumed_info() -> (u64, u32, u32) {
    let si = start_info_ptr();
    // SAFETY: as in `canonicalise_start_info`; plain integer fields.
    unsafe {
        (
            addr_of_mut!((*si).shared_info).read_volatile(),
            addr_of_mut!((*si).store_evtchn).read_volatile(),
            addr_of_mut!((*si).console.domU.evtchn).read_volatile(),
        )
    }
}
