//! The boot sequence from a mode's entry point to the application: the PV start of day here, the PVH/HVM one in
//! `hvm/`, and the steps every mode shares ([`announce`], [`command_line`], [`finish`]).

use crate::abi::{start_info, START_INFO_MAGIC};
use crate::mode::{self, BootMode};
use crate::{console, hypercall, logger, mm, xen, Env, Exit, MemoryInfo, XenVersion};
use core::sync::atomic::Ordering;
use sirocco_kernel::cmdline::{Cmdline, CmdlineError};
use sirocco_kernel::Mfn;

extern "Rust" {
    /// Defined by the application with `sirocco::main!`; an image links exactly one.
    fn __sirocco_app_main(env: &Env) -> Exit;
}

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
    console::init(mm::mfn_to_pfn(Mfn(con_mfn)).vaddr(), con_port);
    let xen = announce();

    // SAFETY: cmd_line is a byte array inside start_info; reading it as u8 is always valid.
    let raw: &'static [u8; 1024] = unsafe { &*(si.cmd_line.as_ptr() as *const [u8; 1024]) };
    let cmdline = command_line(Cmdline::from_bytes(raw));

    // Memory first: the page-table builder checks the start-of-day mappings, which mapping shared_info changes.
    let memory = mm::init(si).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = xen::map_shared_info_pv(si.shared_info) {
        panic!("could not map shared_info (maddr {:#x}): error {e}", si.shared_info);
    }
    let store_va = mm::mfn_to_pfn(Mfn(si.store_mfn)).vaddr();
    finish(cmdline, memory, xen, (store_va, si.store_evtchn))
}

/// The console's first line: what this is, how it booted, on which Xen.
pub(crate) fn announce() -> XenVersion {
    let (major, minor) = hypercall::xen_version();
    let xen = XenVersion { major, minor, extra: hypercall::xen_extraversion() };
    crate::println!("Sirocco {} booting as {} on Xen {xen}", env!("CARGO_PKG_VERSION"), mode::boot_mode());
    xen
}

/// Takes the command line (or says why it is ignored) and starts the logger at the level it asks for.
pub(crate) fn command_line(parsed: Result<Cmdline<'static>, CmdlineError>) -> Cmdline<'static> {
    let cmdline = parsed.unwrap_or_else(|e| {
        crate::println!("sirocco: ignoring the command line: {e}");
        Cmdline::parse("").expect("empty command line parses")
    });
    let level = cmdline.log_level().unwrap_or_else(|bad| {
        crate::println!("sirocco: log={bad} is not a level (off, error, warn, info, debug, trace); using info");
        None
    });
    logger::init(level.unwrap_or(log::LevelFilter::Info));
    log::debug!("command line: {:?}", cmdline.as_str());
    cmdline
}

/// The steps every mode shares once memory, shared_info and the console are up: the clock's zero, the run loop,
/// xenstore, the grant table, then the application.
pub(crate) fn finish(cmdline: Cmdline<'static>, memory: MemoryInfo, xen: XenVersion, store: (u64, u32)) -> ! {
    crate::BOOT_NS.store(xen::system_time_ns().unwrap_or(0), Ordering::Relaxed);
    crate::runtime::init();
    if let Err(e) = crate::xenstore::init(store.0, store.1) {
        log::error!("xenstore: {e}; control/shutdown and devices will not work");
    }
    match crate::grant::init() {
        Ok(frames) => log::debug!("grant table: {frames} frames, {} refs", frames * 512),
        Err(e) => log::error!("{e}; sharing pages with other domains will not work"),
    }
    log::info!(
        "memory: {} KiB domain, {} KiB image, {} KiB heap; mapped {} pages with {} new page tables in {} mmu_update calls",
        memory.domain_bytes / 1024,
        memory.image_bytes / 1024,
        memory.heap_bytes / 1024,
        memory.pages_mapped,
        memory.page_tables_added,
        memory.mmu_hypercalls
    );

    crate::net::set_cmdline(cmdline);
    let env = Env { cmdline, memory, xen, mode: mode::boot_mode() };
    // SAFETY: `sirocco::main!` defines the symbol with exactly this signature; without it the image does not link.
    let exit = unsafe { __sirocco_app_main(&env) };
    crate::exit(exit)
}
