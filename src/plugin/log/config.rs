//! `log [NAMES…] [FORMAT] { class success|denial|error|all… }`: a line per query, in CoreDNS's
//! format by default:
//!
//! ```text
//! {remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}
//! ```

use hickory_proto::rr::Name;

use crate::corefile::Directive;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

pub const COMMON_FORMAT: &str = "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration}";
pub const COMBINED_FORMAT: &str = "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration} \"{>opcode}\"";

/// Which answers are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classes {
    pub success: bool,
    pub denial: bool,
    pub error: bool,
}

impl Classes {
    pub const ALL: Classes = Classes {
        success: true,
        denial: true,
        error: true,
    };
}

/// One piece of a format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A `{placeholder}`, without its braces.
    Field(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Only names in these zones are logged.
    pub names: Vec<Name>,
    pub format: Vec<Piece>,
    pub classes: Classes,
}

/// The placeholders a format may use; others print `-`, as CoreDNS prints unknown ones.
pub const FIELDS: &[&str] = &[
    "remote", "port", "local", "type", "name", "class", "proto", "size", "rcode", "rsize",
    "duration", ">id", ">opcode", ">do", ">bufsize", ">rflags",
];

pub fn parse(d: &Directive, _: &BlockContext) -> Result<LogConfig, Vec<ConfigError>> {
    let args = Args::new("log", d);
    let mut rest: Vec<&crate::corefile::Token> = args.rest.iter().collect();
    let mut format = COMMON_FORMAT.to_string();
    if rest.last().is_some_and(|t| t.text.contains('{')) {
        format = rest
            .pop()
            .map(|t| {
                t.text
                    .replace("{common}", COMMON_FORMAT)
                    .replace("{combined}", COMBINED_FORMAT)
            })
            .unwrap_or_default();
    }
    let mut errors = Vec::new();
    let mut names_list = Vec::new();
    for t in &rest {
        match crate::corefile::keys::parse_zone(&t.text) {
            Ok(z) => names_list.extend(z),
            Err(m) => errors.push(args.err(t, m)),
        }
    }
    if names_list.is_empty() {
        names_list.push(Name::root());
    }
    let mut classes = Classes::ALL;
    let mut classes_set = false;
    for p in d.block.iter().flatten() {
        let a = Args::new(format!("log: {}", p.name.text), p);
        match p.name.text.as_str() {
            "class" => match a.some("success, denial, error or all") {
                Ok(words) => {
                    if !classes_set {
                        classes = Classes {
                            success: false,
                            denial: false,
                            error: false,
                        };
                        classes_set = true;
                    }
                    for w in words {
                        match w.text.as_str() {
                            "all" => classes = Classes::ALL,
                            "success" => classes.success = true,
                            "denial" => classes.denial = true,
                            "error" => classes.error = true,
                            other => errors.push(a.err(
                                w,
                                format!("unknown class '{other}'; expected success, denial, error or all"),
                            )),
                        }
                    }
                }
                Err(e) => errors.push(e),
            },
            other => errors.push(ConfigError::new(
                &p.name.pos,
                format!("log: unknown property '{other}'; expected class"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(LogConfig {
        names: names_list,
        format: compile(&format),
        classes,
    })
}

/// Splits a format string into text and `{placeholders}`.
pub fn compile(format: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        pieces.push(Piece::Field(rest[open + 1..open + close].to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    pieces
}

/// Whether `name` is one a rule with `zones` logs.
pub fn covers(zones: &[Name], name: &Name) -> bool {
    zones.iter().any(|z| z.zone_of(name))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n log {\n  class loud\n }\n}",
                "3:9: log: class: unknown class 'loud'",
            ),
            (
                ".:53 {\n log {\n  format x\n }\n}",
                "3:3: log: unknown property 'format'; expected class",
            ),
        ]);
    }
}
