//! The guest command line (`extra = "..."` / `cmdline = "..."` in the xl config, `start_info.cmd_line`).
//!
//! Words are separated by spaces; a word is `key=value` or a bare `flag`. A value may be double-quoted to hold
//! spaces (`motd="hello world"`). When a key repeats, the last one wins, as on Linux.

use crate::logging::filter::{Lenient, LogFilter};
use core::fmt;

/// Size of `start_info.cmd_line` (`MAX_GUEST_CMDLINE` in xen.h).
pub const MAX_GUEST_CMDLINE: usize = 1024;

/// Why the raw command line could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    /// No NUL within the buffer: the toolstack wrote more than `MAX_GUEST_CMDLINE - 1` bytes.
    NotTerminated,
    /// Not valid UTF-8; `valid_up_to` bytes were.
    NotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A double quote opened at this byte offset is never closed.
    UnclosedQuote {
        /// Byte offset of the opening quote.
        at: usize,
    },
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::NotTerminated => {
                write!(f, "command line has no NUL terminator within {MAX_GUEST_CMDLINE} bytes")
            }
            CmdlineError::NotUtf8 { valid_up_to } => {
                write!(f, "command line is not UTF-8 (invalid byte at offset {valid_up_to})")
            }
            CmdlineError::UnclosedQuote { at } => {
                write!(f, "command line has an unclosed quote at offset {at}")
            }
        }
    }
}

impl core::error::Error for CmdlineError {}

/// One word of the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arg<'a> {
    /// The part before `=`, or the whole word for a flag.
    pub key: &'a str,
    /// The part after `=` with surrounding quotes removed; `None` for a bare flag.
    pub value: Option<&'a str>,
}

/// A validated command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cmdline<'a> {
    raw: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Takes the NUL-terminated bytes of `start_info.cmd_line`.
    pub fn from_bytes(buf: &'a [u8]) -> Result<Self, CmdlineError> {
        let end = buf.iter().position(|&b| b == 0).ok_or(CmdlineError::NotTerminated)?;
        let raw =
            core::str::from_utf8(&buf[..end]).map_err(|e| CmdlineError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
        Self::parse(raw)
    }

    /// Validates a command line given as a string.
    pub fn parse(raw: &'a str) -> Result<Self, CmdlineError> {
        let line = Cmdline { raw };
        let mut words = Words { rest: raw, offset: 0 };
        for w in &mut words {
            w?;
        }
        Ok(line)
    }

    /// The command line as the toolstack gave it.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Every word, in order.
    pub fn args(&self) -> impl Iterator<Item = Arg<'a>> + 'a {
        // `parse` already rejected malformed input, so no error can appear here.
        Words { rest: self.raw, offset: 0 }.filter_map(Result::ok)
    }

    /// The value of the last `key=value` for `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.args().filter(|a| a.key == key).filter_map(|a| a.value).last()
    }

    /// True when `key` appears as a bare flag or as `key=1|yes|true|on`.
    pub fn flag(&self, key: &str) -> bool {
        match self.args().filter(|a| a.key == key).last() {
            Some(Arg { value: None, .. }) => true,
            Some(Arg { value: Some(v), .. }) => matches!(v, "1" | "yes" | "true" | "on"),
            None => false,
        }
    }

    /// The default level `log=` gives (its bare level: `info` in `log=info,sirocco_net=debug`); `Ok(None)` when
    /// there is no `log=` or it names no default, `Err(text)` when a directive is bad. [`Cmdline::log_filter`]
    /// has the per-target levels too.
    pub fn log_level(&self) -> Result<Option<log::LevelFilter>, &'a str> {
        match self.get("log") {
            None => Ok(None),
            Some(v) => LogFilter::parse(v).map(|f| f.explicit_default()).map_err(|_| v),
        }
    }

    /// The `log=` spec (`log=info,sirocco_net=debug`, see [`crate::logging::filter`]), read leniently: bad
    /// directives are left out and reported; no `log=` is the default, `info`.
    pub fn log_filter(&self) -> Lenient<'a> {
        LogFilter::parse_lenient(self.get("log").unwrap_or(""))
    }
}

struct Words<'a> {
    rest: &'a str,
    offset: usize,
}

impl<'a> Iterator for Words<'a> {
    type Item = Result<Arg<'a>, CmdlineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let trimmed = self.rest.trim_start_matches([' ', '\t', '\n']);
        self.offset += self.rest.len() - trimmed.len();
        self.rest = trimmed;
        if self.rest.is_empty() {
            return None;
        }
        let (key_end, has_value) = match self.rest.find(['=', ' ', '\t', '\n']) {
            Some(i) if self.rest.as_bytes()[i] == b'=' => (i, true),
            Some(i) => (i, false),
            None => (self.rest.len(), false),
        };
        let key = &self.rest[..key_end];
        if !has_value {
            self.advance(key_end);
            return Some(Ok(Arg { key, value: None }));
        }
        let after = &self.rest[key_end + 1..];
        if let Some(quoted) = after.strip_prefix('"') {
            let Some(close) = quoted.find('"') else {
                let at = self.offset + key_end + 1;
                self.rest = "";
                return Some(Err(CmdlineError::UnclosedQuote { at }));
            };
            let value = &quoted[..close];
            self.advance(key_end + 1 + 1 + close + 1);
            Some(Ok(Arg { key, value: Some(value) }))
        } else {
            let len = after.find([' ', '\t', '\n']).unwrap_or(after.len());
            let value = &after[..len];
            self.advance(key_end + 1 + len);
            Some(Ok(Arg { key, value: Some(value) }))
        }
    }
}

