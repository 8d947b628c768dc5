//! `sirocco-imgcheck IMAGE...`: checks each built image the way its loaders read it before it is ever booted: Xen's
//! PV loader (Xen ELF notes, loadable segments), the PVH entry note and GRUB's multiboot2 header, and prints its size
//! and entries. Exits 1 on the first bad image. (`sirocco check` does the same.)

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: sirocco-imgcheck IMAGE...");
        return ExitCode::from(2);
    }
    for path in &paths {
        match sirocco_imgcheck::check(Path::new(path)) {
            Ok(summary) => println!("imgcheck: {summary}"),
            Err(e) => {
                eprintln!("imgcheck: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
