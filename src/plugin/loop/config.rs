//! `loop`: no arguments, no block.

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<LoopConfig, Vec<ConfigError>> {
    Args::new("loop", d)
        .none()
        .and_then(|_| args::no_block("loop", d))
        .map(|_| LoopConfig)
        .map_err(|e| vec![e])
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[(
            ".:53 {\n loop now\n}",
            "2:7: loop: unexpected argument 'now'; this takes none",
        )]);
    }
}
