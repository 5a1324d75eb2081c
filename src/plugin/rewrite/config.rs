//! `rewrite [continue|stop] name|type|class …`: the question changed on its way in, the answer's
//! names changed back on its way out.
//!
//! As CoreDNS reads it:
//! - `rewrite [continue|stop] name [exact|prefix|suffix|substring|regex] FROM TO [answer …]…`,
//!   exact when no match type is given; `stop` (the default) ends the rules at the first that
//!   matched, `continue` goes on to the next;
//! - FROM and TO of the plain match types are lower-cased with a final dot added (so a prefix or a
//!   substring ends at a label boundary, as in CoreDNS); a regex TO may use `{N}` for its groups;
//! - `answer name FROM TO` and `answer value FROM TO` rewrite, by regex, the owners and the
//!   target names (CNAME, DNAME, NS, PTR, MX, SRV) of the answer section; `answer auto` reverts
//!   the question's rewrite there (not for regex); an exact rule always reverts its own name;
//! - `rewrite type FROM TO`, `rewrite class FROM TO`;
//! - the block form `rewrite stop { name regex A B; answer name C D }` is the same rule on lines.
//!
//! The `ttl`, `edns0`, `cname` and `rcode` fields are not supported yet: an error says so.

use hickory_proto::rr::{DNSClass, RecordType};
use regex::Regex;

use crate::corefile::{Directive, Token};

use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug)]
pub struct RewriteRule {
    /// `continue`: later rules apply too.
    pub continue_: bool,
    pub field: Field,
    pub answer: Vec<AnswerRule>,
}

#[derive(Clone, Debug)]
pub enum Field {
    Name(NameMatch),
    Type(RecordType, RecordType),
    Class(DNSClass, DNSClass),
}

#[derive(Clone, Debug)]
pub enum NameMatch {
    Exact(String, String),
    Prefix(String, String),
    Suffix(String, String),
    Substring(String, String),
    Regex(Regex, String),
}

/// A rewrite of the answer section.
#[derive(Clone, Debug)]
pub enum AnswerRule {
    /// An owner that matches becomes the replacement, `{N}` filled with the match's groups.
    Name(Regex, String),
    /// The same for target names in the data.
    Value(Regex, String),
    /// `answer auto`: in an owner, what matches is replaced (and only that).
    Auto(Regex, String),
}

