//! `sirocco build` and `sirocco check`: cargo builds the application for the `x86_64-xen` target (the Sirocco
//! checkout's target spec, `core`/`alloc` built from source), then each image is finished as crash reports and
//! debuggers need it and checked as its loaders will read it.
//!
//! Nothing about linking comes from here: the `sirocco` crate's build script ships the linker script and the target
//! spec names it, so any crate builds with `--target x86_64-xen.json` and `-Zbuild-std`.

use crate::args::Args;
use crate::project::Project;
use crate::toolchain;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds the selected applications; returns the project and the images written.
pub fn run(args: &Args) -> Result<(Project, Vec<PathBuf>), String> {
    let project = Project::load(args)?;
    let tc = toolchain::pick(&project.sirocco_root.join("tools/setup-host.sh"))?;
    eprintln!("sirocco: building with {} at {} ({})", tc.version(), tc.rustc.display(), tc.why);
    let mut cargo = tc.cargo();
    cargo
        .args(["build", "--release", "--message-format=json-render-diagnostics"])
        .args(["-Zbuild-std=core,alloc", "-Zbuild-std-features=compiler-builtins-mem", "-Zjson-target-spec"])
        .arg("--target")
        .arg(project.sirocco_root.join("x86_64-xen.json"))
        .arg("--manifest-path")
        .arg(&project.manifest)
        .arg("--target-dir")
        .arg(&project.target_dir);
    for app in &project.apps {
        cargo.args(["-p", &app.package]);
    }
    let user_flags = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(encoded) => UserFlags::Encoded(encoded),
        Err(_) => UserFlags::Plain(std::env::var("RUSTFLAGS").unwrap_or_default()),
    };
    cargo.env_remove("RUSTFLAGS").env("CARGO_ENCODED_RUSTFLAGS", target_rustflags(&user_flags));
    let built = cargo_executables(cargo)?;
    std::fs::create_dir_all(&project.out_dir).map_err(|e| format!("{}: {e}", project.out_dir.display()))?;
    let mut images = Vec::new();
    for app in &project.apps {
        let linked = built
            .iter()
            .find(|(name, _)| *name == app.name)
            .map(|(_, path)| path)
            .ok_or_else(|| format!("cargo built no executable named {}", app.name))?;
        let image = project.image(app);
        finish(linked, &image)?;
        let summary = sirocco_imgcheck::check(&image)?;
        eprintln!("sirocco: checked {summary}");
        images.push(image);
    }
    Ok((project, images))
}

/// Runs `cargo` (with JSON messages on stdout, diagnostics rendered to stderr) and returns the executables it
/// produced, by target name.
fn cargo_executables(mut cargo: Command) -> Result<Vec<(String, PathBuf)>, String> {
    let mut child = cargo.stdout(Stdio::piped()).spawn().map_err(|e| format!("running cargo: {e}"))?;
    let mut built = Vec::new();
    let stdout = child.stdout.take().expect("stdout was piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
        if msg["reason"] == "compiler-artifact" {
            if let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str()) {
                built.push((name.to_string(), PathBuf::from(exe)));
            }
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    Ok(built)
}

/// Makes `image` from the linked executable: its symbol table for crash reports goes into its last section
/// (`.sirocco_syms`, filled in after the link so nothing else moves), and its debug info into `NAME.debug` beside
/// it (for `tools/symbolize` and gdb, linked by `.gnu_debuglink`) and out of the image.
fn finish(linked: &Path, image: &Path) -> Result<(), String> {
    std::fs::copy(linked, image).map_err(|e| format!("copying {} to {}: {e}", linked.display(), image.display()))?;
    let (table, functions) = sirocco_imgcheck::symtab(image)?;
    let table_file = image.with_extension("symtab");
    std::fs::write(&table_file, &table).map_err(|e| format!("{}: {e}", table_file.display()))?;
    let debug = image.with_extension("debug");
    let mut section = std::ffi::OsString::from(".sirocco_syms=");
    section.push(&table_file);
    let mut link = std::ffi::OsString::from("--add-gnu-debuglink=");
    link.push(&debug);
    let steps: [Vec<std::ffi::OsString>; 3] = [
        vec!["--update-section".into(), section, image.into()],
        vec!["--only-keep-debug".into(), image.into(), debug.clone().into()],
        vec!["--strip-debug".into(), link, image.into()],
    ];
    for step in steps {
        let status = Command::new("objcopy")
            .args(&step)
            .status()
            .map_err(|e| format!("running objcopy (binutils; tools/setup-host.sh installs it): {e}"))?;
        if !status.success() {
            return Err(format!("objcopy {step:?} failed ({status})"));
        }
    }
    let _ = std::fs::remove_file(&table_file);
    let size = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "sirocco: {} ({size} bytes, {functions} functions named for crash reports; debug info in {})",
        image.display(),
        debug.display()
    );
    Ok(())
}

