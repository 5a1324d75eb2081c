//! `erratic [{ drop [AMOUNT]; truncate [AMOUNT]; delay [AMOUNT [DURATION]] }]`: with no block,
//! every second query is dropped, as in CoreDNS.

use std::time::Duration;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::corefile::{Directive, Token};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErraticConfig {
    /// Every AMOUNT-th query is dropped (0: none).
    pub drop: u64,
    /// Every AMOUNT-th answer has TC set.
    pub truncate: u64,
    /// Every AMOUNT-th answer waits `duration`.
    pub delay: u64,
    pub duration: Duration,
}

const DEFAULT_AMOUNT: u64 = 2;
const DEFAULT_DELAY: Duration = Duration::from_millis(100);

fn amount(a: &Args, t: Option<&Token>) -> Result<u64, ConfigError> {
    let Some(t) = t else {
        return Ok(DEFAULT_AMOUNT);
    };
    t.text
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| a.err(t, format!("'{}' is not a whole number above 0", t.text)))
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<ErraticConfig, Vec<ConfigError>> {
    Args::new("erratic", d).none().map_err(|e| vec![e])?;
    let mut cfg = ErraticConfig {
        duration: DEFAULT_DELAY,
        ..ErraticConfig::default()
    };
    let mut errors = Vec::new();
    let mut any = false;
    for p in d.block.iter().flatten() {
        any = true;
        let a = Args::new(format!("erratic: {}", p.name.text), p);
        let result = match p.name.text.as_str() {
            "drop" | "truncate" if p.args.len() > 1 => Err(a.err(
                &p.args[1],
                format!(
                    "unexpected argument '{}'; expected at most AMOUNT",
                    p.args[1].text
                ),
            )),
            "drop" => amount(&a, p.args.first()).map(|n| cfg.drop = n),
            "truncate" => amount(&a, p.args.first()).map(|n| cfg.truncate = n),
            "delay" => amount(&a, p.args.first()).and_then(|n| {
                cfg.delay = n;
                match &p.args[..] {
                    [] | [_] => Ok(()),
                    [_, d] => a.duration(d).map(|d| cfg.duration = d),
                    [_, _, extra, ..] => Err(a.err(
                        extra,
                        format!(
                            "unexpected argument '{}'; expected at most AMOUNT DURATION",
                            extra.text
                        ),
                    )),
                }
            }),
            other => Err(a.err_here(format!(
                "unknown property '{other}'; expected drop, truncate or delay"
            ))),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if !any {
        cfg.drop = DEFAULT_AMOUNT;
    }
    args::finish(cfg, errors)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    fn erratic(text: &str) -> super::ErraticConfig {
        plugin(text, |p| match p {
            PluginConfig::Erratic(c) => Some((**c).clone()),
            _ => None,
        })
    }

    #[test]
    fn defaults_as_coredns() {
        let c = erratic(".:53 {\n erratic\n}");
        assert_eq!((c.drop, c.truncate, c.delay), (2, 0, 0));
        let c = erratic(".:53 {\n erratic {\n  truncate\n  delay 3 50ms\n }\n}");
        assert_eq!((c.drop, c.truncate, c.delay), (0, 2, 3));
        assert_eq!(c.duration, Duration::from_millis(50));
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n erratic {\n  drop 0\n }\n}",
                "3:8: erratic: drop: '0' is not a whole number above 0",
            ),
            (
                ".:53 {\n erratic {\n  delay 2 soon\n }\n}",
                "3:11: erratic: delay: 'soon' is not a duration",
            ),
            (
                ".:53 {\n erratic {\n  fail 2\n }\n}",
                "3:3: erratic: fail: unknown property 'fail'; expected drop, truncate or delay",
            ),
        ]);
    }
}
