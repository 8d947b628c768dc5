//! Unplugging the device model's emulated disks and NICs, so only the PV devices remain (HVM guests).
//!
//! An HVM guest's device model (QEMU) emulates IDE disks and NICs that are the same backing devices as the PV
//! vbd and vif; a guest that drives both would see each disk twice and could write it through two uncoordinated
//! paths. The Xen platform PCI device offers a small protocol on fixed I/O ports to make the device model remove
//! the emulated copies (Xen's docs/misc/hvm-emulated-unplug):
//! 1. read the magic `0x49d2` from port 0x10 (16 bits); anything else means no platform device: do nothing;
//! 2. read the protocol version from port 0x12 (8 bits); version 0 goes straight to step 6;
//! 3. write the product number to port 0x12 (16 bits);
//! 4. write the build number to port 0x10 (32 bits);
//! 5. read the magic again: if it changed (to `0xd249`) the host has blacklisted this product and build, and the
//!    drivers must not load;
//! 6. write the mask of devices to unplug to port 0x10 (16 bits).
//!
//! The device model must see this before the emulated devices are in use, so the platform runs it before any
//! xenbus frontend connects. The document distinguishes only version 0 from the rest ("if this is 0, skip to 6"),
//! so any later version runs steps 3 to 5 like version 1; Linux (`check_platform_magic`) instead unplugs nothing on
//! a version other than 1. The platform supplies real port I/O; tests supply a fake device model that records
//! every access.

/// Port I/O as the unplug protocol uses it (the platform's `in`/`out` instructions; a fake in tests).
pub trait PortIo {
    /// Reads a byte from `port`.
    fn inb(&mut self, port: u16) -> u8;
    /// Reads 16 bits from `port`.
    fn inw(&mut self, port: u16) -> u16;
    /// Writes 16 bits to `port`.
    fn outw(&mut self, port: u16, v: u16);
    /// Writes 32 bits to `port`.
    fn outl(&mut self, port: u16, v: u32);
}

/// Port of the magic (read, 16 bits), the build number (write, 32 bits) and the unplug mask (write, 16 bits).
pub const MAGIC_PORT: u16 = 0x10;
/// Port of the protocol version (read, 8 bits) and the product number (write, 16 bits).
pub const PROTOCOL_PORT: u16 = 0x12;
/// What [`MAGIC_PORT`] reads when the platform device is present.
pub const MAGIC: u16 = 0x49d2;
/// What [`MAGIC_PORT`] reads after the product and build were written, if the host blacklisted them.
pub const BLACKLISTED_MAGIC: u16 = 0xd249;

/// Unplug bit 0: all emulated IDE and SCSI disks (CD drives stay).
pub const UNPLUG_ALL_IDE_DISKS: u16 = 1 << 0;
/// Unplug bit 1: all emulated NICs.
pub const UNPLUG_ALL_NICS: u16 = 1 << 1;
/// Unplug bit 2: all IDE disks except the primary master (CD drives stay); [`UNPLUG_ALL_IDE_DISKS`] overrides it.
pub const UNPLUG_AUX_IDE_DISKS: u16 = 1 << 2;
/// Unplug bit 3: all emulated NVMe disks.
pub const UNPLUG_NVME_DISKS: u16 = 1 << 3;

/// The product number Sirocco identifies itself with: 0xffff, "experimental".
///
/// Product numbers are assigned in Xen's public/hvm/pvdrivers.h: 0x0001 xensource-windows (Citrix), 0x0002
/// gplpv-windows (James Harper), 0x0003 linux, 0x0004 xenserver-windows-v7.0+, 0x0005 xenserver-windows-v7.2+
/// (Citrix), and 0xffff experimental, for drivers not yet released. Sirocco has no number of its own, and borrowing
/// another product's (say Linux's) would make that product's blacklist entries apply to Sirocco's build numbers;
/// the experimental number is the one the registry sets aside for unregistered drivers.
pub const SIROCCO_PRODUCT: u16 = 0xffff;

/// What the unplug protocol came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unplug {
    /// The mask was written; `protocol` is the version the device model reported.
    Done {
        /// Protocol version read from [`PROTOCOL_PORT`].
        protocol: u8,
    },
    /// The magic was not there: not an HVM guest, or no platform device (or no device model). Nothing was written.
    NoPlatformDevice,
    /// The device model blacklisted our product and build (the magic changed): no unplug was written, and PV
    /// drivers should not be used.
    Refused,
}

/// Runs the protocol: checks the magic; reads the protocol version; for version 1 and later writes `product` and
/// `build` and checks the magic again (changed: [`Unplug::Refused`], nothing more written); then writes `mask`
/// (`UNPLUG_*` bits) to [`MAGIC_PORT`].
pub fn unplug(io: &mut impl PortIo, mask: u16, product: u16, build: u32) -> Unplug {
    if io.inw(MAGIC_PORT) != MAGIC {
        return Unplug::NoPlatformDevice;
    }
    let protocol = io.inb(PROTOCOL_PORT);
    if protocol >= 1 {
        io.outw(PROTOCOL_PORT, product);
        io.outl(MAGIC_PORT, build);
        // The documented answer of a blacklisting host is BLACKLISTED_MAGIC; any change is taken as a refusal.
        if io.inw(MAGIC_PORT) != MAGIC {
            return Unplug::Refused;
        }
    }
    io.outw(MAGIC_PORT, mask);
    Unplug::Done { protocol }
}

#[cfg(test)]
mod tests;
