//! `bufsize [SIZE]`: 1232 by default (DNS flag day 2020, as CoreDNS), from 512 to 4096.

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

pub const DEFAULT: u16 = 1232;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufsizeConfig {
    pub size: u16,
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<BufsizeConfig, Vec<ConfigError>> {
    let a = Args::new("bufsize", d);
    args::no_block("bufsize", d).map_err(|e| vec![e])?;
    let size = match a.rest {
        [] => DEFAULT,
        [t] => t
            .text
            .parse::<u16>()
            .ok()
            .filter(|s| (512..=4096).contains(s))
            .ok_or_else(|| {
                vec![a.err(t, format!("'{}' is not a size from 512 to 4096", t.text))]
            })?,
        [_, extra, ..] => {
            return Err(vec![a.err(
                extra,
                format!(
                    "unexpected argument '{}'; expected at most SIZE",
                    extra.text
                ),
            )]);
        }
    };
    Ok(BufsizeConfig { size })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn the_size_defaults_to_1232() {
        let size = |text: &str| {
            plugin(text, |p| match p {
                PluginConfig::Bufsize(c) => Some(c.size),
                _ => None,
            })
        };
        assert_eq!(size(".:53 {\n bufsize\n}"), 1232);
        assert_eq!(size(".:53 {\n bufsize 512\n}"), 512);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n bufsize 100\n}",
                "2:10: bufsize: '100' is not a size from 512 to 4096",
            ),
            (
                ".:53 {\n bufsize 1232 4096\n}",
                "2:15: bufsize: unexpected argument '4096'; expected at most SIZE",
            ),
        ]);
    }
}
