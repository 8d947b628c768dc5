//! Which records the logger keeps: `log=info,sirocco_net=debug,sirocco::net=trace` on the command line, the syntax
//! of `env_logger`'s `RUST_LOG`.
//!
//! A spec is a comma-separated list of directives. A bare level (`off`, `error`, `warn`, `info`, `debug`, `trace`,
//! any case) sets the default; `target=level` sets the level of a target and everything under it: `sirocco`
//! covers `sirocco` and `sirocco::net`, but not `sirocco_net` (a directive ends at a `::` boundary, where
//! `env_logger` compares plain prefixes). The longest matching directive wins; when one target is named twice,
//! the later one does. Without a bare level the default is `info`, Sirocco's default (`env_logger`'s would be
//! `off`: write `log=off,sirocco_net=debug` for that).
//!
//! Two departures from `env_logger`, both to keep a typo from silently changing what is logged: a bare word must
//! be a level (`env_logger` would read `log=loud` as "target `loud` at trace"; here it is an error: write
//! `loud=trace`), and the `/regex` message filter is refused by name.
//!
//! Nothing here allocates: the logger starts before the heap exists, so a filter holds at most
//! [`MAX_DIRECTIVES`] directives borrowed from the command line.

use core::fmt;
use log::{Level, LevelFilter};

/// Most `target=level` directives one spec may hold (the command line is at most 1 KiB).
pub const MAX_DIRECTIVES: usize = 16;

/// One `target=level` directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Directive<'a> {
    /// The module path it covers, with everything under it.
    pub target: &'a str,
    /// The most verbose level kept for it.
    pub level: LevelFilter,
}

/// A parsed `log=` spec: a default level and up to [`MAX_DIRECTIVES`] per-target levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogFilter<'a> {
    default: Option<LevelFilter>,
    directives: [Directive<'a>; MAX_DIRECTIVES],
    len: usize,
}

/// What is wrong with one directive of a `log=` spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterProblem {
    /// A bare word that is not a level (a target needs one: `name=debug`).
    NotALevel,
    /// `target=level` whose level is not one.
    BadLevel,
    /// `=level`: no target before the `=`.
    EmptyTarget,
    /// `env_logger`'s `/regex` message filter, which Sirocco does not have.
    MessageFilter,
    /// More than [`MAX_DIRECTIVES`] directives; this is the first one left out.
    TooMany,
}

/// A directive of a `log=` spec that cannot be used, named as it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterError<'a> {
    /// The directive, as written.
    pub directive: &'a str,
    /// What is wrong with it.
    pub problem: FilterProblem,
}

const LEVELS: &str = "off, error, warn, info, debug, trace";

impl fmt::Display for FilterError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.directive;
        match self.problem {
            FilterProblem::NotALevel => {
                write!(f, "{d:?} is not a level ({LEVELS}); a target needs one, as in {d}=debug")
            }
            FilterProblem::BadLevel => {
                let level = d.split_once('=').map_or(d, |(_, l)| l);
                write!(f, "{d:?}: {level:?} is not a level ({LEVELS})")
            }
            FilterProblem::EmptyTarget => write!(f, "{d:?} names no target before '='"),
            FilterProblem::MessageFilter => write!(f, "{d:?}: the /regex message filter is not supported"),
            FilterProblem::TooMany => write!(f, "{d:?} is one directive too many (at most {MAX_DIRECTIVES})"),
        }
    }
}

impl core::error::Error for FilterError<'_> {}

/// A spec read leniently ([`LogFilter::parse_lenient`]): what could be used, and what could not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lenient<'a> {
    /// The default level and every good directive.
    pub filter: LogFilter<'a>,
    /// The first bad directive, if any.
    pub first_error: Option<FilterError<'a>>,
    /// How many directives were bad (and left out).
    pub errors: usize,
}

const EMPTY: Directive<'static> = Directive { target: "", level: LevelFilter::Off };

fn level(s: &str) -> Option<LevelFilter> {
    s.parse().ok()
}

impl<'a> LogFilter<'a> {
    /// A filter with only a default level.
    pub const fn new(default: LevelFilter) -> Self {
        LogFilter { default: Some(default), directives: [EMPTY; MAX_DIRECTIVES], len: 0 }
    }

