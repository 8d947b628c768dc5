//! The PV start of day: Xen built our page tables and entered `_start` (`entry.rs`) in 64-bit mode with
//! `start_info`; we extend the page tables over all memory (`memory.rs`), map shared_info, and join the steps every
//! mode shares (`crate::start`).

mod entry;
pub(crate) mod memory;
mod trap;

use crate::abi::{start_info, START_INFO_MAGIC};
use crate::mode::{self, BootMode};
use crate::{console, hypercall, start, xen};
use sirocco_boot_logic::cmdline::Cmdline;
use sirocco_boot_logic::Mfn;

/// Entered from `_start` (PV) on our own stack with the `start_info` pointer Xen passed in `%rsi`.
pub(crate) extern "C" fn start(si: *const start_info) -> ! {
    mode::set(BootMode::Pv);
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
