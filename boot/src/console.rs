//! Console output on the PV console ring (start_info `console.domU`), which xenconsoled serves: `xl console`
//! and `/var/log/xen/console/guest-NAME.log` show it. `HYPERVISOR_console_io` is not used: a release Xen drops
//! it for domUs.

use crate::{early, hypercall, xen};
use core::fmt;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicU32, Ordering};
use sirocco_drivers::console::{self as ring, offsets, ConsoleRing, XenconsInterface};

/// How long output waits for xenconsoled to make room before it is dropped (and counted).
const ROOM_TIMEOUT_NS: u64 = 5_000_000_000;

/// The shared console page. xenconsoled may write any of it at any time: never reached through a reference to
/// plain memory, only through atomics (the indices) and volatile stores (the bytes).
struct Page(*mut XenconsInterface);

// SAFETY: the page is mapped for the domain's whole life and Sirocco runs on one vCPU; the Mutex around the
// console serialises all access from our side.
unsafe impl Send for Page {}

impl Page {
    fn out_cons(&self) -> &AtomicU32 {
        // SAFETY: `out_cons` is an aligned u32 of the console page, mapped for the domain's life; `addr_of_mut!`
        // makes no reference. We only access it atomically, and xenconsoled's accesses to an index are aligned
        // 32-bit loads and stores, so nothing non-atomic races ours.
        unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.0).out_cons)) }
    }
    fn out_prod(&self) -> &AtomicU32 {
        // SAFETY: as for `out_cons`.
        unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.0).out_prod)) }
    }
}

impl ConsoleRing for Page {
    fn load_out_cons_acquire(&self) -> u32 {
        self.out_cons().load(Ordering::Acquire)
    }
    fn load_out_prod(&self) -> u32 {
        self.out_prod().load(Ordering::Relaxed)
    }
    fn write_out(&mut self, index: usize, byte: u8) {
        assert!(index < offsets::OUT_SIZE);
        // SAFETY: `out[index]` is inside the mapped page (checked above); a volatile store through a raw pointer,
        // since xenconsoled may read it concurrently.
        unsafe { (addr_of_mut!((*self.0).out) as *mut u8).add(index).write_volatile(byte) };
    }
    fn store_out_prod_release(&mut self, prod: u32) {
        self.out_prod().store(prod, Ordering::Release);
    }
}

/// The console device.
pub struct Console {
    page: Page,
    port: u32,
    broken: bool,
    /// The backend let a wait time out: until it makes room again, output that does not fit is dropped at once
    /// instead of waiting again (a console nobody serves, as an HVM guest's may be, must not cost 5 s a line).
    stalled: bool,
    dropped: u64,
}

static CONSOLE: spin::Mutex<Option<Console>> = spin::Mutex::new(None);

/// Starts using the console page mapped at `va` (PV: start_info's frame through the machine-to-phys table;
/// PVH/HVM: `HVM_PARAM_CONSOLE_PFN`, identity-mapped) with event channel `port`. From here on, output no longer
/// goes to the debug port (the serial port, when on, keeps its copy).
pub(crate) fn init(va: u64, port: u32) {
    *CONSOLE.lock() =
        Some(Console { page: Page(va as *mut XenconsInterface), port, broken: false, stalled: false, dropped: 0 });
    crate::early::set_debugcon(false);
}

impl Console {
    /// Waits (polling the console's event channel) until the ring has room or is drained; false on timeout.
    fn wait(&mut self, drained: bool) -> bool {
        let Some(start) = xen::system_time_ns() else {
            // Before shared_info is mapped there is no clock: give xenconsoled a bounded number of chances.
            for _ in 0..100_000 {
                hypercall::evtchn_send(self.port);
                hypercall::sched_yield();
                if self.ready(drained) {
                    return true;
                }
            }
            return false;
        };
        loop {
            xen::clear_pending(self.port);
            if self.ready(drained) {
                return true;
            }
            let now = xen::system_time_ns().unwrap_or(start);
            if now.saturating_sub(start) > ROOM_TIMEOUT_NS {
                return false;
            }
            hypercall::evtchn_send(self.port);
            hypercall::sched_poll(&[self.port], now + 10_000_000);
        }
    }

    fn ready(&self, drained: bool) -> bool {
        match ring::free_space(&self.page) {
            Ok(free) if drained => free == offsets::OUT_SIZE,
            Ok(free) => free > 1,
            Err(_) => true,
        }
    }

