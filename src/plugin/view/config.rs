//! `view NAME { expr EXPRESSION… }`: every `expr` line must hold; several `view` lines in a
//! block add their expressions (the name is the first's).

use std::sync::Arc;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::corefile::{Directive, Pos};

use super::expr::Expr;

#[derive(Clone, Debug)]
pub struct ViewConfig {
    pub name: String,
    /// Each expression as written, and compiled.
    pub exprs: Vec<(String, Arc<Expr>)>,
}

impl ViewConfig {
    /// The block's next `view` line.
    pub fn absorb(&mut self, next: ViewConfig) {
        self.exprs.extend(next.exprs);
    }
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<ViewConfig, Vec<ConfigError>> {
    let a = Args::new("view", d);
    let name = a.one("NAME").map_err(|e| vec![e])?.text.clone();
    let mut exprs = Vec::new();
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("view: {}", p.name.text), p);
        if p.name.text != "expr" {
            errors.push(pa.err_here(format!("unknown property '{}'; expected expr", p.name.text)));
            continue;
        }
        if p.args.is_empty() {
            errors.push(pa.err_here("expected an EXPRESSION"));
            continue;
        }
        // The words of the line, joined as written, each with where it starts in the text.
        let mut text = String::new();
        let mut starts: Vec<(usize, &Pos)> = Vec::new();
        for t in &p.args {
            if !text.is_empty() {
                text.push(' ');
            }
            starts.push((text.len(), &t.pos));
            text.push_str(&t.text);
        }
        match Expr::parse(&text) {
            Ok(e) => exprs.push((text, Arc::new(e))),
            Err(e) => {
                let (start, pos) = starts
                    .iter()
                    .rev()
                    .find(|(s, _)| *s <= e.offset)
                    .copied()
                    .unwrap_or((0, &p.args[0].pos));
                let at = Pos {
                    col: pos.col + (e.offset - start) as u32,
                    ..pos.clone()
                };
                errors.push(ConfigError::new(
                    &at,
                    format!("view: expr: expected {}", e.msg),
                ));
            }
        }
    }
    if errors.is_empty() && exprs.is_empty() {
        errors.push(a.err_here("expected a block with 'expr EXPRESSION'"));
    }
    args::finish(ViewConfig { name, exprs }, errors)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn expressions_as_written() {
        let c = plugin(
            ".:53 {\n view split {\n  expr incidr(client_ip(), '10.0.0.0/8')\n  expr type() in ['A', 'AAAA']\n }\n}",
            |p| match p {
                PluginConfig::View(c) => Some((**c).clone()),
                _ => None,
            },
        );
        assert_eq!(c.name, "split");
        let texts: Vec<&str> = c.exprs.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            texts,
            [
                "incidr(client_ip(), '10.0.0.0/8')",
                "type() in ['A', 'AAAA']"
            ]
        );
    }

    #[test]
    fn an_expression_that_does_not_parse_is_an_error_at_its_position() {
        assert_errors(&[
            (
                ".:53 {\n view v {\n  expr type() == \n }\n}",
                "3:17: view: expr: expected a value",
            ),
            (
                ".:53 {\n view v {\n  expr incidr(clientip(), '10.0.0.0/8')\n }\n}",
                "3:15: view: expr: expected a known function, not 'clientip'",
            ),
            (
                ".:53 {\n view v {\n  expr name() matches '(('\n }\n}",
                "3:23: view: expr: expected a regular expression",
            ),
            (
                ".:53 {\n view {\n  expr true\n }\n}",
                "2:2: view: expected NAME",
            ),
            (
                ".:53 {\n view v\n}",
                "2:2: view: expected a block with 'expr EXPRESSION'",
            ),
            (
                ".:53 {\n view v {\n  match true\n }\n}",
                "3:3: view: match: unknown property 'match'; expected expr",
            ),
        ]);
    }
}
