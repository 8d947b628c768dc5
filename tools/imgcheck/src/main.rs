//! `sirocco-imgcheck IMAGE...`: checks each built image the way its loaders read it before it is ever booted: Xen's
//! PV loader (Xen ELF notes, loadable segments), the PVH entry note and GRUB's multiboot2 header, and prints its size
//! and entries. Exits 1 on the first bad image.

use sirocco_boot_logic::elfnote::{check_boot_entries, check_pv_image};
use std::process::ExitCode;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: sirocco-imgcheck IMAGE...");
        return ExitCode::from(2);
    }
    for path in &paths {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("imgcheck: {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let checked = check_pv_image(&bytes).and_then(|img| Ok((img, check_boot_entries(&bytes)?)));
        match checked {
            Ok((img, boot)) => println!(
                "imgcheck: {path}: ok ({} bytes on disk, {} KiB in memory, entry {:#x}, hypercall page {:#x}, \
                 guest OS {}, PVH entry {:#x}, multiboot2 entry {:#x} (header at file offset {:#x}))",
                bytes.len(),
                img.memory_bytes / 1024,
                img.entry,
                img.hypercall_page,
                img.guest_os,
                boot.pvh_entry,
                boot.multiboot2_entry,
                boot.multiboot2_offset
            ),
            Err(e) => {
                eprintln!("imgcheck: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
