//! Ships the image layout with the crate, so an application crate (in this workspace or outside it) needs no copy
//! of it: the linker script is copied into `OUT_DIR` as `sirocco.ld`, and `OUT_DIR` is put on the link search path
//! of every crate that depends on this one. The target spec (`x86_64-xen.json`, `post-link-args`) names
//! `-Tsirocco.ld`, which the linker finds there (the `cortex-m-rt` pattern).

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let script = manifest.join("..").join("linker.ld");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(&script, out.join("sirocco.ld"))
        .unwrap_or_else(|e| panic!("copying {} into OUT_DIR: {e}", script.display()));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rerun-if-changed={}", script.display());
}