/// `plugin.Name(s).Normalize()`: lower case, final dot.
fn normalize(s: &str) -> String {
    let mut s = s.to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn groups_used(to: &str) -> usize {
    (0..=100)
        .filter(|i| to.contains(&format!("{{{i}}}")))
        .count()
}

fn regex(t: &Token, to: &str) -> Result<Regex, ConfigError> {
    let re = Regex::new(&t.text).map_err(|e| {
        ConfigError::new(
            &t.pos,
            format!("rewrite: '{}' is not a regular expression: {e}", t.text),
        )
    })?;
    if groups_used(to) > re.captures_len() - 1 {
        return Err(ConfigError::new(
            &t.pos,
            format!("rewrite: '{to}' uses more groups than '{}' has", t.text),
        ));
    }
    Ok(re)
}

/// Every `rewrite` line of a block, in Corefile order: one plugin.
#[derive(Clone, Debug)]
pub struct RewriteConfig {
    pub rules: Vec<RewriteRule>,
}

impl RewriteConfig {
    /// The block's next `rewrite` line.
    pub fn absorb(&mut self, next: RewriteConfig) {
        self.rules.extend(next.rules);
    }
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<RewriteConfig, Vec<ConfigError>> {
    parse_rule(d)
        .map(|r| RewriteConfig { rules: vec![r] })
        .map_err(|e| vec![e])
}

/// One `rewrite` line.
pub fn parse_rule(d: &Directive) -> Result<RewriteRule, ConfigError> {
    // The block form is the same words on lines.
    let mut words: Vec<&Token> = d.args.iter().collect();
    for line in d.block.iter().flatten() {
        words.push(&line.name);
        words.extend(line.args.iter());
    }
    let mut rest = words.as_slice();
    let mut continue_ = false;
    if let Some(first) = rest.first() {
        match first.text.as_str() {
            "continue" => {
                continue_ = true;
                rest = &rest[1..];
            }
            "stop" => rest = &rest[1..],
            _ => {}
        }
    }
    let Some((field, args)) = rest.split_first() else {
        return Err(ConfigError::new(
            &d.name.pos,
            "rewrite: expected a field: name, type or class",
        ));
    };
    let (field_value, answer) = match field.text.as_str() {
        "type" => (type_field(field, args)?, &[][..]),
        "class" => (class_field(field, args)?, &[][..]),
        "name" => name_field(field, args)?,
        "ttl" | "edns0" | "cname" | "rcode" => {
            return Err(err(
                field,
                format!(
                    "the '{}' field is not supported by clusterdns yet; supported: name, type, class",
                    field.text
                ),
            ));
        }
        other => {
            return Err(err(
                field,
                format!("unknown field '{other}'; expected name, type or class"),
            ));
        }
    };
    let mut rule = RewriteRule {
        continue_,
        field: field_value,
        answer: Vec::new(),
    };
    if let Field::Name(NameMatch::Exact(from, to)) = &rule.field {
        // CoreDNS reverts an exact rewrite in the answer by itself: its TO as a pattern.
        if let Ok(re) = Regex::new(to) {
            rule.answer.push(AnswerRule::Name(re, from.clone()));
        }
    }
    answer_rules(&mut rule, answer)?;
    Ok(rule)
}

/// An error at a token, said as `rewrite: …`.
fn err(t: &Token, m: String) -> ConfigError {
    ConfigError::new(&t.pos, format!("rewrite: {m}"))
}

/// A field's FROM and TO, exactly two.
fn pair(field: &Token, args: &[&Token], what: &str) -> Result<(), ConfigError> {
    match args {
        [_, _] => Ok(()),
        [] | [_] => Err(err(
            field,
            format!("{}: expected FROM and TO {what}", field.text),
        )),
        [_, _, extra, ..] => Err(err(
            extra,
            format!("{}: unexpected argument '{}'", field.text, extra.text),
        )),
    }
}

/// `type FROM TO`.
fn type_field(field: &Token, args: &[&Token]) -> Result<Field, ConfigError> {
    pair(field, args, "record types")?;
    let t = |tok: &Token| {
        tok.text
            .to_ascii_uppercase()
            .parse::<RecordType>()
            .ok()
            .filter(|t| !matches!(t, RecordType::Unknown(_)))
            .ok_or_else(|| err(tok, format!("type: unknown record type '{}'", tok.text)))
    };
    Ok(Field::Type(t(args[0])?, t(args[1])?))
}

/// `class FROM TO`.
fn class_field(field: &Token, args: &[&Token]) -> Result<Field, ConfigError> {
    pair(field, args, "classes")?;
    let c = |tok: &Token| match tok.text.to_ascii_uppercase().as_str() {
        "IN" => Ok(DNSClass::IN),
        "CH" => Ok(DNSClass::CH),
        "HS" => Ok(DNSClass::HS),
        _ => Err(err(
            tok,
            format!("class: unknown class '{}'; expected IN, CH or HS", tok.text),
        )),
    };
    Ok(Field::Class(c(args[0])?, c(args[1])?))
}

/// `name [exact|prefix|suffix|substring|regex] FROM TO [answer …]`: the match, and the words
/// of its answer rules.
fn name_field<'t>(
    field: &Token,
    args: &'t [&'t Token],
) -> Result<(Field, &'t [&'t Token]), ConfigError> {
    let kinds = ["exact", "prefix", "suffix", "substring", "regex"];
    let (kind, from, to, answer) = match args {
        [k, f, t, answer @ ..] if kinds.contains(&k.text.to_ascii_lowercase().as_str()) => {
            (k.text.to_ascii_lowercase(), *f, *t, answer)
        }
        [f, t] => ("exact".to_string(), *f, *t, &[][..]),
        [f, t, more, ..] if more.text == "answer" => ("exact".to_string(), *f, *t, &args[2..]),
        [k, _, _, ..] => {
            return Err(err(
                k,
                format!(
                    "name: unknown match type '{}'; expected exact, prefix, suffix, substring or regex",
                    k.text
                ),
            ));
        }
        _ => return Err(err(field, "name: expected [TYPE] FROM TO".into())),
    };
    let m = match kind.as_str() {
        "exact" => NameMatch::Exact(normalize(&from.text), normalize(&to.text)),
        "prefix" => NameMatch::Prefix(normalize(&from.text), normalize(&to.text)),
        "suffix" => NameMatch::Suffix(normalize(&from.text), normalize(&to.text)),
        "substring" => NameMatch::Substring(normalize(&from.text), normalize(&to.text)),
        _ => NameMatch::Regex(regex(from, &to.text)?, normalize(&to.text)),
    };
    Ok((Field::Name(m), answer))
}

