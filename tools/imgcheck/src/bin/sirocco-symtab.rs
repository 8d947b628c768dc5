//! `sirocco-symtab IMAGE OUT`: writes IMAGE's symbol table for crash reports (the format of
//! `sirocco_boot_logic::crash::symtab`: function starts and shortened names, from `nm -C -S --defined-only`) to OUT,
//! for `tools/xbuild.sh` to put into the image's `.sirocco_syms` section.

use sirocco_boot_logic::crash::symtab::{build, from_nm, Symtab};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, out] = args.as_slice() else {
        eprintln!("usage: sirocco-symtab IMAGE OUT");
        return ExitCode::from(2);
    };
    let nm = match Command::new("nm").args(["-C", "-S", "--defined-only", image]).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("symtab: nm {image}: {}", String::from_utf8_lossy(&o.stderr).trim());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("symtab: running nm (binutils): {e}");
            return ExitCode::FAILURE;
        }
    };
    let (syms, end) = from_nm(&String::from_utf8_lossy(&nm.stdout));
    if syms.is_empty() {
        eprintln!("symtab: {image} has no function symbols (stripped?)");
        return ExitCode::FAILURE;
    }
    let table = build(syms, end);
    let parsed = Symtab::parse(&table).expect("a table just built parses");
    if let Err(e) = std::fs::write(out, &table) {
        eprintln!("symtab: {out}: {e}");
        return ExitCode::FAILURE;
    }
    println!("symtab: {image}: {} functions, {} bytes", parsed.len(), table.len());
    ExitCode::SUCCESS
}
