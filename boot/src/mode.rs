//! Which way this image was started: decided by the entry point Xen or the boot loader jumped to, fixed for the
//! domain's life, and reported in [`crate::Env`] and on the console's first line.

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

/// How the domain was booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    /// A paravirtualised guest: Xen built our page tables and entered `_start` in 64-bit mode with `start_info`.
    Pv,
    /// A PVH guest: Xen entered `_start_pvh` (the `XEN_ELFNOTE_PHYS32_ENTRY` note) in 32-bit mode with
    /// `hvm_start_info`; no device model, the guest owns its page tables.
    Pvh,
    /// A fully virtualised (HVM) guest started from a boot loader through the multiboot2 header (BIOS -> GRUB ->
    /// Sirocco, as on EC2), with emulated devices to unplug and a serial port.
    Hvm,
}

impl BootMode {
    /// Whether frame numbers are the guest's own (PVH/HVM: Xen translates them; PV: machine frames).
    pub fn translated(self) -> bool {
        self != BootMode::Pv
    }
}

impl fmt::Display for BootMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BootMode::Pv => "PV",
            BootMode::Pvh => "PVH",
            BootMode::Hvm => "HVM",
        })
    }
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// The mode this domain booted in.
pub fn boot_mode() -> BootMode {
    match MODE.load(Ordering::Relaxed) {
        1 => BootMode::Pvh,
        2 => BootMode::Hvm,
        _ => BootMode::Pv,
    }
}

/// Set once, by the entry point, before anything asks.
pub(crate) fn set(mode: BootMode) {
    MODE.store(
        match mode {
            BootMode::Pv => 0,
            BootMode::Pvh => 1,
            BootMode::Hvm => 2,
        },
        Ordering::Relaxed,
    );
}
