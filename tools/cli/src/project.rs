//! The crate being built, read from `cargo metadata`: which binaries are Sirocco applications, where cargo puts
//! its output, and which Sirocco checkout the crate depends on. That checkout (found through the `sirocco`
//! package, whether a path or a git dependency) supplies the target spec, the lab and the disk-image tool, so they
//! always match the runtime the image links.

use crate::args::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One application binary.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// The binary's name, which names its image (`NAME.xen`) and xl config (`NAME.cfg`).
    pub name: String,
    /// Its package.
    pub package: String,
    /// The package's directory.
    pub dir: PathBuf,
}

/// What a build works on.
#[derive(Debug)]
pub struct Project {
    /// The manifest cargo runs on.
    pub manifest: PathBuf,
    /// The Sirocco checkout: `kernel/` (the `sirocco` crate), `x86_64-xen.json`, `lab/`, `tools/`.
    pub sirocco_root: PathBuf,
    /// The applications to build.
    pub apps: Vec<App>,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// Where images go.
    pub out_dir: PathBuf,
}

impl Project {
    /// Reads the crate named by `--manifest-path` (default: the one around the current directory), selecting the
    /// applications named by `-p` (default: the crate's own binary).
    pub fn load(args: &Args) -> Result<Project, String> {
        let (manifest, meta) = read_metadata(args)?;
        let mut project = from_metadata(&meta, &manifest, args.all("p"))?;
        if let Some(dir) = args.get("target-dir") {
            project.target_dir = absolute(Path::new(dir))?;
        }
        project.out_dir = match args.get("out-dir") {
            Some(dir) => absolute(Path::new(dir))?,
            None => project.target_dir.join("sirocco"),
        };
        Ok(project)
    }

    /// The image `sirocco build` writes for `app`.
    pub fn image(&self, app: &App) -> PathBuf {
        self.out_dir.join(format!("{}.xen", app.name))
    }

    /// The app's xl config: `NAME.cfg` beside its `Cargo.toml` (what `sirocco new` writes), else the Sirocco
    /// checkout's `xl-configs/NAME.cfg` (the apps of Sirocco's own workspace).
    pub fn xl_config(&self, app: &App) -> Result<PathBuf, String> {
        let own = app.dir.join(format!("{}.cfg", app.name));
        let shipped = self.sirocco_root.join("xl-configs").join(format!("{}.cfg", app.name));
        [own.clone(), shipped.clone()].into_iter().find(|p| p.is_file()).ok_or_else(|| {
            format!("no xl config for {}: neither {} nor {}", app.name, own.display(), shipped.display())
        })
    }

    /// The only application selected, for the commands that boot one.
    pub fn single(&self) -> Result<&App, String> {
        match self.apps.as_slice() {
            [app] => Ok(app),
            apps => {
                Err(format!("this command takes one application, and {} are selected: name one with -p", apps.len()))
            }
        }
    }
}