    /// Writes all of `bytes`, waiting for room as needed.
    pub fn write_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.broken {
                self.dropped += bytes.len() as u64;
                return;
            }
            match ring::write(&mut self.page, bytes) {
                Ok(0) => {
                    hypercall::evtchn_send(self.port);
                    if self.stalled || !self.wait(false) {
                        self.stalled = true;
                        self.dropped += bytes.len() as u64;
                        return;
                    }
                }
                Ok(n) => {
                    self.stalled = false;
                    bytes = &bytes[n..];
                }
                Err(_) => self.broken = true,
            }
        }
        hypercall::evtchn_send(self.port);
    }

    /// Waits until xenconsoled has read everything (bounded), so nothing is lost when the domain ends.
    fn flush(&mut self) {
        hypercall::evtchn_send(self.port);
        if !self.broken && !self.stalled {
            self.wait(true);
        }
    }

    /// Bytes dropped because the backend did not make room in time or corrupted the ring.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// After a resume in a new domain (issue 16): the console's event channel is `port` now (the ring page is the same
/// page of ours), and output goes on; a kick lets xenconsoled read what was written just before the suspend.
pub(crate) fn resume(port: u32) {
    if let Some(c) = CONSOLE.lock().as_mut() {
        c.port = port;
        c.broken = false;
        c.stalled = false;
        hypercall::evtchn_send(port);
    }
}

/// Runs `f` with the console, if there is one.
pub fn with<R>(f: impl FnOnce(&mut Console) -> R) -> Option<R> {
    CONSOLE.lock().as_mut().map(f)
}

/// For the panic and exception handlers: prints even if the code that failed held the console's lock.
pub(crate) fn print_forced(args: fmt::Arguments<'_>) {
    if CONSOLE.is_locked() {
        // SAFETY: Sirocco runs on one vCPU with no asynchronous callbacks, so the holder of the lock is the code
        // that panicked (or faulted), which will never run again: nobody else can be inside the critical section.
        unsafe { CONSOLE.force_unlock() };
    }
    _print(args);
}

/// Waits (bounded) until the backend has consumed all output.
pub(crate) fn flush() {
    with(Console::flush);
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    with(|c| fmt::write(c, args));
    let _ = fmt::write(&mut early::Early, args);
}

/// Prints to the Xen console, like `std::print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the Xen console, like `std::println!`.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes the trace (`sirocco_boot_logic::trace`) as a dump on the console, unless nothing is traced; true if a dump
/// was written. `crashing`: from a panic or exception report, which neither waits for the trace ring's lock (the
/// crash may have interrupted a recording) nor respects the console's; it allocates nothing either way.
pub fn write_trace_dump(crashing: bool) -> bool {
    let Some(tracer) = sirocco_boot_logic::trace::global().filter(|t| t.mask() != 0) else { return false };
    let mut out = LineBuffer { buf: [0; 512], len: 0, forced: crashing };
    let written = tracer.dump(&mut out, !crashing).is_some_and(|r| r.is_ok());
    out.flush();
    written
}

/// Gathers a dump's short writes into lines of up to 512 bytes, so the console is notified once a line, not once a
/// field (a dump is some 10 000 lines).
struct LineBuffer {
    buf: [u8; 512],
    len: usize,
    forced: bool,
}

impl LineBuffer {
    fn flush(&mut self) {
        let text = core::str::from_utf8(&self.buf[..self.len]).unwrap_or("(trace dump: bad text)\n");
        if self.forced {
            print_forced(format_args!("{text}"));
        } else {
            _print(format_args!("{text}"));
        }
        self.len = 0;
    }
}

impl fmt::Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for piece in s.split_inclusive('\n') {
            if self.len + piece.len() > self.buf.len() {
                self.flush();
            }
            if piece.len() > self.buf.len() {
                // Longer than a line buffer (a long name): straight through.
                if self.forced {
                    print_forced(format_args!("{piece}"));
                } else {
                    _print(format_args!("{piece}"));
                }
                continue;
            }
            self.buf[self.len..self.len + piece.len()].copy_from_slice(piece.as_bytes());
            self.len += piece.len();
            if piece.ends_with('\n') && self.len > self.buf.len() - 64 {
                self.flush();
            }
        }
        Ok(())
    }
}
