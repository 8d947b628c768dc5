//! `sirocco-imgcheck IMAGE...`: checks each built image the way Xen's PV loader reads it (Xen ELF notes,
//! loadable segments) before it is ever booted, and prints its size. Exits 1 on the first bad image.

use sirocco_boot_logic::elfnote::check_pv_image;
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
        match check_pv_image(&bytes) {
            Ok(img) => println!(
                "imgcheck: {path}: ok ({} bytes on disk, {} KiB in memory, entry {:#x}, hypercall page {:#x}, guest OS {})",
                bytes.len(),
                img.memory_bytes / 1024,
                img.entry,
                img.hypercall_page,
                img.guest_os
            ),
            Err(e) => {
                eprintln!("imgcheck: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
