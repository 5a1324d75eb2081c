//! `cancel [TIMEOUT]`: 5001 ms by default, as CoreDNS.

use std::time::Duration;

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

pub const DEFAULT: Duration = Duration::from_millis(5001);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelConfig {
    pub timeout: Duration,
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<CancelConfig, Vec<ConfigError>> {
    let a = Args::new("cancel", d);
    args::no_block("cancel", d).map_err(|e| vec![e])?;
    let timeout = match a.rest {
        [] => DEFAULT,
        [t] => {
            let d = a.duration(t).map_err(|e| vec![e])?;
            if d.is_zero() {
                return Err(vec![a.err(t, "the timeout must be above 0")]);
            }
            d
        }
        [_, extra, ..] => {
            return Err(vec![a.err(
                extra,
                format!(
                    "unexpected argument '{}'; expected at most TIMEOUT",
                    extra.text
                ),
            )]);
        }
    };
    Ok(CancelConfig { timeout })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn the_timeout_defaults_to_coredns_own() {
        let timeout = |text: &str| {
            plugin(text, |p| match p {
                PluginConfig::Cancel(c) => Some(c.timeout),
                _ => None,
            })
        };
        assert_eq!(timeout(".:53 {\n cancel\n}"), Duration::from_millis(5001));
        assert_eq!(timeout(".:53 {\n cancel 2s\n}"), Duration::from_secs(2));
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n cancel soon\n}",
                "2:9: cancel: 'soon' is not a duration; expected e.g. 5s",
            ),
            (
                ".:53 {\n cancel 0\n}",
                "2:9: cancel: the timeout must be above 0",
            ),
            (
                ".:53 {\n cancel 1s 2s\n}",
                "2:12: cancel: unexpected argument '2s'",
            ),
        ]);
    }
}