/// The `cargo` that runs `sirocco` commands (the one that ran us under `cargo run`, else the one on `PATH`).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// The manifest named by `--manifest-path` (default: the one around the current directory) and its `cargo metadata`.
fn read_metadata(args: &Args) -> Result<(PathBuf, Value), String> {
    let manifest = match args.get("manifest-path") {
        Some(m) => PathBuf::from(m),
        None => locate_manifest()?,
    };
    let manifest = manifest.canonicalize().map_err(|e| format!("{}: {e}", manifest.display()))?;
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata on {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let meta = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata's output: {e}"))?;
    Ok((manifest, meta))
}

fn locate_manifest() -> Result<PathBuf, String> {
    let out = cargo()
        .args(["locate-project", "--message-format", "plain"])
        .output()
        .map_err(|e| format!("running cargo locate-project: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "no Cargo.toml here or above ({}); run inside an application crate or give --manifest-path",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v[key].as_str().ok_or_else(|| format!("cargo metadata: no string {key:?}"))
}

/// A package's binary targets.
fn binaries(package: &Value) -> Vec<String> {
    let targets = package["targets"].as_array().map_or(&[][..], Vec::as_slice);
    targets
        .iter()
        .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect()
}

fn depends_on_sirocco(package: &Value) -> bool {
    package["dependencies"].as_array().is_some_and(|d| d.iter().any(|d| d["name"] == "sirocco"))
}

/// The project described by `cargo metadata` output `meta` for `manifest`, building `selected` (package names; none:
/// the manifest's own package).
pub fn from_metadata(meta: &Value, manifest: &Path, selected: &[String]) -> Result<Project, String> {
    let packages = meta["packages"].as_array().ok_or("cargo metadata: no packages")?;
    let members: Vec<&str> =
        meta["workspace_members"].as_array().map_or(&[][..], Vec::as_slice).iter().filter_map(Value::as_str).collect();
    let sirocco = packages
        .iter()
        .find(|p| p["name"] == "sirocco")
        .ok_or_else(|| format!("{} does not depend on the `sirocco` crate", manifest.display()))?;
    let kernel_manifest = PathBuf::from(str_of(sirocco, "manifest_path")?);
    let sirocco_root = kernel_manifest
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("the sirocco crate's manifest {} has no checkout around it", kernel_manifest.display()))?
        .to_path_buf();
    if !sirocco_root.join("x86_64-xen.json").is_file() {
        return Err(format!(
            "the sirocco crate at {} is not in a Sirocco checkout (no x86_64-xen.json at {})",
            kernel_manifest.display(),
            sirocco_root.display()
        ));
    }
    let member_pkgs: Vec<&Value> =
        packages.iter().filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id))).collect();
    let app_of = |p: &Value| -> Result<Vec<App>, String> {
        let name = str_of(p, "name")?;
        let dir = Path::new(str_of(p, "manifest_path")?).parent().unwrap_or(Path::new(".")).to_path_buf();
        let bins = binaries(p);
        if bins.is_empty() || !depends_on_sirocco(p) {
            return Err(format!("package {name} is not a Sirocco application (a binary depending on `sirocco`)"));
        }
        Ok(bins.into_iter().map(|bin| App { name: bin, package: name.into(), dir: dir.clone() }).collect())
    };
    let mut apps = Vec::new();
    if selected.is_empty() {
        let own = member_pkgs.iter().find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest));
        match own {
            Some(p) => apps.extend(app_of(p)?),
            None => {
                let names: Vec<&str> = member_pkgs
                    .iter()
                    .filter(|p| !binaries(p).is_empty() && depends_on_sirocco(p))
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                return Err(format!(
                    "{} is a workspace: name the application(s) with -p ({})",
                    manifest.display(),
                    names.join(", ")
                ));
            }
        }
    } else {
        for want in selected {
            let p = member_pkgs
                .iter()
                .find(|p| p["name"] == want.as_str())
                .ok_or_else(|| format!("no package {want} in the workspace of {}", manifest.display()))?;
            apps.extend(app_of(p)?);
        }
    }
    let target_dir = PathBuf::from(str_of(meta, "target_directory")?);
    Ok(Project {
        manifest: manifest.to_path_buf(),
        sirocco_root,
        apps,
        out_dir: target_dir.join("sirocco"),
        target_dir,
    })
}

