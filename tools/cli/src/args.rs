//! Command-line options. Written here rather than with `clap`: five commands with a handful of `--key value`
//! options each, and every fresh CI run builds this crate, where clap's derive stack would cost more build time
//! than this file costs to read.

use std::collections::BTreeMap;

/// A command's parsed arguments: `--key value` (or `--key=value`, `-p value`) options, which may repeat, flags, and
/// the positional rest.
#[derive(Debug, Default, PartialEq)]
pub struct Args {
    options: BTreeMap<String, Vec<String>>,
    flags: Vec<String>,
    /// Positional arguments, in order.
    pub positional: Vec<String>,
}

impl Args {
    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value given for `key`, in order.
    pub fn all(&self, key: &str) -> &[String] {
        self.options.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `--flag` was given.
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Parses `argv` for a command taking the options `valued` (each followed by a value) and the flags `flags`.
/// Anything after `--` is positional.
pub fn parse(argv: &[String], valued: &[&str], flags: &[&str]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            args.positional.extend(it.by_ref().cloned());
            break;
        }
        let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-').filter(|n| n.len() == 1)) else {
            args.positional.push(arg.clone());
            continue;
        };
        let (key, inline) = match name.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (name, None),
        };
        if flags.contains(&key) && inline.is_none() {
            args.flags.push(key.to_string());
        } else if valued.contains(&key) {
            let value = match inline {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| format!("{arg} needs a value"))?,
            };
            args.options.entry(key.to_string()).or_default().push(value);
        } else {
            let mut known: Vec<String> = valued.iter().map(|k| format!("--{k} VALUE")).collect();
            known.extend(flags.iter().map(|f| format!("--{f}")));
            return Err(format!("unknown option {arg} (this command takes: {})", known.join(", ")));
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_flags_and_positionals_are_told_apart() {
        let a = parse(&argv("x -p a --out-dir=o -p b --lab y"), &["p", "out-dir"], &["lab"]).unwrap();
        assert_eq!(a.all("p"), ["a", "b"]);
        assert_eq!(a.get("p"), Some("b"));
        assert_eq!(a.get("out-dir"), Some("o"));
        assert!(a.flag("lab"));
        assert!(!a.flag("xl"));
        assert_eq!(a.positional, ["x", "y"]);
    }

    #[test]
    fn an_unknown_option_or_a_missing_value_is_an_error_that_says_which() {
        let e = parse(&argv("--nope"), &["p"], &["lab"]).unwrap_err();
        assert!(e.contains("--nope") && e.contains("--p VALUE") && e.contains("--lab"), "{e}");
        let e = parse(&argv("-p"), &["p"], &[]).unwrap_err();
        assert!(e.contains("-p needs a value"), "{e}");
    }

    #[test]
    fn after_a_double_dash_everything_is_positional() {
        let a = parse(&argv("a -- --lab -p"), &["p"], &["lab"]).unwrap();
        assert_eq!(a.positional, ["a", "--lab", "-p"]);
        assert!(!a.flag("lab"));
    }
}
