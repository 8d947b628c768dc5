//! `sirocco`: makes, builds, checks and boots Sirocco applications, in this repository or anywhere else.
//!
//! ```text
//! sirocco new PATH [--name NAME] [--sirocco-path DIR | --git URL [--branch B | --rev R]]
//! sirocco build [--manifest-path M] [-p APP]... [--out-dir D] [--target-dir T]
//! sirocco check [IMAGE...]
//! sirocco run [--manifest-path M] [-p APP] [--lab | --xl] [--serve PORT] [--timeout S] [KEY=VALUE...]
//! sirocco image [--manifest-path M] [-p APP] [--cmdline ARGS]
//! sirocco libvirt [--manifest-path M] [-p APP] [--kernel PATH]
//! sirocco trace [INPUT | --domain NAME [--console LOG]] [--json OUT] [--html OUT]
//! sirocco where
//! ```
//! `make build`, `make run` and `make image` in the Sirocco repository run these same commands.

mod args;
mod compile;
mod libvirt;
mod new;
mod project;
mod run;
mod toolchain;
mod trace;

use std::process::ExitCode;

const USAGE: &str = "\
sirocco: make, build, check and boot Sirocco unikernel applications for Xen

usage:
  sirocco new PATH [--name NAME] [--sirocco-path DIR | --git URL [--branch B | --rev R]]
        a new application crate at PATH: Cargo.toml, src/main.rs and an xl config NAME.cfg, depending on
        Sirocco by path (default: the checkout this command was built from) or by git
  sirocco build [--manifest-path M] [-p APP]... [--out-dir D] [--target-dir T]
        build the crate's image(s) for Xen: D/APP.xen (default D: TARGET/sirocco) and its debug info D/APP.debug
  sirocco check [IMAGE...]
        check images as Xen's PV loader, a PVH loader and GRUB read them (default: the crate's images)
  sirocco run [--manifest-path M] [-p APP] [--lab | --xl] [--serve PORT] [--timeout S] [KEY=VALUE...]
        build, then boot with the crate's xl config (KEY=VALUE: xl overrides, e.g. 'extra=\"log=debug\"'):
        with `xl create` on this host when it is a Xen dom0 (or --xl), else in Sirocco's QEMU lab (or --lab);
        --serve PORT (lab) keeps it up with guest port PORT reachable at http://localhost:8080/
  sirocco image [--manifest-path M] [-p APP] [--cmdline ARGS]
        build, then D/APP.img: a BIOS-bootable disk (GRUB, multiboot2) for HVM guests and EC2
  sirocco libvirt [--manifest-path M] [-p APP] [--kernel PATH]
        print the app's xl config as a libvirt domain for the libxl driver (virsh -c xen:///system create F.xml),
        booting the built image (or PATH)
  sirocco trace [INPUT | --domain NAME [--console LOG]] [--json OUT] [--html OUT]
        a guest's trace (trace=... on its command line) from INPUT (a console log holding a dump, or GET /trace's
        JSON) or, on a dom0, from the running domain NAME (asked through xenstore, read from its console LOG):
        OUT.json for Perfetto, OUT.html a standalone timeline; prints events per layer and request paths
  sirocco where
        print the Sirocco checkout in use and the toolchain the build would use
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let outcome = match command.as_str() {
        "new" => args::parse(rest, &["name", "sirocco-path", "git", "branch", "rev"], &[]).and_then(new::run),
        "build" => args::parse(rest, &["manifest-path", "p", "out-dir", "target-dir"], &[])
            .and_then(|a| compile::run(&a).map(drop)),
        "check" => args::parse(rest, &["manifest-path", "p", "out-dir", "target-dir"], &[]).and_then(compile::check),
        "run" => {
            args::parse(rest, &["manifest-path", "p", "out-dir", "target-dir", "serve", "timeout"], &["lab", "xl"])
                .and_then(run::run)
        }
        "image" => {
            args::parse(rest, &["manifest-path", "p", "out-dir", "target-dir", "cmdline"], &[]).and_then(run::image)
        }
        "libvirt" => {
            args::parse(rest, &["manifest-path", "p", "out-dir", "target-dir", "kernel"], &[]).and_then(libvirt::run)
        }
        "trace" => args::parse(rest, &["domain", "console", "json", "html"], &[]).and_then(|a| trace::run(&a)),
        "where" => args::parse(rest, &["manifest-path"], &[]).and_then(project::show),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("no command {other:?}\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sirocco: {e}");
            ExitCode::FAILURE
        }
    }
}
