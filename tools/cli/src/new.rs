//! `sirocco new PATH`: a new application crate: `Cargo.toml` (its own workspace, the `sirocco` dependency, the
//! `[patch]` for the smoltcp Sirocco carries, the release profile images are built with), `src/main.rs`, an xl
//! config `NAME.cfg` and a `.gitignore`. The templates are in `tools/cli/template/`.

use crate::args::Args;
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../template/Cargo.toml");
const MAIN_RS: &str = include_str!("../template/main.rs");
const APP_CFG: &str = include_str!("../template/app.cfg");
const GITIGNORE: &str = include_str!("../template/gitignore");

/// Where the new crate gets Sirocco from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A checkout on this machine.
    Path(PathBuf),
    /// A git repository, at a branch or revision (`None`: its default branch).
    Git { url: String, pin: Option<(&'static str, String)> },
}

impl Source {
    /// The TOML dependency table for the package at `sub` (relative to the checkout's root).
    fn dependency(&self, sub: &str) -> String {
        match self {
            Source::Path(root) => format!("{{ path = {} }}", toml_string(&root.join(sub).to_string_lossy())),
            Source::Git { url, pin } => {
                let pin = pin.as_ref().map(|(k, v)| format!(", {k} = {}", toml_string(v))).unwrap_or_default();
                // Cargo finds a package by name anywhere in the repository, so `sub` is not needed.
                format!("{{ git = {}{pin} }}", toml_string(url))
            }
        }
    }
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `name` can name a package, a binary and an xl domain: ASCII letters, digits, `-` and `_`, starting with
/// a letter.
fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The files of a new application `name` depending on Sirocco from `source`, as (path in the crate, contents).
pub fn files(name: &str, source: &Source) -> Vec<(&'static str, String)> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{sirocco}}", &source.dependency("kernel"))
            .replace("{{smoltcp}}", &source.dependency("third_party/smoltcp"))
    };
    vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/main.rs", fill(MAIN_RS)),
        ("app.cfg", fill(APP_CFG)),
        (".gitignore", fill(GITIGNORE)),
    ]
}

/// The checkout this command was built from, if it is still there.
fn built_from() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("kernel/Cargo.toml").is_file().then(|| root.canonicalize().ok()).flatten()
}

/// `sirocco new`.
pub fn run(args: Args) -> Result<(), String> {
    let [path] = args.positional.as_slice() else {
        return Err(
            "usage: sirocco new PATH [--name NAME] [--sirocco-path DIR | --git URL [--branch B | --rev R]]".into()
        );
    };
    let dir = PathBuf::from(path);
    let name = match args.get("name") {
        Some(n) => n.to_string(),
        None => dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    if !valid_name(&name) {
        return Err(format!(
            "{name:?} cannot name an application: use letters, digits, - and _, starting with a letter"
        ));
    }
    let source = match (args.get("git"), args.get("sirocco-path")) {
        (Some(_), Some(_)) => return Err("--git and --sirocco-path: pick one".into()),
        (Some(url), None) => {
            let pin = match (args.get("branch"), args.get("rev")) {
                (Some(_), Some(_)) => return Err("--branch and --rev: pick one".into()),
                (Some(b), None) => Some(("branch", b.to_string())),
                (None, Some(r)) => Some(("rev", r.to_string())),
                (None, None) => None,
            };
            Source::Git { url: url.to_string(), pin }
        }
        (None, given) => {
            let root = match given {
                Some(p) => PathBuf::from(p).canonicalize().map_err(|e| format!("--sirocco-path {p}: {e}"))?,
                None => built_from().ok_or(
                    "the Sirocco checkout this command was built from is gone: give --sirocco-path DIR or --git URL",
                )?,
            };
            if !root.join("kernel/Cargo.toml").is_file() || !root.join("x86_64-xen.json").is_file() {
                return Err(format!(
                    "{} is not a Sirocco checkout (no kernel/Cargo.toml, x86_64-xen.json)",
                    root.display()
                ));
            }
            Source::Path(root)
        }
    };
    if dir.exists() && dir.read_dir().map_err(|e| format!("{path}: {e}"))?.next().is_some() {
        return Err(format!("{path} exists and is not empty"));
    }
    for (file, contents) in files(&name, &source) {
        let file = if file == "app.cfg" { format!("{name}.cfg") } else { file.to_string() };
        let target = dir.join(&file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&target, contents).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    // From a checkout, the new crate starts from the checkout's lock file: its dependencies resolve to the versions
    // Sirocco was tested with (cargo drops the entries it does not need), not to whatever crates.io has today.
    if let Source::Path(root) = &source {
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(&lock, dir.join("Cargo.lock")).map_err(|e| format!("copying {}: {e}", lock.display()))?;
        }
    }
    let via = match &source {
        Source::Path(root) => format!("the checkout at {}", root.display()),
        Source::Git { url, .. } => url.clone(),
    };
    println!("sirocco: made application {name} in {path} (Sirocco from {via})");
    println!("  cd {path} && sirocco build      # target/sirocco/{name}.xen");
    println!("  sirocco run                    # boot it under Xen (here if this is a dom0, else in the lab)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_source_fills_the_dependency_and_the_smoltcp_patch() {
        let files = files("myapp", &Source::Path("/src/sirocco".into()));
        let cargo = &files.iter().find(|(f, _)| *f == "Cargo.toml").unwrap().1;
        assert!(cargo.contains("name = \"myapp\""), "{cargo}");
        assert!(cargo.contains("sirocco = { path = \"/src/sirocco/kernel\" }"), "{cargo}");
        assert!(cargo.contains("smoltcp = { path = \"/src/sirocco/third_party/smoltcp\" }"), "{cargo}");
        for (file, text) in &files {
            assert!(!text.contains("{{"), "{file} has an unfilled placeholder:\n{text}");
        }
        let cfg = &files.iter().find(|(f, _)| *f == "app.cfg").unwrap().1;
        assert!(cfg.contains("kernel = \"target/sirocco/myapp.xen\""), "{cfg}");
    }

    #[test]
    fn a_git_source_pins_both_the_crate_and_the_patch() {
        let src = Source::Git { url: "https://example.org/s.git".into(), pin: Some(("rev", "abc123".into())) };
        let cargo = files("a", &src).remove(0).1;
        assert!(cargo.contains("sirocco = { git = \"https://example.org/s.git\", rev = \"abc123\" }"), "{cargo}");
        assert!(cargo.contains("smoltcp = { git = \"https://example.org/s.git\", rev = \"abc123\" }"), "{cargo}");
    }

    #[test]
    fn names_and_paths_are_checked_and_quoted() {
        assert!(valid_name("hello-xen") && valid_name("a_1"));
        assert!(!valid_name("1app") && !valid_name("") && !valid_name("a b") && !valid_name("a/b"));
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn the_template_builds_against_the_checkout_it_came_from() {
        // The checkout this test runs in is a Sirocco checkout: `new` without a source points at it.
        let root = built_from().expect("tests run inside the checkout");
        assert!(root.join("x86_64-xen.json").is_file());
    }
}
