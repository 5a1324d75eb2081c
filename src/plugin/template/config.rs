//! `template CLASS TYPE [ZONES…] { match REGEX…; answer RR…; additional RR…; authority RR…;
//! rcode CODE; fallthrough [ZONES…]; upstream }`: answers made from the question.
//!
//! As CoreDNS: CLASS and TYPE may be `ANY`; ZONES default to the block's; `match` defaults to `.*`
//! and is tried against the lower-cased question name with its final dot; each RR argument is one
//! record in zone-file form (`NAME [TTL] [CLASS] TYPE DATA`, TTL 3600 and class IN when left out)
//! written as a Go text/template. A block may hold several `template` directives; they are tried
//! in order.
//!
//! The templates' language is the part of Go's text/template that CoreDNS's examples and users'
//! Corefiles use: `{{ .Name }}`, `{{ .Zone }}`, `{{ .Class }}`, `{{ .Type }}`, `{{ .Remote }}`,
//! `{{ .Regex }}`, `{{ index .Match N }}`, `{{ .Group.NAME }}` and `{{ index .Group "NAME" }}`, with
//! `{{-` and `-}}` trimming. Anything else is an error at its `file:line:col`, not a silent
//! difference. `ederror` is not supported.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use regex::Regex;

use crate::corefile::{Directive, Token};

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, zones_or_block};
use crate::plugin::shared::fallthrough::{Fallthrough, parse_fallthrough};
use crate::plugin::shared::parse_rcode;

#[derive(Clone, Debug)]
pub struct TemplateConfig {
    /// `None`: ANY.
    pub class: Option<DNSClass>,
    /// `None`: ANY.
    pub qtype: Option<RecordType>,
    pub zones: Vec<Name>,
    pub regex: Vec<Regex>,
    pub answer: Vec<Tmpl>,
    pub additional: Vec<Tmpl>,
    pub authority: Vec<Tmpl>,
    pub rcode: ResponseCode,
    pub fallthrough: Fallthrough,
    /// Follow a CNAME answer to an A or AAAA question through the server's own routing.
    pub upstream: bool,
}

