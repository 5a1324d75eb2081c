//! `debug`: no arguments, no block.

use crate::corefile::Directive;
use crate::corefile::args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<DebugConfig, Vec<ConfigError>> {
    args::bare("debug", d).map(|_| DebugConfig)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::assert_errors;

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[(
            ".:53 {\n debug on\n}",
            "2:8: debug: unexpected argument 'on'; this takes none",
        )]);
    }
}
