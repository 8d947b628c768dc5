//! The JSON document: each family's series placed as its [`super::Json`] says, values as integers in the family's
//! unit, an info family's labels as strings, a histogram as `{"unit":"us","count":N,"sum":S,"buckets":[[bound,
//! cumulative],...]}` (`unit` only for a time; the `+Inf` bucket is `count`). Members keep the order in which
//! they were first placed. Series that cannot be placed (a path through a value, a value where another is) are
//! left out and said, with the snapshot's own problems, in a last member `"problems":["..."]`.

use super::desc::{segments, Segment};
use super::snapshot::{Family, HistogramValue, Series, Snapshot, Value};
use super::{Json, Kind, Unit};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

type Object<'s> = Vec<(&'s str, Node<'s>)>;

enum Node<'s> {
    Number(i64),
    Text(&'s str),
    Histogram(&'s HistogramValue, Unit),
    Object(Object<'s>),
    /// One object per value of `label`, each starting with `"label":"value"`.
    Array {
        label: &'s str,
        items: Vec<(&'s str, Object<'s>)>,
    },
}

/// The document of `snapshot`.
pub(crate) fn encode(snapshot: &Snapshot) -> String {
    let mut root = Object::new();
    let mut problems: Vec<String> = snapshot.problems().to_vec();
    for family in snapshot.families() {
        for series in family.series() {
            if let Err(why) = place(&mut root, family, series) {
                problems.push(format!(
                    "metric {} {:?}: {why}; left out of the JSON",
                    family.desc().name(),
                    series.labels
                ));
            }
        }
    }
    let mut out = String::new();
    write_object(&mut out, &root, None);
    if !problems.is_empty() {
        out.pop(); // the closing brace
        if !root.is_empty() {
            out.push(',');
        }
        out.push_str("\"problems\":[");
        for (i, p) in problems.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, p);
        }
        out.push_str("]}");
    }
    out
}

/// Puts one series where its family's path says.
fn place<'s>(root: &mut Object<'s>, family: &'s Family, series: &'s Series) -> Result<(), String> {
    let desc = family.desc();
    let path: Vec<Segment<'s>> = match desc.json_placement() {
        Json::Omit => return Ok(()),
        Json::App => alloc::vec![Segment { key: "app", group: None }, Segment { key: desc.name(), group: None }],
        Json::At(p) => segments(p).collect(),
    };
    let value = match &series.value {
        Value::Number(n) => Node::Number(*n),
        Value::Histogram(h) => Node::Histogram(h, desc.unit_of()),
        Value::Info => Node::Text(""), // not used: an info series's labels are its content
    };
    // Labels the path has not used yet: they nest, or (info) they are the fields.
    let mut rest: Vec<&'s (&'static str, String)> = series.labels.iter().collect();
    let (last, parents) = path.split_last().ok_or("an empty JSON path")?;
    let info = family.kind() == Kind::Info;
    let groups = path.iter().filter(|s| s.group.is_some()).count();
    if !info && last.group.is_some() && series.labels.len() <= groups {
        // Checked before anything is made, so a refused series leaves no empty element behind.
        return Err("the path ends in an array element, with no key for the value".into());
    }
    let mut obj = root;
    for seg in parents {
        obj = enter(obj, *seg, &mut rest)?;
    }
    if last.group.is_none() && !info && rest.is_empty() {
        return put(obj, last.key, value);
    }
    obj = enter(obj, *last, &mut rest)?;
    if info {
        for label in rest {
            put(obj, label.0, Node::Text(label.1.as_str()))?;
        }
        return Ok(());
    }
    let (&leaf, nesting) = rest.split_last().ok_or("the path ends in an array element, with no key for the value")?;
    for &label in nesting {
        obj = child_object(obj, label.1.as_str())?;
    }
    put(obj, leaf.1.as_str(), value)
}

/// The object `seg` names inside `obj` (made if missing): a member, or an array element chosen by a label (taken
/// out of `rest`).
fn enter<'s, 'o>(
    obj: &'o mut Object<'s>,
    seg: Segment<'s>,
    rest: &mut Vec<&'s (&'static str, String)>,
) -> Result<&'o mut Object<'s>, String> {
    let Some(label) = seg.group else {
        return child_object(obj, seg.key);
    };
    let i =
        rest.iter().position(|(name, _)| *name == label).ok_or_else(|| format!("no label {label} for {}", seg.key))?;
    let value = rest.remove(i).1.as_str();
    let at = match obj.iter().position(|(k, _)| *k == seg.key) {
        Some(at) => at,
        None => {
            obj.push((seg.key, Node::Array { label, items: Vec::new() }));
            obj.len() - 1
        }
    };
    match &mut obj[at].1 {
        Node::Array { label: l, items } if *l == label => {
            let at = match items.iter().position(|(v, _)| *v == value) {
                Some(at) => at,
                None => {
                    items.push((value, Object::new()));
                    items.len() - 1
                }
            };
            Ok(&mut items[at].1)
        }
        _ => Err(format!("{:?} is already something else than an array by {label}", seg.key)),
    }
}

/// The object member `key` of `obj`, made if missing.
fn child_object<'s, 'o>(obj: &'o mut Object<'s>, key: &'s str) -> Result<&'o mut Object<'s>, String> {
    let at = match obj.iter().position(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            obj.push((key, Node::Object(Object::new())));
            obj.len() - 1
        }
    };
    match &mut obj[at].1 {
        Node::Object(o) => Ok(o),
        _ => Err(format!("{key:?} holds a value already, not an object")),
    }
}

