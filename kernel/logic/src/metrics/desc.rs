//! [`Desc`]: what a metric is called, what it means, its unit and its place in the JSON document; checked when it
//! is built, so that no encoder ever has to write a name Prometheus would refuse.

/// The unit of the integers a metric holds. Prometheus gets base units (times in seconds, exactly: no float is
/// involved); the JSON document gets the integers as they are, under keys that say the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// As it is: a count, bytes.
    Plain,
    /// Nanoseconds (seconds with 9 decimals in Prometheus).
    Nanoseconds,
    /// Microseconds (seconds with 6 decimals in Prometheus).
    Microseconds,
    /// Milliseconds (seconds with 3 decimals in Prometheus).
    Milliseconds,
}

impl Unit {
    /// Decimal places between the value held and its base unit.
    pub const fn decimals(self) -> u32 {
        match self {
            Unit::Plain => 0,
            Unit::Nanoseconds => 9,
            Unit::Microseconds => 6,
            Unit::Milliseconds => 3,
        }
    }

    /// The short name the JSON document gives a histogram's unit (`"unit":"us"`); none for [`Unit::Plain`].
    pub const fn short(self) -> Option<&'static str> {
        match self {
            Unit::Plain => None,
            Unit::Nanoseconds => Some("ns"),
            Unit::Microseconds => Some("us"),
            Unit::Milliseconds => Some("ms"),
        }
    }
}

/// Where a metric's series go in the JSON document ([`super::Snapshot::json`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Json {
    /// Under `"app"`, keyed by the metric's name: `"app":{"http_requests_total":12}` (the default: an app's own
    /// metrics).
    App,
    /// At a dotted path of object keys, `"heap.used"`. A key written `vifs[vif]` is an array with one object per
    /// value of the label `vif`, that object starting with `"vif":"<value>"`: `"vifs[vif].rx_packets"` puts
    /// `rx_packets{vif="0"}` at `"vifs":[{"vif":"0","rx_packets":N}]`. Labels the path does not use nest one
    /// object level each, keyed by their values: `tcp{vif="0",state="established"}` at `"vifs[vif].tcp"` is
    /// `"tcp":{"established":N}`. An [`super::Kind::Info`] family's labels are string fields of the object at
    /// its path.
    At(&'static str),
    /// Not in the JSON document (Prometheus only).
    Omit,
}

/// A metric's description: name, help, unit, where its JSON goes, and whether Prometheus sees it. Built with
/// `const fn`s that check what they are given, so a bad name in a `static` does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desc {
    name: &'static str,
    help: &'static str,
    unit: Unit,
    json: Json,
    prometheus: bool,
}

impl Desc {
    /// A metric called `name` (Prometheus's rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`; by convention `_total` ends a
    /// counter's name, and a unit another's: `_bytes`, `_seconds`), meaning `help` (one line). Panics (in a
    /// `const`, fails to compile) when the name breaks the rule or the help has a line break.
    pub const fn new(name: &'static str, help: &'static str) -> Desc {
        assert!(valid_metric_name(name), "a metric name is [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus's rule)");
        assert!(!has_byte(help, b'\n'), "a metric's help text is one line");
        Desc { name, help, unit: Unit::Plain, json: Json::App, prometheus: true }
    }

    /// The same, holding values in `unit`.
    pub const fn unit(self, unit: Unit) -> Desc {
        Desc { unit, ..self }
    }

    /// The same, at `path` in the JSON document (see [`Json::At`]). Panics (in a `const`, fails to compile) on a
    /// path that is not dot-separated keys of `[a-zA-Z0-9_]`, each with an optional `[label]`.
    pub const fn json(self, path: &'static str) -> Desc {
        assert!(valid_json_path(path), "a JSON path is keys of [a-zA-Z0-9_] joined by '.', each maybe `key[label]`");
        Desc { json: Json::At(path), ..self }
    }

    /// The same, left out of the JSON document.
    pub const fn no_json(self) -> Desc {
        Desc { json: Json::Omit, ..self }
    }

    /// The same, left out of the Prometheus text (a JSON-only figure, such as a second view of one already
    /// exposed there in another unit).
    pub const fn json_only(self) -> Desc {
        Desc { prometheus: false, ..self }
    }

