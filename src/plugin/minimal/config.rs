//! `minimal`: no arguments, no block.

use crate::config::args::{self, Args};
use crate::config::error::ConfigError;
use crate::config::keys::BlockContext;
use crate::corefile::Directive;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinimalConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<MinimalConfig, Vec<ConfigError>> {
    Args::new("minimal", d)
        .none()
        .and_then(|_| args::no_block("minimal", d))
        .map(|_| MinimalConfig)
        .map_err(|e| vec![e])
}

#[cfg(test)]
mod tests {
    use crate::config::testing::assert_errors;

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[(
            ".:53 {\n minimal yes\n}",
            "2:10: minimal: unexpected argument 'yes'; this takes none",
        )]);
    }
}