/// `answer auto`, `answer name FROM TO` and `answer value FROM TO`, as many as are written.
fn answer_rules(rule: &mut RewriteRule, words: &[&Token]) -> Result<(), ConfigError> {
    let mut rest = words;
    while let Some((head, tail)) = rest.split_first() {
        if head.text != "answer" {
            return Err(err(
                head,
                format!("unexpected argument '{}'; expected 'answer'", head.text),
            ));
        }
        match tail {
            [kind, tail @ ..] if kind.text == "auto" => {
                let Field::Name(m) = &rule.field else {
                    unreachable!("answers follow only name rules")
                };
                if let Some(back) = auto_answer(m, kind)? {
                    rule.answer.push(back);
                }
                rest = tail;
            }
            [kind, from, to, tail @ ..] if kind.text == "name" || kind.text == "value" => {
                let re = regex(from, &to.text)?;
                let to = normalize(&to.text);
                rule.answer.push(if kind.text == "name" {
                    AnswerRule::Name(re, to)
                } else {
                    AnswerRule::Value(re, to)
                });
                rest = tail;
            }
            [kind, ..] => {
                return Err(err(
                    kind,
                    format!(
                        "answer: expected 'auto', 'name FROM TO' or 'value FROM TO', found '{}'",
                        kind.text
                    ),
                ));
            }
            [] => return Err(err(head, "answer: expected auto, name or value".into())),
        }
    }
    Ok(())
}

/// `answer auto`: the rewrite undone in the answer, where it can be (an exact rewrite is
/// undone already; a regex cannot be).
fn auto_answer(m: &NameMatch, kind: &Token) -> Result<Option<AnswerRule>, ConfigError> {
    let back = match m {
        NameMatch::Exact(..) => None,
        NameMatch::Prefix(from, to) => Some((format!("^{}", regex::escape(to)), from.clone())),
        NameMatch::Suffix(from, to) => Some((format!("{}$", regex::escape(to)), from.clone())),
        NameMatch::Substring(from, to) => Some((regex::escape(to), from.clone())),
        NameMatch::Regex(..) => {
            return Err(err(
                kind,
                "answer auto: cannot revert a regex rewrite; use 'answer name FROM TO'".into(),
            ));
        }
    };
    Ok(back.map(|(pattern, with)| AnswerRule::Auto(Regex::new(&pattern).expect("escaped"), with)))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n rewrite\n}",
                "2:2: rewrite: expected a field: name, type or class",
            ),
            (
                ".:53 {\n rewrite name fuzzy a b\n}",
                "2:15: rewrite: name: unknown match type 'fuzzy'; expected exact, prefix, suffix, substring or regex",
            ),
            (
                ".:53 {\n rewrite name regex ^(a b {1}\n}",
                "2:21: rewrite: '^(a' is not a regular expression",
            ),
            (
                ".:53 {\n rewrite name regex ^a$ {1}.b\n}",
                "2:21: rewrite: '{1}.b' uses more groups than '^a$' has",
            ),
            (
                ".:53 {\n rewrite name regex ^(a)$ {1}.b answer auto\n}",
                "2:40: rewrite: answer auto: cannot revert a regex rewrite; use 'answer name FROM TO'",
            ),
            (
                ".:53 {\n rewrite name suffix .a .b answer maybe\n}",
                "2:35: rewrite: answer: expected 'auto', 'name FROM TO' or 'value FROM TO', found 'maybe'",
            ),
            (
                ".:53 {\n rewrite ttl example.com 60\n}",
                "2:10: rewrite: the 'ttl' field is not supported by clusterdns yet; supported: name, type, class",
            ),
            (
                ".:53 {\n rewrite type AAAA\n}",
                "2:10: rewrite: type: expected FROM and TO record types",
            ),
            (
                ".:53 {\n rewrite class IN XX\n}",
                "2:19: rewrite: class: unknown class 'XX'; expected IN, CH or HS",
            ),
        ]);
    }
}
