//! The trace's export for viewers (issue 15): Chrome trace-event JSON, which Perfetto and `chrome://tracing` open.
//! The guest serves it at `GET /trace`; the host tool `sirocco trace` makes it from a console dump. The events
//! themselves, their ring and the dump are `sirocco_boot_logic::trace`, where every layer records them.

use crate::metrics::json::string as json_string;
use alloc::string::String;
use core::fmt::{self, Write};
pub use sirocco_boot_logic::trace::{Category, Event, Phase};

/// The events as Chrome trace-event JSON (the "JSON object format": `{"traceEvents": [...]}`), which Perfetto and
/// `chrome://tracing` open. Each category is a thread of its own in process 1 (named after it); timestamps are
/// microseconds with nanosecond decimals; `overwritten` goes into the metadata. A flow event (a request's path)
/// becomes a zero-length slice of its own name on its category's thread with the flow event (`"s"`, `"t"`, `"f"`,
/// named [`FLOW_NAME`], its id the event's value) inside it, which is what viewers bind the arrows to.
pub fn chrome_json<N: AsRef<str>>(events: &[Event<N>], overwritten: u64) -> String {
    let mut out = String::with_capacity(64 + events.len() * 96);
    out.push_str("{\"traceEvents\":[");
    for (i, c) in Category::ALL.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ =
            write!(out, "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":", *c as u8);
        json_string(&mut out, c.name());
        out.push_str("}}");
    }
    for e in events {
        if matches!(e.phase, Phase::FlowStart | Phase::FlowStep | Phase::FlowEnd) {
            flow(&mut out, e);
            continue;
        }
        let ph = e.phase.letter();
        out.push_str(",{\"name\":");
        json_string(&mut out, e.name.as_ref());
        let _ = write!(
            out,
            ",\"cat\":\"{}\",\"ph\":\"{ph}\",\"ts\":{},\"pid\":1,\"tid\":{}",
            e.category.name(),
            Ts(e.ts_ns),
            e.category as u8
        );
        match e.phase {
            Phase::Instant => out.push_str(",\"s\":\"t\""),
            Phase::Counter => {
                out.push_str(",\"args\":{");
                json_string(&mut out, e.name.as_ref());
                let _ = write!(out, ":{}}}", e.value);
            }
            _ => {}
        }
        if !matches!(e.phase, Phase::Counter) {
            let _ = write!(out, ",\"args\":{{\"value\":{}}}", e.value);
        }
        out.push('}');
    }
    let _ = write!(out, "],\"displayTimeUnit\":\"ns\",\"otherData\":{{\"overwritten\":{overwritten}}}}}");
    out
}

/// What every flow event is called in the export (viewers join flow events by name, category and id).
pub const FLOW_NAME: &str = "request";

fn flow<N: AsRef<str>>(out: &mut String, e: &Event<N>) {
    let (ts, tid) = (Ts(e.ts_ns), e.category as u8);
    let cat = e.category.name();
    for ph in ['B', e.phase.letter(), 'E'] {
        if ph == 'B' || ph == 'E' {
            out.push_str(",{\"name\":");
            json_string(out, e.name.as_ref());
            let _ = write!(out, ",\"cat\":\"{cat}\",\"ph\":\"{ph}\",\"ts\":{ts},\"pid\":1,\"tid\":{tid}}}");
        } else {
            let _ = write!(
                out,
                ",{{\"name\":\"{FLOW_NAME}\",\"cat\":\"{FLOW_NAME}\",\"ph\":\"{ph}\",\"id\":{},\"ts\":{ts},\"pid\":1,\"tid\":{tid}{}}}",
                e.value,
                if ph == 'f' { ",\"bp\":\"e\"" } else { "" }
            );
        }
    }
}

/// A timestamp in microseconds with nanosecond decimals.
struct Ts(u64);

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sirocco_boot_logic::trace::flow_id;

    fn ev(ts_ns: u64, category: Category, phase: Phase, name: &'static str, value: u64) -> Event {
        Event { ts_ns, category, phase, name, value }
    }

    #[test]
    fn events_export_as_chrome_trace_json_byte_for_byte() {
        let events = [
            ev(1_000_500, Category::Run, Phase::Begin, "task poll", 7),
            ev(1_002_000, Category::Run, Phase::End, "task poll", 7),
            ev(1_003_001, Category::Net, Phase::Instant, "rx \"batch\"", 12),
            ev(1_004_000, Category::Blk, Phase::Counter, "in flight", 3),
        ];
        let json = chrome_json(&events, 2);
        let threads = "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"run\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"evtchn\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":2,\"args\":{\"name\":\"net\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":3,\"args\":{\"name\":\"tcp\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":4,\"args\":{\"name\":\"blk\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":5,\"args\":{\"name\":\"xenstore\"}},\
{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":6,\"args\":{\"name\":\"app\"}}";
        let want = alloc::format!(
            "{{\"traceEvents\":[{threads},\
{{\"name\":\"task poll\",\"cat\":\"run\",\"ph\":\"B\",\"ts\":1000.500,\"pid\":1,\"tid\":0,\"args\":{{\"value\":7}}}},\
{{\"name\":\"task poll\",\"cat\":\"run\",\"ph\":\"E\",\"ts\":1002.000,\"pid\":1,\"tid\":0,\"args\":{{\"value\":7}}}},\
{{\"name\":\"rx \\\"batch\\\"\",\"cat\":\"net\",\"ph\":\"i\",\"ts\":1003.001,\"pid\":1,\"tid\":2,\"s\":\"t\",\"args\":{{\"value\":12}}}},\
{{\"name\":\"in flight\",\"cat\":\"blk\",\"ph\":\"C\",\"ts\":1004.000,\"pid\":1,\"tid\":4,\"args\":{{\"in flight\":3}}}}\
],\"displayTimeUnit\":\"ns\",\"otherData\":{{\"overwritten\":2}}}}"
        );
        assert_eq!(json, want);
    }

    #[test]
    fn a_flow_event_is_a_slice_around_the_flow_so_viewers_draw_the_arrow() {
        let id = flow_id(80, 40001);
        let json = chrome_json(&[ev(2_000, Category::Net, Phase::FlowStart, "rx segment", id)], 0);
        let want = alloc::format!(
            ",{{\"name\":\"rx segment\",\"cat\":\"net\",\"ph\":\"B\",\"ts\":2.000,\"pid\":1,\"tid\":2}},\
{{\"name\":\"request\",\"cat\":\"request\",\"ph\":\"s\",\"id\":{id},\"ts\":2.000,\"pid\":1,\"tid\":2}},\
{{\"name\":\"rx segment\",\"cat\":\"net\",\"ph\":\"E\",\"ts\":2.000,\"pid\":1,\"tid\":2}}]"
        );
        assert!(json.contains(&want), "{json}");
        let end = chrome_json(&[ev(3_000, Category::App, Phase::FlowEnd, "tx segment", id)], 0);
        assert!(
            end.contains(&alloc::format!("\"ph\":\"f\",\"id\":{id},\"ts\":3.000,\"pid\":1,\"tid\":6,\"bp\":\"e\"}}")),
            "{end}"
        );
        // Owned names (a parsed dump) export the same as static ones.
        let owned = [Event {
            ts_ns: 2_000,
            category: Category::Net,
            phase: Phase::FlowStart,
            name: String::from("rx segment"),
            value: id,
        }];
        assert_eq!(chrome_json(&owned, 0), json);
    }
}