impl Words<'_> {
    fn advance(&mut self, n: usize) {
        self.rest = &self.rest[n..];
        self.offset += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(s: &str) -> [u8; MAX_GUEST_CMDLINE] {
        let mut b = [0u8; MAX_GUEST_CMDLINE];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    }

    #[test]
    fn keys_values_and_flags() {
        let b = buf("log=debug  verbose ip=10.0.0.2/24\tgw=10.0.0.1");
        let c = Cmdline::from_bytes(&b).unwrap();
        let args: Vec<_> = c.args().collect();
        assert_eq!(
            args,
            vec![
                Arg { key: "log", value: Some("debug") },
                Arg { key: "verbose", value: None },
                Arg { key: "ip", value: Some("10.0.0.2/24") },
                Arg { key: "gw", value: Some("10.0.0.1") },
            ]
        );
        assert_eq!(c.get("ip"), Some("10.0.0.2/24"));
        assert!(c.flag("verbose"));
        assert!(!c.flag("quiet"));
        assert_eq!(c.get("verbose"), None);
    }

    #[test]
    fn quoted_values_keep_spaces_and_equals() {
        let c = Cmdline::parse(r#"motd="hello there, a=b" n=1"#).unwrap();
        assert_eq!(c.get("motd"), Some("hello there, a=b"));
        assert_eq!(c.get("n"), Some("1"));
    }

    #[test]
    fn empty_value_and_last_wins() {
        let c = Cmdline::parse("a= a=2 b=").unwrap();
        assert_eq!(c.get("a"), Some("2"));
        assert_eq!(c.get("b"), Some(""));
        assert_eq!(Cmdline::parse("").unwrap().args().count(), 0);
        assert_eq!(Cmdline::parse("   ").unwrap().args().count(), 0);
    }

    #[test]
    fn flag_values() {
        let c = Cmdline::parse("x=yes y=0 z=on w=no").unwrap();
        assert!(c.flag("x") && c.flag("z"));
        assert!(!c.flag("y") && !c.flag("w"));
    }

    #[test]
    fn log_level() {
        assert_eq!(Cmdline::parse("log=debug").unwrap().log_level(), Ok(Some(log::LevelFilter::Debug)));
        assert_eq!(Cmdline::parse("log=TRACE").unwrap().log_level(), Ok(Some(log::LevelFilter::Trace)));
        assert_eq!(Cmdline::parse("x=1").unwrap().log_level(), Ok(None));
        assert_eq!(Cmdline::parse("log=loud").unwrap().log_level(), Err("loud"));
        let c = Cmdline::parse("log=warn,sirocco_net=debug").unwrap();
        assert_eq!(c.log_level(), Ok(Some(log::LevelFilter::Warn)));
        assert_eq!(Cmdline::parse("log=sirocco_net=debug").unwrap().log_level(), Ok(None));
        assert_eq!(Cmdline::parse("log=info,x=loud").unwrap().log_level(), Err("info,x=loud"));
    }

    #[test]
    fn log_filter() {
        let c = Cmdline::parse("ip=10.0.0.2/24 log=info,sirocco_net=debug,sirocco::net=trace").unwrap();
        let l = c.log_filter();
        assert_eq!((l.errors, l.filter.max_level()), (0, log::LevelFilter::Trace));
        assert_eq!(l.filter.level_for("sirocco_net::stack"), log::LevelFilter::Debug);
        assert_eq!(l.filter.level_for("httpd"), log::LevelFilter::Info);
        let none = Cmdline::parse("ip=10.0.0.2/24").unwrap().log_filter();
        assert_eq!((none.errors, none.filter.max_level()), (0, log::LevelFilter::Info));
        let bad = Cmdline::parse("log=debug,net=loud").unwrap().log_filter();
        assert_eq!((bad.errors, bad.filter.default_level()), (1, log::LevelFilter::Debug));
        assert_eq!(bad.first_error.unwrap().directive, "net=loud");
    }

    #[test]
    fn rejects_unterminated_buffer() {
        let b = [b'a'; MAX_GUEST_CMDLINE];
        assert_eq!(Cmdline::from_bytes(&b), Err(CmdlineError::NotTerminated));
    }

    #[test]
    fn rejects_invalid_utf8() {
        let mut b = buf("ok=1 ");
        b[5] = 0xff;
        assert_eq!(Cmdline::from_bytes(&b), Err(CmdlineError::NotUtf8 { valid_up_to: 5 }));
    }

    #[test]
    fn rejects_unclosed_quote() {
        assert_eq!(Cmdline::parse(r#"a=1 motd="oops"#), Err(CmdlineError::UnclosedQuote { at: 9 }));
        let e = Cmdline::parse(r#"m=""#).unwrap_err();
        assert!(e.to_string().contains("unclosed quote"));
    }

    #[test]
    fn full_length_line_is_accepted() {
        let s = "k=".to_string() + &"v".repeat(MAX_GUEST_CMDLINE - 3);
        let b = buf(&s);
        assert_eq!(Cmdline::from_bytes(&b).unwrap().get("k").unwrap().len(), MAX_GUEST_CMDLINE - 3);
    }
}
