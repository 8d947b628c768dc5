//! W^X for the image, in every boot mode: code read-only and executable, read-only data read-only, and, when the
//! CPU has NX, everything else (data, the boot stack, the heap) not executable. The ranges come from the linker
//! script's page-aligned symbols; the page-table work is `sirocco_boot_logic::pagetable` (`protect` for PV,
//! `identity::build_identity` for PVH/HVM), tested on the host.

use core::ptr::addr_of;
use core::sync::atomic::{AtomicU8, Ordering};
use sirocco_boot_logic::pagetable::Protection;

extern "C" {
    static __image_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
}

/// What the boot mode applied: 0 nothing yet, 1 read-only code and constants, 2 that and NX.
static APPLIED: AtomicU8 = AtomicU8::new(0);

/// Whether the CPU can mark pages not executable (CPUID 0x80000001 EDX bit 20). Under PV Xen turns EFER.NXE on
/// for itself whenever the CPU has it, and lets PV guests use the bit then.
pub(crate) fn cpu_has_nx() -> bool {
    crate::cpuid(0x8000_0000)[0] >= 0x8000_0001 && crate::cpuid(0x8000_0001)[3] & (1 << 20) != 0
}

/// The image's protections, with NX if `nx`.
pub(crate) fn image(nx: bool) -> Protection {
    let (start, rodata, data) =
        (addr_of!(__image_start) as u64, addr_of!(__rodata_start) as u64, addr_of!(__data_start) as u64);
    Protection { text: (start, rodata), rodata: (rodata, data), nx }
}

/// Whether `addr` lies in the image's code.
pub(crate) fn is_code(addr: u64) -> bool {
    let text = image(false).text;
    (text.0..text.1).contains(&addr)
}

/// Records what the boot mode applied, for the boot log and crash reports.
pub(crate) fn applied(p: &Protection) {
    APPLIED.store(if p.nx { 2 } else { 1 }, Ordering::Relaxed);
}

/// One line for the boot log: what is protected.
pub(crate) fn describe() -> &'static str {
    match APPLIED.load(Ordering::Relaxed) {
        2 => "code read-only, constants read-only, data, stack and heap not executable (NX)",
        1 => "code and constants read-only; no NX on this CPU, so data is executable",
        _ => "none: every page writable and executable",
    }
}
