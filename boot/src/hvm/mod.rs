//! The PVH and HVM start of day: from the 32-bit entry points (`entry.rs`) to the steps every mode shares.
//!
//! In order:
//! 1. find Xen through CPUID (leaves 0x40000000 + n * 0x100, so a Viridian block in front is skipped); with none,
//!    say so on COM1 and port 0xE9 and stop ([`no_xen`]);
//! 2. an IDT, so a fault is reported instead of ending in a triple fault (`trap.rs`);
//! 3. the hypercall page: its guest-physical address written to the MSR that CPUID leaf base+2 names;
//! 4. the boot information (`hvm_start_info` or multiboot2), copied out of the loader's memory;
//! 5. our own identity map of all RAM (the boot map covers only 4 GiB, with no guard pages), then the heap over
//!    the rest of the RAM region the image is in;
//! 6. shared_info placed with `XENMAPSPACE_shared_info`, the console and xenstore pages and ports from
//!    `HVM_PARAM_*` (their frames lie in the identity map);
//! 7. HVM only: the emulated IDE disks and NICs unplugged, so blkfront and netfront never drive a device the
//!    device model also drives.
//!
//! Event delivery needs nothing mode-specific: the run loop blocks in `SCHEDOP_poll` on its ports with upcalls
//! masked, which Xen supports for HVM vCPUs as for PV ones on every version since 3.0 (no callback vector, no
//! `HVM_PARAM_CALLBACK_IRQ`, no interrupts enabled), and idle costs no CPU because the vCPU is blocked in Xen.

mod entry;
mod trap;
pub(crate) use trap::halt;

use crate::hypercall::{self, hvm_get_param as param};
use crate::mode::{self, BootMode};
use crate::{console, early, mm, start, xen, MemoryInfo};
use core::fmt;
use core::ptr::addr_of;
use core::sync::atomic::{AtomicBool, Ordering};
use sirocco_boot_logic::bootinfo::{self, BootInfo, MemoryMap, OutOfRange, PhysMem, RegionKind};
use sirocco_boot_logic::cmdline::{Cmdline, CmdlineError};
use sirocco_boot_logic::cpuid::{find_xen, XenLeaves};
use sirocco_boot_logic::pagetable::identity::{self, TablePages};
use sirocco_boot_logic::pagetable::pte;
use sirocco_boot_logic::unplug::{self, PortIo, Unplug};
use sirocco_boot_logic::PAGE_SIZE;
use x86_64::instructions::port::Port;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

extern "C" {
    static __image_start: u8;
    static __stack_guard: u8;
    static __stack_top: u8;
    static __shared_info_page: u8;
    static HYPERCALL_PAGE: [u8; 4096];
}

/// What `entry.rs`'s boot map covers: [0, 4 GiB) with 2 MiB pages.
const BOOT_MAP_LIMIT: u64 = 4 << 30;
const LARGE_PAGE: u64 = 2 << 20;
/// The most the final identity map covers (one PML4 entry); RAM above it is not used.
const MAX_MAP: u64 = identity::MAX_LIMIT;

static HYPERCALLS: AtomicBool = AtomicBool::new(false);
/// The boot information, copied: the command line is borrowed from here for the domain's life.
static BOOT: spin::Once<BootInfo> = spin::Once::new();

/// Whether hypercalls can be made yet (the page is installed).
pub(crate) fn hypercalls_ready() -> bool {
    HYPERCALLS.load(Ordering::Acquire)
}

