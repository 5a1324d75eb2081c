//! `minimal`: no arguments, no block.

use crate::corefile::Directive;
use crate::corefile::args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinimalConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<MinimalConfig, Vec<ConfigError>> {
    args::bare("minimal", d).map(|_| MinimalConfig)
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
