//! `sirocco run` and `sirocco image`: build, then boot the image under Xen (on this host when it is a Xen dom0,
//! else in the Sirocco checkout's QEMU lab) or package it as a BIOS-bootable disk.

use crate::args::Args;
use crate::compile;
use std::process::Command;

/// Whether this host is a Xen dom0 with the `xl` toolstack.
fn local_xen() -> bool {
    let dom0 = std::fs::read_to_string("/proc/xen/capabilities").is_ok_and(|c| c.contains("control_d"));
    let xl = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("xl").is_file()));
    dom0 && xl
}

fn status(mut cmd: Command) -> Result<(), String> {
    eprintln!("sirocco: {cmd:?}");
    let status = cmd.status().map_err(|e| format!("running {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({status})", cmd.get_program()))
    }
}

/// `sirocco run`.
pub fn run(args: Args) -> Result<(), String> {
    if args.flag("lab") && args.flag("xl") {
        return Err("--lab and --xl: pick one".into());
    }
    let (project, _) = compile::run(&args)?;
    let app = project.single()?;
    let image = project.image(app);
    let config = project.xl_config(app)?;
    let use_xl = args.flag("xl") || (!args.flag("lab") && local_xen());
    if use_xl {
        if args.get("serve").is_some() {
            return Err("--serve is for the lab; on a Xen host the guest is on your bridge already".into());
        }
        // The console stays attached (`-c`; Ctrl-] detaches) and the image is the one just built.
        let mut xl = Command::new("xl");
        xl.args(["create", "-c"]).arg(&config).arg(format!("kernel=\"{}\"", image.display()));
        xl.args(&args.positional);
        return status(xl);
    }
    let lab = project.sirocco_root.join("lab/lab.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&lab);
    match args.get("serve") {
        Some(port) => {
            cmd.args(["serve", "--image"]).arg(&image).arg("--config").arg(&config).arg(&app.name).arg(port);
            if !args.positional.is_empty() {
                return Err("--serve takes no xl overrides (the lab sets the guest's address)".into());
            }
        }
        None => {
            cmd.args(["run", "--timeout", args.get("timeout").unwrap_or("300")]);
            cmd.arg("--image").arg(&image).arg("--config").arg(&config).arg(&app.name);
            cmd.args(&args.positional);
        }
    }
    status(cmd)
}

/// `sirocco image`.
pub fn image(args: Args) -> Result<(), String> {
    let (project, images) = compile::run(&args)?;
    let mkimage = project.sirocco_root.join("tools/mkimage.sh");
    for image in images {
        let disk = image.with_extension("img");
        let mut cmd = Command::new(&mkimage);
        cmd.arg(&image).arg(&disk).arg(args.get("cmdline").unwrap_or(""));
        status(cmd)?;
        eprintln!("sirocco: {} (boot it as an HVM guest: README, 'HVM and EC2')", disk.display());
    }
    Ok(())
}
