//! `shed`: no arguments, no block.

use crate::corefile::Directive;
use crate::corefile::args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShedConfig;

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<ShedConfig, Vec<ConfigError>> {
    args::bare("shed", d)?;
    // As CoreDNS: a UDP listener's concern, so plain DNS blocks only.
    if ctx.tls {
        return Err(vec![ConfigError::new(
            &d.name.pos,
            "shed: only plain DNS server blocks shed (it protects UDP listeners); this block is tls://",
        )]);
    }
    Ok(ShedConfig)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::assert_errors;

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n shed 1024\n}",
                "2:7: shed: unexpected argument '1024'; this takes none",
            ),
            (
                "tls://.:853 {\n tls cert.pem key.pem\n shed\n}",
                "3:2: shed: only plain DNS server blocks shed",
            ),
        ]);
    }
}
