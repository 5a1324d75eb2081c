//! `any`: no arguments, no block.

use crate::corefile::Directive;
use crate::corefile::args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnyConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<AnyConfig, Vec<ConfigError>> {
    args::bare("any", d).map(|_| AnyConfig)
}
