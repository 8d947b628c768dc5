//! Which Rust toolchain builds images. Building `core` and `alloc` for a custom target (`-Zbuild-std`) needs a
//! toolchain that ships the library source. In order of preference: `$SIROCCO_RUSTC` (with `$SIROCCO_CARGO`, or
//! the `cargo` on `PATH`); the rustup toolchain on `PATH` if it has `rust-src` (`rustup component add rust-src`);
//! Debian's `rustc-web` + `rust-web-src`, which the checkout's `tools/setup-host.sh` installs when nothing else has
//! the source. Stable compilers need `RUSTC_BOOTSTRAP=1` for `-Zbuild-std`, as the Linux kernel's Rust build does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The compiler and cargo a build uses, and why they were picked.
#[derive(Debug, Clone, PartialEq)]
pub struct Toolchain {
    /// `rustc`.
    pub rustc: PathBuf,
    /// `cargo`.
    pub cargo: PathBuf,
    /// Why this one (printed by every build).
    pub why: &'static str,
}

impl Toolchain {
    /// `rustc --version`, for the build's log line.
    pub fn version(&self) -> String {
        Command::new(&self.rustc)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("{} (no version)", self.rustc.display()))
    }

    /// A `cargo` command run with this toolchain's compiler (and allowed `-Z` flags on a stable compiler).
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.env("RUSTC", &self.rustc).env("RUSTC_BOOTSTRAP", "1");
        cmd
    }
}

/// Whether the compiler `rustc` ships the library source `-Zbuild-std` needs.
fn has_source(rustc: &Path) -> bool {
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else { return false };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success() && Path::new(&sysroot).join("lib/rustlib/src/rust/library/core").is_dir()
}

/// The first of `dirs` holding an executable `name`.
fn find_in(dirs: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(dirs).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The candidates in order of preference, from the environment and `PATH` given.
fn candidates(sirocco_rustc: Option<String>, sirocco_cargo: Option<String>, path: &str) -> Vec<Toolchain> {
    let mut found = Vec::new();
    if let Some(rustc) = sirocco_rustc {
        let cargo = sirocco_cargo.map(PathBuf::from).or_else(|| find_in(path, "cargo")).unwrap_or("cargo".into());
        found.push(Toolchain { rustc: rustc.into(), cargo, why: "$SIROCCO_RUSTC" });
        return found;
    }
    if let (Some(rustc), Some(cargo)) = (find_in(path, "rustc"), find_in(path, "cargo")) {
        found.push(Toolchain { rustc, cargo, why: "the toolchain on PATH, which has rust-src" });
    }
    found.push(Toolchain {
        rustc: "/usr/bin/rustc".into(),
        cargo: "/usr/bin/cargo".into(),
        why: "Debian's rustc-web with rust-web-src",
    });
    found
}

/// The toolchain to build with, installing Debian's through `setup_host` (the checkout's `tools/setup-host.sh`)
/// when none has the library source.
pub fn pick(setup_host: &Path) -> Result<Toolchain, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let path = std::env::var("PATH").unwrap_or_default();
    let usable = || {
        candidates(env("SIROCCO_RUSTC"), env("SIROCCO_CARGO"), &path)
            .into_iter()
            .find(|t| (t.why == "$SIROCCO_RUSTC" || t.cargo.exists()) && has_source(&t.rustc))
    };
    if let Some(t) = usable() {
        return Ok(t);
    }
    eprintln!("sirocco: no Rust toolchain with the library source; installing Debian's ({})", setup_host.display());
    let status = Command::new(setup_host).status().map_err(|e| format!("running {}: {e}", setup_host.display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status}); see the README's 'Toolchain'", setup_host.display()));
    }
    usable().ok_or_else(|| {
        "still no toolchain with the library source: `rustup component add rust-src`, or set SIROCCO_RUSTC".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_compiler_wins_and_is_the_only_candidate() {
        let c = candidates(Some("/opt/r/rustc".into()), Some("/opt/r/cargo".into()), "/usr/bin");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].rustc, Path::new("/opt/r/rustc"));
        assert_eq!(c[0].cargo, Path::new("/opt/r/cargo"));
    }

    #[test]
    fn the_path_toolchain_comes_before_debians() {
        let dir = std::env::temp_dir().join(format!("sirocco-cli-tc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for tool in ["rustc", "cargo"] {
            std::fs::write(dir.join(tool), "").unwrap();
        }
        let c = candidates(None, None, dir.to_str().unwrap());
        assert_eq!(c[0].rustc, dir.join("rustc"));
        assert_eq!(c[1].rustc, Path::new("/usr/bin/rustc"));
        // With no toolchain on PATH, Debian's is the one left.
        let c = candidates(None, None, "/nonexistent");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].why, "Debian's rustc-web with rust-web-src");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
