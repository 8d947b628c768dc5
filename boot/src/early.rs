//! Output that needs no Xen: the 16550 UART at COM1 and the debug port 0xE9.
//!
//! - **COM1** is what EC2's "get system log" and `xl console` of an HVM guest show, and where QEMU's `-serial`
//!   goes; it is driven in HVM mode and when no Xen is found. A PVH guest has no UART (no device model), so it is
//!   never touched there.
//! - **Port 0xE9**: Xen prints an HVM/PVH guest's bytes written there in `xl dmesg` (`guest_loglvl=all`), and
//!   QEMU's `-debugcon` captures them. It carries everything printed before the PV console is up, so a PVH or HVM
//!   boot that fails early still says why.
//!
//! Both are mirrors of the console ([`crate::console`]); under PV neither is used.

use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const DEBUG_PORT: u16 = 0xe9;
/// How many times a byte waits for the UART's transmit register (a missing UART reads 0xff: "empty").
const THR_SPINS: u32 = 100_000;

static SERIAL: AtomicBool = AtomicBool::new(false);
static DEBUGCON: AtomicBool = AtomicBool::new(false);

fn outb(port: u16, v: u8) {
    // SAFETY: only called for COM1's registers and port 0xE9, which have no effect on memory; this module is
    // used only in HVM/PVH modes (and with no hypervisor), where the guest runs in ring 0 and may use ports.
    unsafe { Port::new(port).write(v) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as for `outb`: a read of COM1's line-status register.
    unsafe { Port::new(port).read() }
}

/// Programs COM1 for 115200 8N1 with FIFOs and starts mirroring output to it.
pub(crate) fn serial_init() {
    outb(COM1 + 1, 0x00); // no interrupts: Sirocco polls
    outb(COM1 + 3, 0x80); // DLAB on
    outb(COM1, 0x01); // divisor 1 = 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8 bits, no parity, 1 stop bit; DLAB off
    outb(COM1 + 2, 0xc7); // FIFOs on and cleared
    outb(COM1 + 4, 0x03); // DTR, RTS
    SERIAL.store(true, Ordering::Relaxed);
}

/// Starts (or stops) mirroring output to port 0xE9.
pub(crate) fn set_debugcon(on: bool) {
    DEBUGCON.store(on, Ordering::Relaxed);
}

fn serial_byte(b: u8) {
    for _ in 0..THR_SPINS {
        if inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(COM1, b);
}

/// Writes `bytes` to whichever of COM1 and port 0xE9 are on.
pub(crate) fn write(bytes: &[u8]) {
    let (serial, debugcon) = (SERIAL.load(Ordering::Relaxed), DEBUGCON.load(Ordering::Relaxed));
    if !serial && !debugcon {
        return;
    }
    for &b in bytes {
        if serial {
            if b == b'\n' {
                serial_byte(b'\r');
            }
            serial_byte(b);
        }
        if debugcon {
            outb(DEBUG_PORT, b);
        }
    }
}

/// A `fmt::Write` over [`write`].
pub(crate) struct Early;

impl core::fmt::Write for Early {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write(s.as_bytes());
        Ok(())
    }
}
