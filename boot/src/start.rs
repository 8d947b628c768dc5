//! The steps of the start of day every mode shares ([`announce`], [`command_line`], [`finish`]), once its own
//! (`pv/`, `hvm/`) has memory, shared_info and the console up; then the hand-over to the runtime.

use crate::mode::{self, BootMode};
use crate::{hypercall, logger, MemoryInfo, XenVersion};
use sirocco_boot_logic::cmdline::{Cmdline, CmdlineError};

/// What the start of day hands to the runtime (crate `sirocco`, `kernel/`).
pub struct Started {
    /// The validated command line.
    pub cmdline: Cmdline<'static>,
    /// What boot did with memory.
    pub memory: MemoryInfo,
    /// The hypervisor's version.
    pub xen: XenVersion,
    /// How the domain was booted.
    pub mode: BootMode,
    /// The xenstore page (mapped at this address) and its event channel.
    pub xenstore: (u64, u32),
}

extern "Rust" {
    /// The runtime's entry (`sirocco`'s `start.rs`): an image links exactly one.
    fn __sirocco_kernel_main(started: Started) -> !;
}

/// The console's first line: what this is, how it booted, on which Xen.
pub(crate) fn announce() -> XenVersion {
    let (major, minor) = hypercall::xen_version();
    let xen = XenVersion { major, minor, extra: hypercall::xen_extraversion() };
    crate::println!("Sirocco {} booting as {} on Xen {xen}", env!("CARGO_PKG_VERSION"), mode::boot_mode());
    xen
}

/// Takes the command line (or says why it is ignored) and starts the logger with the levels it asks for
/// (`log=info,sirocco_net=debug`; a bad directive is left out, and said so once the heap is up).
pub(crate) fn command_line(parsed: Result<Cmdline<'static>, CmdlineError>) -> Cmdline<'static> {
    let cmdline = parsed.unwrap_or_else(|e| {
        crate::println!("sirocco: ignoring the command line: {e}");
        Cmdline::parse("").expect("empty command line parses")
    });
    logger::init(&cmdline);
    log::debug!("command line: {:?}", cmdline.as_str());
    cmdline
}

/// The steps every mode shares once memory, shared_info and the console are up: the log ring, the grant
/// table, then the hand-over to the runtime (which starts the run loop and xenstore, then the application).
pub(crate) fn finish(cmdline: Cmdline<'static>, memory: MemoryInfo, xen: XenVersion, xenstore: (u64, u32)) -> ! {
    logger::after_heap(&cmdline);
    match crate::grant::init() {
        Ok(frames) => log::debug!("grant table: {frames} frames, {} refs", frames * 512),
        Err(e) => log::error!("{e}; sharing pages with other domains will not work"),
    }
    log::info!(
        "memory: {} KiB domain, {} KiB image, {} KiB heap, {} KiB page pool; mapped {} pages with {} new page tables in {} mmu_update calls",
        memory.domain_bytes / 1024,
        memory.image_bytes / 1024,
        memory.heap_bytes / 1024,
        crate::mm::page_pool_free() / 1024,
        memory.pages_mapped,
        memory.page_tables_added,
        memory.mmu_hypercalls
    );
    log::info!("page protections: {}", crate::protect::describe());
    let started = Started { cmdline, memory, xen, mode: mode::boot_mode(), xenstore };
    // SAFETY: the `sirocco` crate defines the symbol with exactly this signature; without it the image does not
    // link.
    unsafe { __sirocco_kernel_main(started) }
}