/// `sirocco where`: the checkout and toolchain a build here would use.
pub fn show(args: Args) -> Result<(), String> {
    let (manifest, meta) = read_metadata(&args)?;
    // `where` works in a workspace too, so no application is selected: any member will do for the checkout.
    let project = from_metadata(&meta, &manifest, &[]).or_else(|_| {
        let member = meta["packages"]
            .as_array()
            .and_then(|p| p.iter().find(|p| depends_on_sirocco(p) && !binaries(p).is_empty()))
            .and_then(|p| p["name"].as_str())
            .ok_or("no Sirocco application in this workspace")?;
        from_metadata(&meta, &manifest, &[member.to_string()])
    })?;
    let tc = crate::toolchain::pick(&project.sirocco_root.join("tools/setup-host.sh"))?;
    println!("sirocco checkout: {}", project.sirocco_root.display());
    println!("toolchain: {} ({}), {}", tc.version(), tc.rustc.display(), tc.why);
    println!("images go to: {}", project.out_dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `cargo metadata` output for a checkout at `root` and the packages given as (name, dir, bins, deps on sirocco).
    fn meta(root: &Path, pkgs: &[(&str, &str, &[&str], bool)]) -> Value {
        let mut packages = vec![json!({
            "name": "sirocco", "id": "sirocco-id",
            "manifest_path": root.join("kernel/Cargo.toml"), "targets": [{"kind": ["lib"], "name": "sirocco"}],
            "dependencies": []
        })];
        let mut members = vec![];
        for (name, dir, bins, uses) in pkgs {
            let targets: Vec<Value> = bins.iter().map(|b| json!({"kind": ["bin"], "name": b})).collect();
            let deps = if *uses { json!([{"name": "sirocco"}]) } else { json!([]) };
            packages.push(json!({
                "name": name, "id": format!("{name}-id"), "manifest_path": format!("{dir}/Cargo.toml"),
                "targets": targets, "dependencies": deps
            }));
            members.push(json!(format!("{name}-id")));
        }
        json!({"packages": packages, "workspace_members": members, "target_directory": "/w/target"})
    }

    fn checkout() -> PathBuf {
        let root = std::env::temp_dir().join(format!("sirocco-cli-meta-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("x86_64-xen.json"), "{}").unwrap();
        root
    }

    #[test]
    fn a_standalone_crate_builds_its_own_binary_against_the_checkout_it_depends_on() {
        let root = checkout();
        let m = meta(&root, &[("myapp", "/w/myapp", &["myapp"], true)]);
        let p = from_metadata(&m, Path::new("/w/myapp/Cargo.toml"), &[]).unwrap();
        assert_eq!(p.sirocco_root, root);
        assert_eq!(p.apps, [App { name: "myapp".into(), package: "myapp".into(), dir: "/w/myapp".into() }]);
        assert_eq!(p.image(&p.apps[0]), Path::new("/w/target/sirocco/myapp.xen"));
    }

    #[test]
    fn in_a_workspace_the_apps_are_named_and_a_non_app_is_refused() {
        let root = checkout();
        let m = meta(&root, &[("httpd", "/r/apps/httpd", &["httpd"], true), ("imgcheck", "/r/tools/i", &["i"], false)]);
        let e = from_metadata(&m, Path::new("/r/Cargo.toml"), &[]).unwrap_err();
        assert!(e.contains("name the application(s) with -p (httpd)"), "{e}");
        let p = from_metadata(&m, Path::new("/r/Cargo.toml"), &["httpd".into()]).unwrap();
        assert_eq!(p.apps[0].name, "httpd");
        let e = from_metadata(&m, Path::new("/r/Cargo.toml"), &["imgcheck".into()]).unwrap_err();
        assert!(e.contains("imgcheck is not a Sirocco application"), "{e}");
        let e = from_metadata(&m, Path::new("/r/Cargo.toml"), &["nope".into()]).unwrap_err();
        assert!(e.contains("no package nope"), "{e}");
    }

    #[test]
    fn a_crate_without_sirocco_or_outside_a_checkout_is_an_error_that_says_so() {
        let m = json!({"packages": [], "workspace_members": [], "target_directory": "/t"});
        let e = from_metadata(&m, Path::new("/w/x/Cargo.toml"), &[]).unwrap_err();
        assert!(e.contains("does not depend on the `sirocco` crate"), "{e}");
        let m = meta(Path::new("/nonexistent/checkout"), &[("a", "/w/a", &["a"], true)]);
        let e = from_metadata(&m, Path::new("/w/a/Cargo.toml"), &[]).unwrap_err();
        assert!(e.contains("not in a Sirocco checkout"), "{e}");
    }
}
