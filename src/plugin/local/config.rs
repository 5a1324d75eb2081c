//! `local [{ localhost_prefix on|off }]`.

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalConfig {
    /// Whether `localhost.ANYTHING` is answered as `localhost` (on by default, as in CoreDNS).
    pub localhost_prefix: bool,
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<LocalConfig, Vec<ConfigError>> {
    let a = Args::new("local", d);
    a.none().map_err(|e| vec![e])?;
    let mut cfg = LocalConfig {
        localhost_prefix: true,
    };
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let a = Args::new(format!("local: {}", p.name.text), p);
        match p.name.text.as_str() {
            "localhost_prefix" => match a.one("on or off") {
                Ok(t) if t.text == "on" => cfg.localhost_prefix = true,
                Ok(t) if t.text == "off" => cfg.localhost_prefix = false,
                Ok(t) => errors.push(a.err(t, format!("'{}': expected on or off", t.text))),
                Err(e) => errors.push(e),
            },
            other => errors.push(a.err_here(format!(
                "unknown property '{other}'; expected localhost_prefix"
            ))),
        }
    }
    args::finish(cfg, errors)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn the_prefix_is_on_unless_turned_off() {
        let prefix = |text: &str| {
            plugin(text, |p| match p {
                PluginConfig::Local(c) => Some(c.localhost_prefix),
                _ => None,
            })
        };
        assert!(prefix(".:53 {\n local\n}"));
        assert!(!prefix(".:53 {\n local {\n  localhost_prefix off\n }\n}"));
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n local here\n}",
                "2:8: local: unexpected argument 'here'; this takes none",
            ),
            (
                ".:53 {\n local {\n  localhost_prefix maybe\n }\n}",
                "3:20: local: localhost_prefix: 'maybe': expected on or off",
            ),
            (
                ".:53 {\n local {\n  prefix on\n }\n}",
                "3:3: local: prefix: unknown property 'prefix'; expected localhost_prefix",
            ),
        ]);
    }
}
