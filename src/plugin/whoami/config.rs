//! `whoami`: no arguments, no block.

use crate::corefile::Directive;
use crate::corefile::args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoamiConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<WhoamiConfig, Vec<ConfigError>> {
    args::bare("whoami", d).map(|_| WhoamiConfig)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::assert_errors;

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n whoami me\n}",
                "2:9: whoami: unexpected argument 'me'; this takes none",
            ),
            (
                ".:53 {\n whoami {\n  me\n }\n}",
                "3:3: whoami: unexpected property 'me'; this takes no block",
            ),
        ]);
    }
}
