//! `any`: no arguments, no block.

use crate::config::args::{self, Args};
use crate::config::error::ConfigError;
use crate::config::keys::BlockContext;
use crate::corefile::Directive;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnyConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<AnyConfig, Vec<ConfigError>> {
    Args::new("any", d)
        .none()
        .and_then(|_| args::no_block("any", d))
        .map(|_| AnyConfig)
        .map_err(|e| vec![e])
}
