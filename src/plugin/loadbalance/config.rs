//! `loadbalance [round_robin]`. The `weighted` policy is not supported.

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadbalanceConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<LoadbalanceConfig, Vec<ConfigError>> {
    parse_one(d).map(|_| LoadbalanceConfig).map_err(|e| vec![e])
}

fn parse_one(d: &Directive) -> Result<(), ConfigError> {
    let a = Args::new("loadbalance", d);
    match a.rest {
        [] => {}
        [p] if p.text == "round_robin" => {}
        [p, ..] if p.text == "weighted" => {
            return Err(a.err(p, "the weighted policy is not supported; use round_robin"));
        }
        [p] => {
            return Err(a.err(
                p,
                format!("unknown policy '{}'; expected round_robin", p.text),
            ));
        }
        [_, extra, ..] => {
            return Err(a.err(
                extra,
                format!(
                    "unexpected argument '{}'; expected at most round_robin",
                    extra.text
                ),
            ));
        }
    }
    args::no_block("loadbalance", d)
}
