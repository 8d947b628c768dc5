//! `sirocco libvirt`: the application's xl config as a libvirt domain for the libxl driver (`virsh -c xen:///system
//! create APP.xml`), for hosts driven through libvirt (and OpenStack Nova on it). Generated from the xl config rather
//! than kept beside it, so the two never disagree. The keys Sirocco's configs use are converted; any other key is an
//! error naming it (libvirt's own `virsh domxml-from-native xen-xl` converts the rest).

use crate::args::Args;
use crate::project::Project;
use std::fmt::Write;
use std::iter::Peekable;
use std::path::Path;
use std::str::Chars;

/// An xl config value: a string or number, or a list of strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `"..."`, `'...'` or a bare number.
    One(String),
    /// `[ '...', ... ]`.
    List(Vec<String>),
}

/// Parses the `key = value` lines of an xl config (xl.cfg(5): strings in either quote, numbers, lists of strings
/// that may span lines, `#` comments).
pub fn parse_xl(text: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    loop {
        // Skip blank space and comments up to the next key.
        while let Some(&c) = chars.peek() {
            if c == '#' {
                while chars.next_if(|&c| c != '\n').is_some() {}
            } else if c.is_whitespace() || c == ';' {
                line += usize::from(c == '\n');
                chars.next();
            } else {
                break;
            }
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || *c == '_')).collect();
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        if key.is_empty() || chars.next() != Some('=') {
            return Err(format!("line {line}: expected `key = value`"));
        }
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let value = if chars.next_if_eq(&'[').is_some() {
            let mut items = Vec::new();
            loop {
                while let Some(c) = chars.next_if(|c| c.is_whitespace() || *c == ',') {
                    line += usize::from(c == '\n');
                }
                if chars.next_if_eq(&']').is_some() {
                    break;
                }
                if chars.peek().is_none() {
                    return Err(format!("line {line}: `{key}` list has no `]`"));
                }
                items.push(scalar(&mut chars, line, &key)?);
            }
            Value::List(items)
        } else {
            Value::One(scalar(&mut chars, line, &key)?)
        };
        out.push((key, value));
    }
}

/// A string in either quote, or a bare number, at `line` of the value of `key`.
fn scalar(chars: &mut Peekable<Chars>, line: usize, key: &str) -> Result<String, String> {
    match chars.peek() {
        Some(&q @ ('"' | '\'')) => {
            chars.next();
            let s: String = std::iter::from_fn(|| chars.next_if(|&c| c != q && c != '\n')).collect();
            if chars.next() != Some(q) {
                return Err(format!("line {line}: unterminated string"));
            }
            Ok(s)
        }
        _ => {
            let s: String = std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '.')).collect();
            if s.is_empty() {
                Err(format!("line {line}: `{key} =` has no value"))
            } else {
                Ok(s)
            }
        }
    }
}

/// Text for XML character data and attribute values.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
}

/// The `k=v` fields of a vif or disk spec.
fn fields(spec: &str) -> Vec<(&str, &str)> {
    spec.split(',').filter_map(|f| f.trim().split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect()
}

/// The libvirt domain for the xl config `cfg`, booting the image at `kernel`.
pub fn domain_xml(cfg: &[(String, Value)], kernel: &Path) -> Result<String, String> {
    let one = |key: &str| -> Result<Option<&str>, String> {
        match cfg.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v) {
            None => Ok(None),
            Some(Value::One(s)) => Ok(Some(s.as_str())),
            Some(Value::List(_)) => Err(format!("`{key}` is a list; libvirt takes one value")),
        }
    };
    let name = one("name")?.ok_or("the xl config has no `name`")?;
    let machine = match one("type")?.unwrap_or("pv") {
        "pv" => "<type arch='x86_64' machine='xenpv'>linux</type>",
        "pvh" => "<type arch='x86_64' machine='xenpvh'>xenpvh</type>",
        other => return Err(format!("type \"{other}\": an image booted as a kernel is \"pv\" or \"pvh\"")),
    };
    let memory: u64 = one("memory")?.unwrap_or("32").parse().map_err(|e| format!("memory: {e}"))?;
    let maxmem: u64 = match one("maxmem")? {
        Some(m) => m.parse().map_err(|e| format!("maxmem: {e}"))?,
        None => memory,
    };
    let mut x = String::new();
    let w = &mut x;
    let _ = writeln!(w, "<!-- {name}: a Sirocco image for libvirt's libxl driver (made by `sirocco libvirt`). -->");
    let _ = writeln!(w, "<domain type='xen'>\n  <name>{}</name>", esc(name));
    let _ = writeln!(w, "  <memory unit='MiB'>{maxmem}</memory>\n  <currentMemory unit='MiB'>{memory}</currentMemory>");
    let _ = writeln!(w, "  <vcpu>{}</vcpu>", esc(one("vcpus")?.unwrap_or("1")));
    let _ = writeln!(w, "  <os>\n    {machine}\n    <kernel>{}</kernel>", esc(&kernel.to_string_lossy()));
    if let Some(extra) = one("extra")? {
        let _ = writeln!(w, "    <cmdline>{}</cmdline>", esc(extra));
    }
    let _ = writeln!(w, "  </os>");
    for event in ["on_poweroff", "on_reboot", "on_crash"] {
        if let Some(action) = one(event)? {
            let _ = writeln!(w, "  <{event}>{}</{event}>", esc(action));
        }
    }
    let _ = writeln!(w, "  <devices>");
    for (key, value) in cfg {
        let specs = match value {
            Value::List(l) => l.as_slice(),
            Value::One(_) => &[],
        };
        match key.as_str() {
            "name" | "type" | "kernel" | "memory" | "maxmem" | "vcpus" | "extra" | "on_poweroff" | "on_reboot"
            | "on_crash" => {}
            "vif" => {
                for spec in specs {
                    let f = fields(spec);
                    let bridge = f.iter().find(|(k, _)| *k == "bridge").map_or("xenbr0", |(_, v)| v);
                    let _ = writeln!(w, "    <interface type='bridge'>\n      <source bridge='{}'/>", esc(bridge));
                    if let Some((_, mac)) = f.iter().find(|(k, _)| *k == "mac") {
                        let _ = writeln!(w, "      <mac address='{}'/>", esc(mac));
                    }
                    let _ = writeln!(w, "    </interface>");
                }
            }
            "disk" => {
                for spec in specs {
                    let f = fields(spec);
                    let get = |k: &str| f.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
                    let target = get("target").ok_or_else(|| format!("disk '{spec}' has no target="))?;
                    let vdev = get("vdev").ok_or_else(|| format!("disk '{spec}' has no vdev="))?;
                    // `phy`: Linux's blkback, as xl picks for a raw file (libvirt's `qemu` would be qdisk).
                    let _ = writeln!(w, "    <disk type='file' device='disk'>\n      <driver name='phy' type='raw'/>");
                    let _ = writeln!(
                        w,
                        "      <source file='{}'/>\n      <target dev='{}' bus='xen'/>",
                        esc(target),
                        esc(vdev)
                    );
                    if get("access").is_some_and(|a| a.starts_with('r') && !a.contains('w')) {
                        let _ = writeln!(w, "      <readonly/>");
                    }
                    let _ = writeln!(w, "    </disk>");
                }
            }
            other => return Err(format!("xl key `{other}` is not converted (`virsh domxml-from-native xen-xl` is)")),
        }
    }
    let _ = writeln!(w, "    <console type='pty'>\n      <target type='xen' port='0'/>\n    </console>");
    let _ = writeln!(w, "  </devices>\n</domain>");
    Ok(x)
}