    /// The metric's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Its help text.
    pub const fn help(&self) -> &'static str {
        self.help
    }

    /// The unit of its values.
    pub const fn unit_of(&self) -> Unit {
        self.unit
    }

    /// Its place in the JSON document.
    pub const fn json_placement(&self) -> Json {
        self.json
    }

    /// Whether the Prometheus text has it.
    pub const fn in_prometheus(&self) -> bool {
        self.prometheus
    }
}

const fn has_byte(s: &str, byte: u8) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == byte {
            return true;
        }
        i += 1;
    }
    false
}

/// Prometheus's metric name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) const fn valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_alphabetic() || c == b'_' || c == b':' || (i > 0 && c.is_ascii_digit())) {
            return false;
        }
        i += 1;
    }
    true
}

/// Prometheus's label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`, and not `__`-prefixed (reserved).
pub(crate) const fn valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || (b.len() >= 2 && b[0] == b'_' && b[1] == b'_') {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_alphabetic() || c == b'_' || (i > 0 && c.is_ascii_digit())) {
            return false;
        }
        i += 1;
    }
    true
}

/// Dot-separated keys of `[a-zA-Z0-9_]+`, each with an optional `[label]` (a valid label name).
const fn valid_json_path(path: &str) -> bool {
    let b = path.as_bytes();
    let mut i = 0;
    loop {
        // A key.
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i == start {
            return false;
        }
        // Maybe `[label]`.
        if i < b.len() && b[i] == b'[' {
            i += 1;
            let label = i;
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
            if i == b.len() || !valid_label_name(slice(path, label, i)) {
                return false;
            }
            i += 1;
        }
        if i == b.len() {
            return true;
        }
        if b[i] != b'.' {
            return false;
        }
        i += 1;
    }
}

/// `s[from..to]` in a `const fn` (ASCII boundaries only, which the callers guarantee).
const fn slice(s: &str, from: usize, to: usize) -> &str {
    let (head, _) = s.as_bytes().split_at(to);
    let (_, part) = head.split_at(from);
    match core::str::from_utf8(part) {
        Ok(p) => p,
        Err(_) => "",
    }
}

/// A key of a JSON path: `key`, and the label whose values make it an array (`key[label]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment<'a> {
    pub key: &'a str,
    pub group: Option<&'a str>,
}

/// The segments of a path [`Desc::json`] accepted.
pub(crate) fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.').map(|s| match s.split_once('[') {
        Some((key, label)) => Segment { key, group: Some(label.trim_end_matches(']')) },
        None => Segment { key: s, group: None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn names_follow_prometheus_rules() {
        for ok in ["a", "http_requests_total", "_x", "ns:sub_1", "A9"] {
            assert!(valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a.b"] {
            assert!(!valid_metric_name(bad), "{bad}");
        }
        for ok in ["vif", "le", "_a", "state2"] {
            assert!(valid_label_name(ok), "{ok}");
        }
        for bad in ["", "__name__", "__x", "a:b", "1a", "a-b"] {
            assert!(!valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn json_paths_are_checked_and_split() {
        for ok in ["uptime_ms", "heap.used", "vifs[vif].rx_packets", "vifs[vif]", "a.b[c].d[e].f"] {
            assert!(valid_json_path(ok), "{ok}");
        }
        for bad in ["", ".", "a.", ".a", "a..b", "a[", "a[]", "a[b", "a[b]c", "a-b", "a[__x]", "a b"] {
            assert!(!valid_json_path(bad), "{bad}");
        }
        let segs: Vec<_> = segments("vifs[vif].tcp.state").collect();
        assert_eq!(
            segs,
            [
                Segment { key: "vifs", group: Some("vif") },
                Segment { key: "tcp", group: None },
                Segment { key: "state", group: None }
            ]
        );
    }

    #[test]
    fn a_desc_is_built_in_a_const() {
        const D: Desc = Desc::new("x_seconds", "help").unit(Unit::Microseconds).json("a.b").json_only();
        assert_eq!(D.name(), "x_seconds");
        assert_eq!(D.unit_of().decimals(), 6);
        assert_eq!(D.json_placement(), Json::At("a.b"));
        assert!(!D.in_prometheus());
    }

    #[test]
    #[should_panic(expected = "metric name")]
    fn a_bad_name_is_refused() {
        let name = alloc::string::String::from("bad name");
        let _ = Desc::new(name.leak(), "help");
    }

    #[test]
    #[should_panic(expected = "JSON path")]
    fn a_bad_path_is_refused() {
        let _ = Desc::new("a", "help").json("a..b");
    }
}