    /// Parses a whole spec; the first bad directive is an error.
    pub fn parse(spec: &'a str) -> Result<Self, FilterError<'a>> {
        let lenient = Self::parse_lenient(spec);
        match lenient.first_error {
            Some(e) => Err(e),
            None => Ok(lenient.filter),
        }
    }

    /// Parses a spec, leaving out the directives that cannot be used (and saying which): what the logger does
    /// with the command line's, so that a typo in one directive does not silence the rest.
    pub fn parse_lenient(spec: &'a str) -> Lenient<'a> {
        let mut filter = LogFilter { default: None, directives: [EMPTY; MAX_DIRECTIVES], len: 0 };
        let mut first_error = None;
        let mut errors = 0;
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if let Err(problem) = filter.add(d) {
                errors += 1;
                first_error.get_or_insert(FilterError { directive: d, problem });
            }
        }
        Lenient { filter, first_error, errors }
    }

    fn add(&mut self, d: &'a str) -> Result<(), FilterProblem> {
        if d.contains('/') {
            return Err(FilterProblem::MessageFilter);
        }
        let Some((target, lvl)) = d.split_once('=') else {
            self.default = Some(level(d).ok_or(FilterProblem::NotALevel)?);
            return Ok(());
        };
        let (target, lvl) = (target.trim(), lvl.trim());
        if target.is_empty() {
            return Err(FilterProblem::EmptyTarget);
        }
        let level = level(lvl).ok_or(FilterProblem::BadLevel)?;
        if self.len == MAX_DIRECTIVES {
            return Err(FilterProblem::TooMany);
        }
        self.directives[self.len] = Directive { target, level };
        self.len += 1;
        Ok(())
    }

    /// The level for targets no directive covers: the spec's bare level, else `info`.
    pub fn default_level(&self) -> LevelFilter {
        self.default.unwrap_or(LevelFilter::Info)
    }

    /// The bare level the spec gave, if it gave one.
    pub fn explicit_default(&self) -> Option<LevelFilter> {
        self.default
    }

    /// The `target=level` directives, in the order given.
    pub fn directives(&self) -> &[Directive<'a>] {
        &self.directives[..self.len]
    }

    /// The level kept for `target`: the longest directive that covers it (the later of two equal ones), else the
    /// default.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        let mut best: Option<&Directive<'a>> = None;
        for d in self.directives() {
            if covers(d.target, target) && best.is_none_or(|b| d.target.len() >= b.target.len()) {
                best = Some(d);
            }
        }
        best.map_or(self.default_level(), |d| d.level)
    }

    /// Whether a record of `level` from `target` is kept.
    pub fn enabled(&self, target: &str, level: Level) -> bool {
        level <= self.level_for(target)
    }

    /// The most verbose level any directive (or the default) keeps: what `log::set_max_level` is given, so a
    /// record no directive can want costs the `log` macros' one comparison and nothing more.
    pub fn max_level(&self) -> LevelFilter {
        self.directives().iter().map(|d| d.level).fold(self.default_level(), Ord::max)
    }
}