/// `sirocco libvirt [-p APP] [--kernel PATH]`: prints the domain XML (the image path: the built image, or PATH).
pub fn run(args: Args) -> Result<(), String> {
    let project = Project::load(&args)?;
    let app = project.single()?;
    let config = project.xl_config(app)?;
    let text = std::fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
    let cfg = parse_xl(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    let kernel = match args.get("kernel") {
        Some(k) => k.into(),
        None => project.image(app),
    };
    print!("{}", domain_xml(&cfg, &kernel).map_err(|e| format!("{}: {e}", config.display()))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTPD: &str = "# a comment\nname = \"httpd\"\ntype = \"pv\"\nkernel = \"build/httpd.xen\"\nmemory = 32\n\
        vcpus = 1\non_poweroff = \"destroy\"\non_reboot = 'restart'\nvif = [ 'bridge=xenbr0' ]\n\
        extra = \"log=info ip=10.0.0.2/24 gw=10.0.0.1\"\n";

    #[test]
    fn an_xl_config_parses_with_strings_numbers_lists_and_comments() {
        let cfg = parse_xl("a = 'x' # c\nb = 32\nc = [ 'p=1,q=2',\n  \"r\" ]\n").unwrap();
        assert_eq!(cfg[0], ("a".into(), Value::One("x".into())));
        assert_eq!(cfg[1], ("b".into(), Value::One("32".into())));
        assert_eq!(cfg[2], ("c".into(), Value::List(vec!["p=1,q=2".into(), "r".into()])));
        assert!(parse_xl("a = 'x").unwrap_err().contains("unterminated"));
        assert!(parse_xl("a 'x'").unwrap_err().contains("line 1"));
        assert!(parse_xl("a = [ 'x'").unwrap_err().contains("no `]`"));
    }

    #[test]
    fn httpds_config_becomes_a_pv_domain_on_the_bridge_with_its_command_line() {
        let xml = domain_xml(&parse_xl(HTTPD).unwrap(), Path::new("/srv/httpd.xen")).unwrap();
        for want in [
            "<domain type='xen'>",
            "<name>httpd</name>",
            "<memory unit='MiB'>32</memory>",
            "<type arch='x86_64' machine='xenpv'>linux</type>",
            "<kernel>/srv/httpd.xen</kernel>",
            "<cmdline>log=info ip=10.0.0.2/24 gw=10.0.0.1</cmdline>",
            "<on_reboot>restart</on_reboot>",
            "<source bridge='xenbr0'/>",
        ] {
            assert!(xml.contains(want), "missing {want}:\n{xml}");
        }
    }

    #[test]
    fn pvh_disks_and_escaping_are_converted_and_unknown_keys_refused() {
        let cfg = parse_xl(
            "name = 'kv'\ntype = 'pvh'\nextra = 'a<b & c'\ndisk = [ 'format=raw, vdev=xvda, access=rw, target=/v/kv.img' ]\n",
        )
        .unwrap();
        let xml = domain_xml(&cfg, Path::new("/k")).unwrap();
        assert!(xml.contains("machine='xenpvh'>xenpvh</type>"), "{xml}");
        assert!(xml.contains("<cmdline>a&lt;b &amp; c</cmdline>"), "{xml}");
        assert!(xml.contains("<source file='/v/kv.img'/>") && xml.contains("<target dev='xvda' bus='xen'/>"), "{xml}");
        assert!(!xml.contains("<readonly/>"), "{xml}");
        let e = domain_xml(&parse_xl("name = 'a'\npci = [ '00:1.0' ]\n").unwrap(), Path::new("/k")).unwrap_err();
        assert!(e.contains("`pci` is not converted"), "{e}");
        let e = domain_xml(&parse_xl("name = 'a'\ntype = 'hvm'\n").unwrap(), Path::new("/k")).unwrap_err();
        assert!(e.contains("\"pv\" or \"pvh\""), "{e}");
    }
}
