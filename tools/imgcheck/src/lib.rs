//! Checks and finishes built Sirocco images on the host: [`check`] reads an image the way its loaders will (Xen's
//! PV loader: ELF notes and loadable segments; the PVH entry note; GRUB's multiboot2 header), and [`symtab`] makes
//! the symbol table crash reports print names from, which the build puts into the image's `.sirocco_syms` section.
//! Used by the `sirocco` CLI (`sirocco build`, `sirocco check`) and the `sirocco-imgcheck` binary.
#![forbid(unsafe_code)]

use sirocco_boot_logic::crash::symtab::{build, from_nm, Symtab};
use sirocco_boot_logic::elfnote::{check_boot_entries, check_pv_image};
use std::path::Path;
use std::process::Command;

/// Checks the image at `path` as Xen's PV loader, a PVH loader and GRUB's multiboot2 loader read it; returns a
/// one-line summary (size, memory, entries) or what is wrong, both naming the file.
pub fn check(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let img = check_pv_image(&bytes).map_err(|e| format!("{shown}: {e}"))?;
    let boot = check_boot_entries(&bytes).map_err(|e| format!("{shown}: {e}"))?;
    Ok(format!(
        "{shown}: ok ({} bytes on disk, {} KiB in memory, entry {:#x}, hypercall page {:#x}, guest OS {}, PVH entry \
         {:#x}, multiboot2 entry {:#x} (header at file offset {:#x}))",
        bytes.len(),
        img.memory_bytes / 1024,
        img.entry,
        img.hypercall_page,
        img.guest_os,
        boot.pvh_entry,
        boot.multiboot2_entry,
        boot.multiboot2_offset
    ))
}

/// The symbol table of the linked image at `image` (the format of `sirocco_boot_logic::crash::symtab`: function
/// starts and shortened names, read with binutils' `nm -C -S --defined-only`), and how many functions it holds.
pub fn symtab(image: &Path) -> Result<(Vec<u8>, usize), String> {
    let shown = image.display();
    let nm = Command::new("nm")
        .args(["-C", "-S", "--defined-only"])
        .arg(image)
        .output()
        .map_err(|e| format!("running nm (binutils) on {shown}: {e}"))?;
    if !nm.status.success() {
        return Err(format!("nm {shown}: {}", String::from_utf8_lossy(&nm.stderr).trim()));
    }
    let (syms, end) = from_nm(&String::from_utf8_lossy(&nm.stdout));
    if syms.is_empty() {
        return Err(format!("{shown} has no function symbols (stripped?)"));
    }
    let table = build(syms, end);
    let functions =
        Symtab::parse(&table).map_err(|e| format!("{shown}: the table just built does not parse: {e:?}"))?.len();
    Ok((table, functions))
}
