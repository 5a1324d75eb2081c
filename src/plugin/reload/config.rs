//! `reload [INTERVAL [JITTER]]`: re-read the Corefile when its content changes.

use std::time::Duration;

use crate::corefile::Directive;

use crate::corefile::args::Args;
use crate::corefile::args::{no_block, parse_duration};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadConfig {
    pub interval: Duration,
    pub jitter: Duration,
}

pub const MIN_INTERVAL: Duration = Duration::from_secs(2);
pub const MIN_JITTER: Duration = Duration::from_secs(1);

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            jitter: Duration::from_secs(15),
        }
    }
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<ReloadConfig, Vec<ConfigError>> {
    let args = Args::new("reload", d);
    no_block("reload", d).map_err(|e| vec![e])?;
    let mut cfg = ReloadConfig::default();
    let durations: Vec<_> = args
        .rest
        .iter()
        .map(|t| {
            parse_duration(&t.text).ok_or_else(|| {
                args.err(
                    t,
                    format!("'{}' is not a duration; expected e.g. 30s", t.text),
                )
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| vec![e])?;
    match durations[..] {
        [] => {}
        [i] => cfg.interval = i,
        [i, j] => (cfg.interval, cfg.jitter) = (i, j),
        _ => {
            return Err(vec![args.err(
                &args.rest[2],
                "unexpected argument; expected at most INTERVAL and JITTER",
            )]);
        }
    }
    if cfg.interval < MIN_INTERVAL {
        return Err(vec![
            args.err(&args.rest[0], "the interval must be at least 2s"),
        ]);
    }
    if cfg.jitter < MIN_JITTER {
        return Err(vec![
            args.err(&args.rest[1], "the jitter must be at least 1s"),
        ]);
    }
    // As CoreDNS: a jitter over half the interval is cut to half of it.
    cfg.jitter = cfg.jitter.min(cfg.interval / 2);
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n reload 1s\n}",
                "2:9: reload: the interval must be at least 2s",
            ),
            (
                ".:53 {\n reload 10s 500ms\n}",
                "2:13: reload: the jitter must be at least 1s",
            ),
            (
                ".:53 {\n reload soon\n}",
                "2:9: reload: 'soon' is not a duration",
            ),
        ]);
    }
}