/// Entered from `entry.rs` in 64-bit mode on our stack: `entry` says which entry point ran, `info` is the physical
/// address the loader passed in `%ebx`, `magic` the multiboot2 `%eax` (0 for PVH).
pub(crate) extern "C" fn start(entry: u32, info: u32, magic: u32) -> ! {
    let mode = if entry == entry::ENTRY_PVH { BootMode::Pvh } else { BootMode::Hvm };
    mode::set(mode);
    early::set_debugcon(true);
    trap::init();
    let Some(leaves) = find_xen(crate::cpuid) else { no_xen() };
    if mode == BootMode::Hvm {
        early::serial_init();
    }
    install_hypercall_page(&leaves);

    let parsed = match mode {
        BootMode::Pvh => bootinfo::parse_pvh(u64::from(info), &BootMapped),
        _ => bootinfo::parse_multiboot2(magic, u64::from(info), &BootMapped),
    };
    let boot = BOOT.call_once(|| parsed.unwrap_or_else(|e| fatal(format_args!("boot information at {info:#x}: {e}"))));
    let memmap = match boot.memmap {
        Some(m) => m,
        None => xen_memory_map().unwrap_or_else(|e| fatal(format_args!("no memory map: {e}"))),
    };
    let memory = memory_init(&memmap).unwrap_or_else(|e| fatal(format_args!("memory: {e}")));
    if let Err(e) = xen::map_shared_info_hvm() {
        fatal(format_args!("could not place shared_info (XENMEM_add_to_physmap): error {e}"));
    }
    match (param(crate::abi::HVM_PARAM_CONSOLE_PFN), param(crate::abi::HVM_PARAM_CONSOLE_EVTCHN)) {
        (Ok(pfn), Ok(port)) if pfn != 0 => console::init(pfn * PAGE_SIZE, port as u32),
        (pfn, port) => {
            crate::println!("sirocco: no PV console (pfn {pfn:?}, port {port:?}); output stays on the ports")
        }
    }
    let xen = start::announce();
    let cmdline = start::command_line(
        core::str::from_utf8(boot.cmdline.as_bytes())
            .map_err(|e| CmdlineError::NotUtf8 { valid_up_to: e.valid_up_to() })
            .and_then(Cmdline::parse),
    );
    if boot.cmdline_truncated {
        log::warn!("the command line was longer than {} bytes; the rest is ignored", bootinfo::MAX_CMDLINE);
    }
    let features = report(&leaves, boot, &memmap);
    // PVH too: without it a cancelled suspend (`xl save -c`) would return 0, as if in a new domain (issue 16).
    declare_callback(features);
    if mode == BootMode::Hvm {
        unplug_emulated_devices();
    }
    let store = (param(crate::abi::HVM_PARAM_STORE_PFN), param(crate::abi::HVM_PARAM_STORE_EVTCHN));
    let store = match store {
        (Ok(pfn), Ok(port)) if pfn != 0 => (pfn * PAGE_SIZE, port as u32),
        (pfn, port) => fatal(format_args!("no xenstore (HVM_PARAM_STORE_PFN {pfn:?}, STORE_EVTCHN {port:?})")),
    };
    start::finish(cmdline, memory, xen, store)
}

/// No hypervisor (plain QEMU, a bare machine, another hypervisor): one clear line on COM1 and port 0xE9, then stop
/// with interrupts off. Nothing else can be done without Xen, and a stop (not a reboot or a triple fault) is what
/// a person looking at the serial log can act on.
fn no_xen() -> ! {
    early::serial_init();
    early::write(
        b"sirocco: no Xen hypervisor found (no Xen signature in CPUID leaves 0x40000000-0x4000ff00); stopping\n",
    );
    trap::halt()
}

/// Writes the hypercall page's guest-physical address to the MSR CPUID names; Xen fills the page with stubs for
/// this mode (`vmcall`/`vmmcall`), called exactly as PV ones are (`hypercall.rs`).
fn install_hypercall_page(leaves: &XenLeaves) {
    let page = addr_of!(HYPERCALL_PAGE) as u64;
    // SAFETY: the MSR is the one Xen's CPUID leaf names for this purpose; the page is ours, page-aligned, in .text,
    // and used only as hypercall stubs, which is what Xen writes into it.
    unsafe { x86_64::registers::model_specific::Msr::new(leaves.hypercall_msr).write(page) };
    HYPERCALLS.store(true, Ordering::Release);
}

/// Reads the loader's memory through the boot map: [4 KiB, 4 GiB). Addresses outside are refused.
struct BootMapped;

