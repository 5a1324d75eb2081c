//! `errors [{ consolidate DURATION REGEXP [LEVEL] }]`: log every query the chain failed on;
//! errors matching a `consolidate` pattern are counted and reported once per DURATION instead.

use std::time::Duration;

use crate::corefile::Directive;

use crate::corefile::args::Args;
use crate::corefile::args::parse_duration;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorsConfig {
    pub consolidate: Vec<Consolidate>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consolidate {
    pub every: Duration,
    /// A regular expression (checked to compile when parsed).
    pub pattern: String,
    pub level: Level,
    /// `show_first`: the first error of each period is logged at once, the rest counted.
    pub show_first: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<ErrorsConfig, Vec<ConfigError>> {
    let args = Args::new("errors", d);
    args.none().map_err(|e| vec![e])?;
    let mut cfg = ErrorsConfig::default();
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let a = Args::new(format!("errors: {}", p.name.text), p);
        match p.name.text.as_str() {
            "consolidate" => match consolidate(&a) {
                Ok(c) => cfg.consolidate.push(c),
                Err(e) => errors.push(e),
            },
            "stacktrace" => errors.push(a.err_here(
                "not supported (clusterdns has no Go stack traces; a panic is logged and counted in coredns_panics_total)",
            )),
            other => errors.push(ConfigError::new(
                &p.name.pos,
                format!("errors: unknown property '{other}'; expected consolidate or stacktrace"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn consolidate(a: &Args) -> Result<Consolidate, ConfigError> {
    let (show_first, words) = match a.rest {
        [words @ .., last] if last.text == "show_first" => (true, words),
        words => (false, words),
    };
    let (every, pattern, level) = match words {
        [d, p] => (d, p, None),
        [d, p, l] => (d, p, Some(l)),
        _ => return Err(a.err_here("expected DURATION REGEXP [LEVEL] [show_first]")),
    };
    let every = parse_duration(&every.text).ok_or_else(|| {
        a.err(
            every,
            format!("'{}' is not a duration; expected e.g. 5m", every.text),
        )
    })?;
    regex::Regex::new(&pattern.text).map_err(|e| {
        // The regex crate explains over several lines; its last line says what is wrong.
        let why = e.to_string();
        let why = why
            .lines()
            .last()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        a.err(
            pattern,
            format!("'{}' is not a regular expression: {why}", pattern.text),
        )
    })?;
    let level = match level.map(|l| l.text.as_str()) {
        None | Some("error") => Level::Error,
        Some("warning") => Level::Warning,
        Some("info") => Level::Info,
        Some("debug") => Level::Debug,
        Some(other) => {
            return Err(a.err(
                level.unwrap_or(a.head),
                format!("unknown level '{other}'; expected warning, error, info or debug"),
            ));
        }
    };
    Ok(Consolidate {
        every,
        pattern: pattern.text.clone(),
        level,
        show_first,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n errors now\n}",
                "2:9: errors: unexpected argument 'now'; this takes none",
            ),
            (
                ".:53 {\n errors {\n  consolidate 5m \"(\"\n }\n}",
                "3:18: errors: consolidate: '(' is not a regular expression: unclosed group",
            ),
            (
                ".:53 {\n errors {\n  consolidate 5m x loud\n }\n}",
                "3:20: errors: consolidate: unknown level 'loud'",
            ),
            (
                ".:53 {\n errors {\n  stacktrace\n }\n}",
                "3:3: errors: stacktrace: not supported",
            ),
            (
                ".:53 {\n errors {\n  consolidate 5m x warning show_first extra\n }\n}",
                "3:3: errors: consolidate: expected DURATION REGEXP [LEVEL] [show_first]",
            ),
        ]);
    }

    #[test]
    fn show_first_goes_last_with_or_without_a_level() {
        use super::Level;
        let pick = |text: &str| {
            plugin(text, |p| match p {
                crate::plugin::registry::PluginConfig::Errors(e) => Some(e.consolidate.clone()),
                _ => None,
            })
        };
        let c = pick(".:53 {\n errors {\n  consolidate 30s x show_first\n }\n}");
        assert!(c[0].show_first && c[0].level == Level::Error);
        let c = pick(".:53 {\n errors {\n  consolidate 30s x warning show_first\n }\n}");
        assert!(c[0].show_first && c[0].level == Level::Warning);
        let c = pick(".:53 {\n errors {\n  consolidate 30s x info\n }\n}");
        assert!(!c[0].show_first && c[0].level == Level::Info);
    }
}