/// Whether the directive for `prefix` covers `target`: the same path, or a path under it.
fn covers(prefix: &str, target: &str) -> bool {
    match target.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with("::") || prefix.ends_with("::"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LevelFilter::*;

    #[test]
    fn a_default_and_targets() {
        let f = LogFilter::parse("info,sirocco_net=debug,sirocco::net=trace").unwrap();
        assert_eq!(f.default_level(), Info);
        assert_eq!(f.explicit_default(), Some(Info));
        assert_eq!(
            f.directives(),
            &[Directive { target: "sirocco_net", level: Debug }, Directive { target: "sirocco::net", level: Trace }]
        );
        assert_eq!(f.level_for("sirocco_net"), Debug);
        assert_eq!(f.level_for("sirocco_net::stack"), Debug);
        assert_eq!(f.level_for("sirocco::net"), Trace);
        assert_eq!(f.level_for("sirocco::xenstore"), Info);
        assert_eq!(f.level_for("httpd"), Info);
        assert_eq!(f.max_level(), Trace);
        assert!(f.enabled("sirocco::net", Level::Trace));
        assert!(!f.enabled("sirocco::xenstore", Level::Debug));
        assert!(f.enabled("sirocco::xenstore", Level::Warn));
    }

    #[test]
    fn longest_matching_prefix_wins_in_either_order() {
        for spec in ["warn,sirocco=debug,sirocco::net=off", "warn,sirocco::net=off,sirocco=debug"] {
            let f = LogFilter::parse(spec).unwrap();
            assert_eq!(f.level_for("sirocco"), Debug, "{spec}");
            assert_eq!(f.level_for("sirocco::xenstore"), Debug, "{spec}");
            assert_eq!(f.level_for("sirocco::net"), Off, "{spec}");
            assert_eq!(f.level_for("sirocco::net::tcp"), Off, "{spec}");
            assert_eq!(f.level_for("smoltcp::iface"), Warn, "{spec}");
        }
    }

    #[test]
    fn a_directive_ends_at_a_path_boundary() {
        let f = LogFilter::parse("error,sirocco=trace").unwrap();
        assert_eq!(f.level_for("sirocco_net"), Error, "sirocco does not cover sirocco_net");
        assert_eq!(f.level_for("siroccox"), Error);
        assert_eq!(f.level_for("sirocco::a::b"), Trace);
        // A directive written with the trailing `::` covers what is under it.
        assert_eq!(LogFilter::parse("off,smoltcp::=debug").unwrap().level_for("smoltcp::iface"), Debug);
    }

    #[test]
    fn the_later_of_two_equal_directives_wins() {
        let f = LogFilter::parse("httpd=debug,httpd=warn").unwrap();
        assert_eq!(f.level_for("httpd"), Warn);
        let f = LogFilter::parse("debug,error").unwrap();
        assert_eq!(f.default_level(), Error);
    }

    #[test]
    fn off_silences_and_the_default_is_info_unless_given() {
        let f = LogFilter::parse("sirocco_net=off").unwrap();
        assert_eq!(f.explicit_default(), None);
        assert_eq!(f.default_level(), Info);
        assert_eq!(f.level_for("sirocco_net"), Off);
        assert!(!f.enabled("sirocco_net", Level::Error));
        let f = LogFilter::parse("off,httpd=debug").unwrap();
        assert!(!f.enabled("sirocco::net", Level::Error));
        assert!(f.enabled("httpd", Level::Debug));
        assert_eq!(f.max_level(), Debug);
        assert_eq!(LogFilter::parse("off").unwrap().max_level(), Off);
    }

    #[test]
    fn levels_in_any_case_spaces_and_empty_directives() {
        let f = LogFilter::parse(" WARN , httpd = Trace ,, ").unwrap();
        assert_eq!(f.default_level(), Warn);
        assert_eq!(f.level_for("httpd"), Trace);
        let empty = LogFilter::parse("").unwrap();
        assert_eq!((empty.default_level(), empty.directives().len()), (Info, 0));
    }

    #[test]
    fn a_bad_directive_is_an_error_naming_it() {
        let e = LogFilter::parse("info,sirocco_net=loud").unwrap_err();
        assert_eq!(e, FilterError { directive: "sirocco_net=loud", problem: FilterProblem::BadLevel });
        assert_eq!(
            e.to_string(),
            "\"sirocco_net=loud\": \"loud\" is not a level (off, error, warn, info, debug, trace)"
        );
        let e = LogFilter::parse("loud").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"loud\" is not a level (off, error, warn, info, debug, trace); a target needs one, as in loud=debug"
        );
        let e = LogFilter::parse("info,=debug").unwrap_err();
        assert_eq!(e.to_string(), "\"=debug\" names no target before '='");
        let e = LogFilter::parse("info/GET").unwrap_err();
        assert_eq!(e.to_string(), "\"info/GET\": the /regex message filter is not supported");
    }

    #[test]
    fn lenient_parsing_keeps_the_good_directives_and_counts_the_bad() {
        let l = LogFilter::parse_lenient("debug,sirocco_net=loud,httpd=trace,=warn");
        assert_eq!(l.errors, 2);
        assert_eq!(
            l.first_error,
            Some(FilterError { directive: "sirocco_net=loud", problem: FilterProblem::BadLevel })
        );
        assert_eq!(l.filter.default_level(), Debug);
        assert_eq!(l.filter.directives(), &[Directive { target: "httpd", level: Trace }]);
        // A bad bare level leaves the default alone (info unless another bare level set it).
        let l = LogFilter::parse_lenient("loud,httpd=warn");
        assert_eq!((l.errors, l.filter.default_level(), l.filter.level_for("httpd")), (1, Info, Warn));
        let clean = LogFilter::parse_lenient("info");
        assert_eq!((clean.errors, clean.first_error), (0, None));
    }

    #[test]
    fn more_directives_than_fit_are_an_error_naming_the_first_left_out() {
        let spec: String = (0..MAX_DIRECTIVES + 2).map(|i| format!("t{i}=debug,")).collect();
        let l = LogFilter::parse_lenient(&spec);
        assert_eq!(l.filter.directives().len(), MAX_DIRECTIVES);
        assert_eq!(l.errors, 2);
        let e = l.first_error.unwrap();
        assert_eq!(e.directive, format!("t{MAX_DIRECTIVES}=debug"));
        assert_eq!(e.problem, FilterProblem::TooMany);
        assert!(e.to_string().contains("at most 16"), "{e}");
        // A bare level still counts once the table is full.
        assert_eq!(LogFilter::parse_lenient(&(spec + "warn")).filter.default_level(), Warn);
    }
}
