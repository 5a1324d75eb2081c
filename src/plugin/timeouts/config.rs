//! `timeouts { read D; write D; idle D; maxtcpqueries N }`: at least one; each duration from 1 s
//! to 24 h, N positive or -1 (no limit, the default).

use std::time::Duration;

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeoutsConfig {
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    pub idle: Option<Duration>,
    /// `maxtcpqueries`: answers a TCP or TLS connection carries before it is closed.
    pub max_queries: Option<u32>,
    /// `maxtcpqueries -1` was written (no limit, said explicitly).
    pub unlimited: bool,
}

const MIN: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(24 * 3600);

pub fn parse(d: &Directive, _: &BlockContext) -> Result<TimeoutsConfig, Vec<ConfigError>> {
    let a = Args::new("timeouts", d);
    a.none().map_err(|e| vec![e])?;
    let mut cfg = TimeoutsConfig::default();
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("timeouts: {}", p.name.text), p);
        if p.name.text == "maxtcpqueries" {
            match max_queries(&pa) {
                Ok(Some(n)) => cfg.max_queries = Some(n),
                Ok(None) => cfg.unlimited = true,
                Err(e) => errors.push(e),
            }
            continue;
        }
        let slot = match p.name.text.as_str() {
            "read" => &mut cfg.read,
            "write" => &mut cfg.write,
            "idle" => &mut cfg.idle,
            other => {
                errors.push(pa.err_here(format!(
                    "unknown property '{other}'; expected read, write, idle or maxtcpqueries"
                )));
                continue;
            }
        };
        let value = pa.one("a duration").and_then(|t| {
            let d = pa.duration(t)?;
            if !(MIN..=MAX).contains(&d) {
                return Err(pa.err(t, "the timeout must be from 1s to 24h"));
            }
            Ok(d)
        });
        match value {
            Ok(d) => *slot = Some(d),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() && cfg == TimeoutsConfig::default() {
        errors.push(a.err_here("expected a block with read, write, idle or maxtcpqueries"));
    }
    args::finish(cfg, errors)
}

/// `maxtcpqueries N`: a positive count, or -1 for no limit (`None`).
fn max_queries(a: &Args) -> Result<Option<u32>, ConfigError> {
    let t = a.one("a positive number of queries, or -1 for no limit")?;
    match t.text.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n > 0 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        _ => Err(a.err(
            t,
            format!(
                "'{}' is not a positive number of queries (or -1 for no limit)",
                t.text
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn each_timeout_as_written() {
        let cfg = plugin(
            ".:53 {\n timeouts {\n  read 10s\n  idle 1m\n }\n}",
            |p| match p {
                PluginConfig::Timeouts(c) => Some((**c).clone()),
                _ => None,
            },
        );
        assert_eq!(cfg.read, Some(Duration::from_secs(10)));
        assert_eq!(cfg.write, None);
        assert_eq!(cfg.idle, Some(Duration::from_secs(60)));
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n timeouts\n}",
                "2:2: timeouts: expected a block with read, write, idle or maxtcpqueries",
            ),
            (
                ".:53 {\n timeouts {\n  read 500ms\n }\n}",
                "3:8: timeouts: read: the timeout must be from 1s to 24h",
            ),
            (
                ".:53 {\n timeouts {\n  linger 5s\n }\n}",
                "3:3: timeouts: linger: unknown property 'linger'",
            ),
            (
                ".:53 {\n timeouts {\n  idle\n }\n}",
                "3:3: timeouts: idle: expected a duration",
            ),
            (
                ".:53 {\n timeouts {\n  maxtcpqueries 0\n }\n}",
                "3:17: timeouts: maxtcpqueries: '0' is not a positive number of queries (or -1 for no limit)",
            ),
            (
                ".:53 {\n timeouts {\n  maxtcpqueries lots\n }\n}",
                "3:17: timeouts: maxtcpqueries: 'lots' is not a positive number",
            ),
        ]);
    }

    #[test]
    fn maxtcpqueries_is_a_count_or_minus_one() {
        let pick = |text: &str| {
            plugin(text, |p| match p {
                PluginConfig::Timeouts(c) => Some((**c).clone()),
                _ => None,
            })
        };
        let c = pick(".:53 {\n timeouts {\n  maxtcpqueries 128\n }\n}");
        assert_eq!(c.max_queries, Some(128));
        // -1 alone is a whole block: no limit, as the default.
        let c = pick(".:53 {\n timeouts {\n  maxtcpqueries -1\n }\n}");
        assert_eq!(c.max_queries, None);
    }
}