/// Adds the member `key`, which must not be there yet.
fn put<'s>(obj: &mut Object<'s>, key: &'s str, node: Node<'s>) -> Result<(), String> {
    if obj.iter().any(|(k, _)| *k == key) {
        return Err(format!("{key:?} is there already"));
    }
    obj.push((key, node));
    Ok(())
}

/// `{...}`, with a first member `"label":"value"` for an array element.
fn write_object(out: &mut String, obj: &Object<'_>, first: Option<(&str, &str)>) {
    out.push('{');
    if let Some((label, value)) = first {
        string(out, label);
        out.push(':');
        string(out, value);
    }
    for (i, (key, node)) in obj.iter().enumerate() {
        if i > 0 || first.is_some() {
            out.push(',');
        }
        string(out, key);
        out.push(':');
        write_node(out, node);
    }
    out.push('}');
}

fn write_node(out: &mut String, node: &Node<'_>) {
    match node {
        Node::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Node::Text(s) => string(out, s),
        Node::Histogram(h, unit) => {
            out.push('{');
            if let Some(u) = unit.short() {
                let _ = write!(out, "\"unit\":\"{u}\",");
            }
            let _ = write!(out, "\"count\":{},\"sum\":{},\"buckets\":[", h.count, h.sum);
            for (i, (bound, n)) in h.buckets.iter().enumerate() {
                let _ = write!(out, "{}[{bound},{n}]", if i > 0 { "," } else { "" });
            }
            out.push_str("]}");
        }
        Node::Object(o) => write_object(out, o, None),
        Node::Array { label, items } => {
            out.push('[');
            for (i, (value, fields)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_object(out, fields, Some((label, value)));
            }
            out.push(']');
        }
    }
}

/// A JSON string: quotes, `\`, and control characters escaped.
pub(crate) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::{Desc, HistogramValue, Snapshot, Unit};

    #[test]
    fn the_document_nests_groups_labels_and_paths() {
        let mut s = Snapshot::new();
        s.gauge(&Desc::new("sirocco_uptime_seconds", "u").unit(Unit::Milliseconds).json("uptime_ms"), &[], 1500);
        s.info(&Desc::new("sirocco_build_info", "b").json("build"), &[("version", "0.1.0"), ("mode", "PV")]);
        s.gauge(&Desc::new("heap_used", "h").json("heap.used"), &[], 10);
        s.gauge(&Desc::new("heap_free", "h").json("heap.free"), &[], 20);
        let rx = Desc::new("rx_total", "rx").json("vifs[vif].rx_packets");
        s.counter(&rx, &[("vif", "0")], 5);
        s.counter(&rx, &[("vif", "1")], 6);
        s.info(&Desc::new("vif_info", "i").json("vifs[vif]"), &[("vif", "0"), ("ipv4", "10.0.0.2/24")]);
        let tcp = Desc::new("tcp", "t").json("vifs[vif].tcp");
        s.gauge(&tcp, &[("vif", "0"), ("state", "time_wait")], 0);
        s.gauge(&tcp, &[("vif", "0"), ("state", "closed")], 1);
        s.gauge(&Desc::new("tcp_buf", "t").json("vifs[vif].tcp.buffer_bytes"), &[("vif", "0")], 4096);
        s.counter(&Desc::new("http_requests_total", "r"), &[], 7);
        s.counter(&Desc::new("by_method_total", "r"), &[("method", "GET")], 2);
        s.histogram(
            &Desc::new("lat_seconds", "l").unit(Unit::Microseconds),
            &[],
            HistogramValue { buckets: vec![(100, 1), (250, 3)], count: 4, sum: 900 },
        );
        s.counter(&Desc::new("prom_only_total", "p").no_json(), &[], 1);
        let expected = concat!(
            r#"{"uptime_ms":1500,"build":{"version":"0.1.0","mode":"PV"},"heap":{"used":10,"free":20},"#,
            r#""vifs":[{"vif":"0","rx_packets":5,"ipv4":"10.0.0.2/24","tcp":{"time_wait":0,"closed":1,"#,
            r#""buffer_bytes":4096}},{"vif":"1","rx_packets":6}],"#,
            r#""app":{"http_requests_total":7,"by_method_total":{"GET":2},"#,
            r#""lat_seconds":{"unit":"us","count":4,"sum":900,"buckets":[[100,1],[250,3]]}}}"#
        );
        assert_eq!(s.json(), expected);
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = Snapshot::new();
        s.info(&Desc::new("i", "i").json("i"), &[("t", "a\"b\\c\nd\u{1}é")]);
        assert_eq!(s.json(), r#"{"i":{"t":"a\"b\\c\nd\u0001é"}}"#);
    }

    #[test]
    fn a_series_that_cannot_be_placed_is_left_out_and_said() {
        let mut s = Snapshot::new();
        s.gauge(&Desc::new("a", "a").json("x"), &[], 1);
        s.gauge(&Desc::new("b", "b").json("x.y"), &[], 2); // through the value x
        s.gauge(&Desc::new("c", "c").json("v[vif]"), &[("vif", "0")], 3); // no key for the value
        s.gauge(&Desc::new("d", "d").json("w[vif].n"), &[], 4); // no label vif
        s.gauge(&Desc::new("e", "e").json("x"), &[], 5); // x again
        let json = s.json();
        assert!(json.starts_with(r#"{"x":1,"problems":["#), "{json}");
        assert_eq!(json.matches("left out of the JSON").count(), 4, "{json}");
    }

    #[test]
    fn the_snapshots_problems_are_in_the_document() {
        let mut s = Snapshot::new();
        s.counter(&Desc::new("c", "c"), &[("__bad", "1")], 1);
        let json = s.json();
        assert!(json.starts_with(r#"{"problems":["metric c: label name \"__bad\""#), "{json}");
    }
}