/// A compiled record template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tmpl {
    pub source: String,
    pub pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Name,
    Zone,
    Class,
    Type,
    Remote,
    Regex,
    /// `index .Match N`: the Nth group of the match, 0 the whole.
    Match(usize),
    /// `.Group.NAME`: a named group (or a number).
    Group(String),
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<TemplateConfig, Vec<ConfigError>> {
    let a = Args::new("template", d);
    let (class, qtype, zones) = match d.args.as_slice() {
        [class, qtype, zones @ ..] => (
            parse_class(&a, class).map_err(|e| vec![e])?,
            parse_type(&a, qtype).map_err(|e| vec![e])?,
            zones_or_block(zones, ctx)?,
        ),
        _ => {
            return Err(vec![a.err_here(
                "expected a class and a type (e.g. 'template IN A' or 'template ANY AAAA')",
            )]);
        }
    };
    let mut cfg = TemplateConfig {
        class,
        qtype,
        zones,
        regex: Vec::new(),
        answer: Vec::new(),
        additional: Vec::new(),
        authority: Vec::new(),
        rcode: ResponseCode::NoError,
        fallthrough: Fallthrough::Never,
        upstream: false,
    };
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        if let Err(e) = property(p, &mut cfg) {
            errors.push(e);
        }
    }
    if cfg.regex.is_empty() {
        cfg.regex.push(Regex::new(".*").expect("valid regex"));
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn parse_class(a: &Args, t: &Token) -> Result<Option<DNSClass>, ConfigError> {
    match t.text.to_ascii_uppercase().as_str() {
        "ANY" => Ok(None),
        "IN" => Ok(Some(DNSClass::IN)),
        "CH" => Ok(Some(DNSClass::CH)),
        "HS" => Ok(Some(DNSClass::HS)),
        _ => Err(a.err(
            t,
            format!("unknown class '{}'; expected IN, CH, HS or ANY", t.text),
        )),
    }
}

fn parse_type(a: &Args, t: &Token) -> Result<Option<RecordType>, ConfigError> {
    let upper = t.text.to_ascii_uppercase();
    if upper == "ANY" {
        return Ok(None);
    }
    match upper.parse::<RecordType>() {
        Ok(rt) if !matches!(rt, RecordType::Unknown(_)) => Ok(Some(rt)),
        _ => Err(a.err(
            t,
            format!(
                "unknown record type '{}'; expected e.g. A, AAAA or ANY",
                t.text
            ),
        )),
    }
}

fn property(p: &Directive, cfg: &mut TemplateConfig) -> Result<(), ConfigError> {
    let name = p.name.text.as_str();
    let args = Args::new(format!("template: {name}"), p);
    crate::corefile::args::no_block(&args.what, p)?;
    match name {
        "match" => {
            for t in args.some("a regular expression")? {
                let re = Regex::new(&t.text).map_err(|e| {
                    args.err(t, format!("'{}' is not a regular expression: {e}", t.text))
                })?;
                cfg.regex.push(re);
            }
        }
        "answer" | "additional" | "authority" => {
            let mut list = Vec::new();
            for t in args.some("a record template, e.g. \"{{ .Name }} 60 IN A 10.0.0.1\"")? {
                list.push(compile(&t.text).map_err(|m| args.err(t, m))?);
            }
            match name {
                "answer" => cfg.answer.extend(list),
                "additional" => cfg.additional.extend(list),
                _ => cfg.authority.extend(list),
            }
        }
        "rcode" => {
            let t = args.one("a response code, e.g. NXDOMAIN")?;
            cfg.rcode = parse_rcode(&t.text).ok_or_else(|| {
                args.err(
                    t,
                    format!(
                        "unknown response code '{}'; expected e.g. NOERROR, NXDOMAIN, SERVFAIL or REFUSED",
                        t.text
                    ),
                )
            })?;
        }
        "fallthrough" => cfg.fallthrough = parse_fallthrough(&args)?,
        // Deprecated in CoreDNS, which ignores its arguments: CNAMEs are followed through the
        // server itself.
        "upstream" => cfg.upstream = true,
        "ederror" => {
            return Err(
                args.err_here("extended DNS errors are not supported by clusterdns; use rcode")
            );
        }
        _ => {
            return Err(args.err_here(format!(
                "unknown property '{name}'; expected match, answer, additional, authority, rcode, fallthrough or upstream"
            )));
        }
    }
    Ok(())
}

/// Compiles a record template; the error says which action is not understood.
pub fn compile(source: &str) -> Result<Tmpl, String> {
    let mut pieces = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("unclosed action in template '{source}'; expected '}}}}'"))?;
        let mut action = &after[..close];
        rest = &after[close + 2..];
        if let Some(a) = action.strip_prefix('-') {
            action = a;
            text = text.trim_end();
        }
        if let Some(a) = action.strip_suffix('-') {
            action = a;
            rest = rest.trim_start();
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        pieces.push(piece(action.trim()).ok_or_else(|| {
            format!(
                "template action '{{{{{action}}}}}' is not supported; expected .Name, .Zone, .Class, \
                 .Type, .Remote, .Regex, index .Match N, .Group.NAME or index .Group \"NAME\""
            )
        })?);
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(Tmpl {
        source: source.to_string(),
        pieces,
    })
}

fn piece(action: &str) -> Option<Piece> {
    let words: Vec<&str> = action.split_whitespace().collect();
    Some(match words.as_slice() {
        [".Name"] => Piece::Name,
        [".Zone"] => Piece::Zone,
        [".Class"] => Piece::Class,
        [".Type"] => Piece::Type,
        [".Remote"] => Piece::Remote,
        [".Regex"] => Piece::Regex,
        ["index", ".Match", n] => Piece::Match(n.parse().ok()?),
        ["index", ".Group", key] => {
            let key = key.strip_prefix('"')?.strip_suffix('"')?;
            Piece::Group(key.to_string())
        }
        [field] => {
            let key = field.strip_prefix(".Group.")?;
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            Piece::Group(key.to_string())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn templates_keep_corefile_order_and_defaults() {
        let cfg = load_text(
            "example.org:53 {\n template ANY ANY a.example.org {\n  rcode NXDOMAIN\n }\n errors\n template IN AAAA {\n  match ^x ^y\n  answer \"{{ .Name }} 60 IN AAAA ::1\" \"{{ .Name }} 60 IN AAAA ::2\"\n  fallthrough\n  upstream\n }\n}",
        )
        .unwrap();
        let templates: Vec<&TemplateConfig> = cfg.servers[0]
            .plugins
            .iter()
            .filter_map(|p| match p {
                PluginConfig::Template(t) => Some(&**t),
                _ => None,
            })
            .collect();
        assert_eq!(templates.len(), 2);
        let (a, b) = (templates[0], templates[1]);
        assert_eq!((a.class, a.qtype), (None, None));
        assert_eq!(zones(&a.zones), ["a.example.org."]);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(
            a.regex.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            [".*"]
        );
        assert_eq!(a.fallthrough, Fallthrough::Never);
        assert_eq!(
            (b.class, b.qtype),
            (
                Some(hickory_proto::rr::DNSClass::IN),
                Some(hickory_proto::rr::RecordType::AAAA)
            )
        );
        assert_eq!(zones(&b.zones), ["example.org."]);
        assert_eq!(
            b.regex.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            ["^x", "^y"]
        );
        assert_eq!(b.answer.len(), 2);
        assert!(b.upstream);
        assert_eq!(b.fallthrough, Fallthrough::All);
    }

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n template IN\n}",
                "2:2: template: expected a class and a type (e.g. 'template IN A' or 'template ANY AAAA')",
            ),
            (
                ".:53 {\n template IN AAAAA\n}",
                "2:14: template: unknown record type 'AAAAA'; expected e.g. A, AAAA or ANY",
            ),
            (
                ".:53 {\n template ANY ANY {\n  match ^(unclosed\n }\n}",
                "3:9: template: match: '^(unclosed' is not a regular expression",
            ),
            (
                ".:53 {\n template ANY ANY {\n  answer \"{{ .Meta \\\"x\\\" }} A 1.2.3.4\"\n }\n}",
                "3:10: template: answer: template action '{{ .Meta \"x\" }}' is not supported",
            ),
            (
                ".:53 {\n template ANY ANY {\n  rcode MAYBE\n }\n}",
                "3:9: template: rcode: unknown response code 'MAYBE'",
            ),
            (
                ".:53 {\n template ANY ANY {\n  ederror 15 \"blocked\"\n }\n}",
                "3:3: template: ederror: extended DNS errors are not supported by clusterdns; use rcode",
            ),
        ]);
    }
}
