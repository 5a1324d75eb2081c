//! `any`: no arguments, no block.

use crate::config::args;
use crate::config::error::ConfigError;
use crate::config::keys::BlockContext;
use crate::corefile::Directive;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnyConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<AnyConfig, Vec<ConfigError>> {
    args::bare("any", d).map(|_| AnyConfig)
}