impl PhysMem for BootMapped {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let refused = OutOfRange { addr, len: buf.len() };
        let end = addr.checked_add(buf.len() as u64).ok_or(refused)?;
        if addr < PAGE_SIZE || end > BOOT_MAP_LIMIT {
            return Err(refused);
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: the byte lies in [4 KiB, 4 GiB), which the boot map (entry.rs) maps identity; it is read with
            // a volatile byte load, valid for any value, and no Rust reference to it exists (it is the loader's).
            *b = unsafe { ((addr + i as u64) as *const u8).read_volatile() };
        }
        Ok(())
    }
}

/// The e820 map from `XENMEM_memory_map`, for PVH start infos of version 0 (which carry none).
fn xen_memory_map() -> Result<MemoryMap, ErrorText> {
    let mut buf = [0u8; 20 * bootinfo::MAX_REGIONS];
    let n = hypercall::memory_map(&mut buf).map_err(|e| ErrorText::Code("XENMEM_memory_map failed", e))?;
    MemoryMap::from_e820_bytes(&buf[..n * 20]).map_err(ErrorText::BootInfo)
}

/// Builds the final identity map and starts the heap.
///
/// The map covers [0, max(4 GiB, top of RAM)) rounded up to 2 MiB (the console and xenstore frames lie just below
/// 4 GiB), with page 0 and the stack's guard page left out; its tables are taken from the RAM right after the
/// image. The heap is the rest of the RAM region the image is in (linked_list_allocator manages one region).
fn memory_init(map: &MemoryMap) -> Result<MemoryInfo, ErrorText> {
    let image_start = addr_of!(__image_start) as u64;
    // The linked image plus the symbol table the build appended after it.
    let image_end = crate::crash::image_end();
    let guard = addr_of!(__stack_guard) as u64;
    let region =
        map.ram_containing(image_start).ok_or(ErrorText::Static("the image is not in RAM per the memory map"))?;
    let ram_top = map.regions().iter().filter(|r| r.kind == RegionKind::Ram).map(|r| r.end()).max().unwrap_or(0);
    let limit = ram_top.max(BOOT_MAP_LIMIT).next_multiple_of(LARGE_PAGE).min(MAX_MAP);
    let holes = [0, guard];
    let protection = crate::protect::image(crate::protect::cpu_has_nx());
    let n = identity::tables_needed(limit, &holes, &protection);
    let tables = image_end.next_multiple_of(PAGE_SIZE);
    let tables_end = tables + n as u64 * PAGE_SIZE;
    if tables_end > region.end() || tables_end > BOOT_MAP_LIMIT {
        return Err(ErrorText::Static("no room after the image for the page tables"));
    }
    // SAFETY: [tables, tables_end) is RAM after the image (inside the region that holds it, checked above), mapped
    // writable by the boot map (below 4 GiB, checked), 4 KiB-aligned, and used by nothing: the boot information that
    // may have been there has been copied out.
    let pages = unsafe { core::slice::from_raw_parts_mut(tables as *mut [u64; 512], n) };
    let built = identity::build_identity(TablePages { pages, phys_base: tables }, limit, &holes, &protection)
        .map_err(ErrorText::Identity)?;
    // SAFETY: as above; the builder is done with the pages, and this shared view is only read.
    let pages = unsafe { core::slice::from_raw_parts(tables as *const [u64; 512], n) };
    let stack_top = addr_of!(__stack_top) as u64;
    let must_map = [
        image_start,
        image_end - 1,
        stack_top - 8,
        tables,
        tables_end - 1,
        region.end() - 1,
        addr_of!(__shared_info_page) as u64,
        addr_of!(HYPERCALL_PAGE) as u64,
    ];
    for va in must_map {
        if identity::translate(pages, tables, built.root, va) != Some(va) {
            return Err(ErrorText::Address("the new page tables do not map", va));
        }
    }
    for va in holes {
        if identity::translate(pages, tables, built.root, va).is_some() {
            return Err(ErrorText::Address("the new page tables map a hole at", va));
        }
    }
    // W^X as built: the code we are running stays executable, constants and the stack get what they should.
    let flags = |va: u64| identity::leaf_entry(pages, tables, built.root, va).unwrap_or(0);
    let nx = if protection.nx { pte::NX } else { 0 };
    let expected = [
        (
            memory_init as fn(&MemoryMap) -> Result<MemoryInfo, ErrorText> as usize as u64,
            0,
            "code is not read-only and executable at",
        ),
        (protection.rodata.0, nx, "constants are not read-only at"),
        (stack_top - 8, pte::RW | nx, "the stack is not writable (and not executable) at"),
    ];
    for (va, want, what) in expected {
        if flags(va) & (pte::RW | pte::NX) != want {
            return Err(ErrorText::Address(what, va));
        }
    }
    if protection.nx {
        // SAFETY: CPUID says the CPU has NX, so EFER.NXE is a defined bit; it only makes the NX bit of entries
        // meaningful (none of the boot map's entries has it), and must be on before the new map is loaded.
        unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
    let root = PhysFrame::from_start_address(PhysAddr::new(built.root))
        .map_err(|_| ErrorText::Address("page-table root not aligned", built.root))?;
    // SAFETY: the new tables map every address in use (image, stack, tables, heap region) at the same physical
    // address as the boot map did (checked above), so the switch is invisible to Rust code; only page 0 and the
    // guard page, which nothing uses, become unmapped, and only rights Rust code does not use are taken away (it
    // never writes code or constants, and never runs code outside `.text`; checked above for this function).
    unsafe { Cr3::write(root, Cr3Flags::empty()) };
    crate::protect::applied(&protection);
    let heap_bytes = region.end() - tables_end;
    // SAFETY: [tables_end, region end) is RAM of the region holding the image, after the page tables, mapped
    // writable by the new map, and used by nothing else.
    unsafe { mm::init_heap(tables_end, heap_bytes) };
    Ok(MemoryInfo {
        domain_bytes: map.ram_bytes(),
        image_bytes: image_end - image_start,
        heap_start: tables_end,
        heap_bytes,
        page_tables_added: n as u64,
        pages_mapped: built.pages_4k + built.pages_2m * 512,
        mmu_hypercalls: 0,
    })
}

/// What was found, at debug level (and the facts that matter at info); returns Xen's feature bits.
fn report(leaves: &XenLeaves, boot: &BootInfo, map: &MemoryMap) -> u32 {
    let features = hypercall::xen_features();
    log::debug!(
        "xen: CPUID base {:#x} (max leaf {:#x}), hypercall MSR {:#x}, features {features:#x}",
        leaves.base,
        leaves.max_leaf,
        leaves.hypercall_msr
    );
    if features & (1 << crate::abi::XENFEAT_AUTO_TRANSLATED_PHYSMAP) == 0 {
        log::warn!("Xen does not report XENFEAT_auto_translated_physmap in a PVH/HVM guest");
    }
    if features & (1 << crate::abi::XENFEAT_HVM_SAFE_PVCLOCK) == 0 {
        log::error!("Xen does not report XENFEAT_hvm_safe_pvclock: the PV clock may be wrong in this HVM guest");
    }
    for r in map.regions() {
        log::debug!("memory map: {:#014x}-{:#014x} {:?}", r.start, r.end(), r.kind);
    }
    if boot.nr_modules + boot.modules_dropped > 0 {
        log::info!("{} boot module(s) ignored (Sirocco uses none)", boot.nr_modules + boot.modules_dropped);
    }
    features
}

/// Names an event callback in `HVM_PARAM_CALLBACK_IRQ` (HVM and PVH). Sirocco does not need it: the run loop takes
/// events with `SCHEDOP_poll`, upcalls masked and interrupts off, so the callback never fires. But the toolstack
/// takes a non-zero value as "this HVM guest has PV drivers" (libxl's PV-control check): without it `xl shutdown`
/// and `xl reboot` refuse, and EC2's stop would fall back to ACPI, which Sirocco does not have. The vector type
/// where Xen offers it (`XENFEAT_hvm_callback_vector`); else what older Xen has, a GSI: 28, the Xen platform PCI
/// device's own line (slot 3, INTA), which nothing here unmasks. A PVH guest declares it too: the toolstack turns a
/// cancelled suspend's return value into 1 only for a translated guest with a callback (docs/suspend.md).
fn declare_callback(features: u32) {
    use crate::abi::*;
    let value = if features & (1 << XENFEAT_HVM_CALLBACK_VECTOR) != 0 {
        HVM_PARAM_CALLBACK_TYPE_VECTOR << 56 | u64::from(trap::UPCALL_VECTOR)
    } else {
        HVM_PARAM_CALLBACK_TYPE_GSI << 56 | 28
    };
    match hypercall::hvm_set_param(HVM_PARAM_CALLBACK_IRQ, value) {
        Ok(()) => log::debug!("HVM_PARAM_CALLBACK_IRQ = {value:#x} (never fires: events are polled)"),
        Err(e) => log::warn!("HVM_PARAM_CALLBACK_IRQ refused ({e}): `xl shutdown` will not see PV drivers"),
    }
}

/// After a suspend (issue 16), whether the domain is new or the same: the event callback declared again, and under
/// HVM the emulated devices unplugged again.
pub(crate) fn resumed() {
    declare_callback(hypercall::xen_features());
    if crate::mode::boot_mode() == BootMode::Hvm {
        unplug_emulated_devices();
    }
}

/// Port I/O for the unplug protocol.
struct Ports;

impl PortIo for Ports {
    fn inb(&mut self, port: u16) -> u8 {
        // SAFETY: the platform device's ports (0x10-0x13); reading them has no effect on memory.
        unsafe { Port::new(port).read() }
    }
    fn inw(&mut self, port: u16) -> u16 {
        // SAFETY: as for `inb`.
        unsafe { Port::new(port).read() }
    }
    fn outw(&mut self, port: u16, v: u16) {
        // SAFETY: as for `inb`; the writes are the unplug protocol's, which affect only emulated devices.
        unsafe { Port::new(port).write(v) }
    }
    fn outl(&mut self, port: u16, v: u32) {
        // SAFETY: as for `outw`.
        unsafe { Port::new(port).write(v) }
    }
}

/// Unplugs the device model's IDE disks and NICs before blkfront and netfront connect (HVM only).
fn unplug_emulated_devices() {
    let mask = unplug::UNPLUG_ALL_IDE_DISKS | unplug::UNPLUG_ALL_NICS | unplug::UNPLUG_AUX_IDE_DISKS;
    let build = 1 << 8; // Sirocco 0.1 as major << 16 | minor << 8 | patch
    match unplug::unplug(&mut Ports, mask, unplug::SIROCCO_PRODUCT, build) {
        Unplug::Done { protocol } => log::info!("unplugged the emulated disks and NICs (protocol {protocol})"),
        Unplug::NoPlatformDevice => {
            log::warn!("no Xen platform device: emulated disks and NICs (if any) stay plugged")
        }
        Unplug::Refused => log::warn!("the device model refused to unplug emulated devices for this driver"),
    }
}

/// Why the start of day failed (no heap yet, so plain values).
enum ErrorText {
    Static(&'static str),
    Code(&'static str, i64),
    Address(&'static str, u64),
    BootInfo(bootinfo::BootInfoError),
    Identity(identity::IdentityError),
}

impl fmt::Display for ErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorText::Static(s) => f.write_str(s),
            ErrorText::Code(s, e) => write!(f, "{s} (error {e})"),
            ErrorText::Address(s, a) => write!(f, "{s} {a:#x}"),
            ErrorText::BootInfo(e) => write!(f, "{e}"),
            ErrorText::Identity(e) => write!(f, "{e}"),
        }
    }
}

/// A start-of-day failure: said on every output there is, then the domain crashes.
fn fatal(args: fmt::Arguments<'_>) -> ! {
    console::print_forced(format_args!("sirocco: cannot boot: {args}\n"));
    crate::exit(crate::Exit::Crash)
}
