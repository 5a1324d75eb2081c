//! `header { [query|response] set|clear FLAGS… }`: a rule without `query` or `response` is a
//! response rule (CoreDNS's older form). Flags: `aa`, `ra`, `rd`.

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Aa,
    Ra,
    Rd,
}

/// One flag to set (`true`) or clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub flag: Flag,
    pub state: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderConfig {
    /// Applied to the query before the rest of the chain sees it, in order.
    pub query: Vec<Rule>,
    /// Applied to every response, in order (the last rule on a flag wins).
    pub response: Vec<Rule>,
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<HeaderConfig, Vec<ConfigError>> {
    let a = Args::new("header", d);
    a.none().map_err(|e| vec![e])?;
    let mut cfg = HeaderConfig::default();
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        if let Err(e) = rule_line(&mut cfg, p) {
            errors.push(e);
        }
    }
    if errors.is_empty() && cfg.query.is_empty() && cfg.response.is_empty() {
        errors.push(a.err_here("expected a block of rules: { set|clear FLAGS… }"));
    }
    args::finish(cfg, errors)
}

fn rule_line(cfg: &mut HeaderConfig, p: &Directive) -> Result<(), ConfigError> {
    let a = Args::new("header", p);
    let (query, action, flags) = match p.name.text.to_ascii_lowercase().as_str() {
        "set" | "clear" => (false, &p.name, &p.args[..]),
        selector @ ("query" | "response") => match p.args.split_first() {
            Some((action, flags)) => (selector == "query", action, flags),
            None => return Err(a.err_here(format!("{selector}: expected set or clear"))),
        },
        other => {
            return Err(a.err_here(format!(
                "unknown rule '{other}'; expected set, clear, query or response"
            )));
        }
    };
    let state = match action.text.to_ascii_lowercase().as_str() {
        "set" => true,
        "clear" => false,
        other => {
            return Err(a.err(
                action,
                format!("unknown action '{other}'; expected set or clear"),
            ));
        }
    };
    if flags.is_empty() {
        return Err(a.err(action, "expected at least one flag: aa, ra or rd"));
    }
    let rules = if query {
        &mut cfg.query
    } else {
        &mut cfg.response
    };
    for f in flags {
        let flag = match f.text.to_ascii_lowercase().as_str() {
            "aa" => Flag::Aa,
            "ra" => Flag::Ra,
            "rd" => Flag::Rd,
            other => {
                return Err(a.err(f, format!("unknown flag '{other}'; expected aa, ra or rd")));
            }
        };
        rules.push(Rule { flag, state });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Flag, Rule};
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn rules_in_both_forms() {
        let cfg = plugin(
            ".:53 {\n header {\n  set ra aa\n  clear rd\n  query set rd\n  response clear aa\n }\n}",
            |p| match p {
                PluginConfig::Header(c) => Some((**c).clone()),
                _ => None,
            },
        );
        let r = |flag, state| Rule { flag, state };
        assert_eq!(
            cfg.response,
            [
                r(Flag::Ra, true),
                r(Flag::Aa, true),
                r(Flag::Rd, false),
                r(Flag::Aa, false)
            ]
        );
        assert_eq!(cfg.query, [r(Flag::Rd, true)]);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n header\n}",
                "2:2: header: expected a block of rules",
            ),
            (
                ".:53 {\n header {\n  set tc\n }\n}",
                "3:7: header: unknown flag 'tc'; expected aa, ra or rd",
            ),
            (
                ".:53 {\n header {\n  toggle ra\n }\n}",
                "3:3: header: unknown rule 'toggle'",
            ),
            (
                ".:53 {\n header {\n  query flip rd\n }\n}",
                "3:9: header: unknown action 'flip'; expected set or clear",
            ),
            (
                ".:53 {\n header {\n  response set\n }\n}",
                "3:12: header: expected at least one flag",
            ),
        ]);
    }
}