/// `sirocco check [IMAGE...]`: checks the images named, or the selected applications' built images.
pub fn check(args: Args) -> Result<(), String> {
    let images: Vec<PathBuf> = if args.positional.is_empty() {
        let project = Project::load(&args)?;
        project.apps.iter().map(|app| project.image(app)).collect()
    } else {
        args.positional.iter().map(PathBuf::from).collect()
    };
    for image in images {
        if !image.exists() {
            return Err(format!("{} does not exist: run `sirocco build` first", image.display()));
        }
        println!("sirocco: {}", sirocco_imgcheck::check(&image)?);
    }
    Ok(())
}

/// The target is soft-float (the kernel runs without SSE), and RustCrypto's crates pick SIMD code on x86_64
/// unless told otherwise: these cfgs select their portable code (`docs/tls.md`). Without them, an app using
/// `sirocco-tls` fails in LLVM ("Do not know how to split the result of this operator"). They name only
/// RustCrypto's own switches, so other crates build as before.
pub const SOFT_FLOAT_CFGS: &[&str] = &[
    "--cfg",
    "aes_force_soft",
    "--cfg",
    "polyval_force_soft",
    "--cfg",
    "poly1305_force_soft",
    "--cfg",
    "chacha20_force_soft",
    "--cfg",
    "curve25519_dalek_backend=\"serial\"",
];

/// The flags the user gave cargo, if any.
enum UserFlags {
    /// `CARGO_ENCODED_RUSTFLAGS`: flags separated by 0x1f.
    Encoded(String),
    /// `RUSTFLAGS`: flags separated by whitespace.
    Plain(String),
}

/// `CARGO_ENCODED_RUSTFLAGS` for the target: the user's flags, split as cargo splits them, then
/// [`SOFT_FLOAT_CFGS`].
fn target_rustflags(user: &UserFlags) -> String {
    let mut flags: Vec<&str> = match user {
        UserFlags::Encoded(f) => f.split('\x1f').filter(|f| !f.is_empty()).collect(),
        UserFlags::Plain(f) => f.split_whitespace().collect(),
    };
    flags.extend_from_slice(SOFT_FLOAT_CFGS);
    flags.join("\x1f")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_rustflags_keep_the_users_and_add_the_soft_float_cfgs() {
        let ours = SOFT_FLOAT_CFGS.join("\x1f");
        assert_eq!(target_rustflags(&UserFlags::Plain(String::new())), ours);
        assert_eq!(target_rustflags(&UserFlags::Encoded(String::new())), ours);
        let plain = UserFlags::Plain("-C  debuginfo=1 ".into());
        assert_eq!(target_rustflags(&plain), format!("-C\x1fdebuginfo=1\x1f{ours}"));
        let encoded = UserFlags::Encoded("-C\x1fopt level".into());
        assert_eq!(target_rustflags(&encoded), format!("-C\x1fopt level\x1f{ours}"));
        assert!(ours.contains("curve25519_dalek_backend=\"serial\""));
    }
}
