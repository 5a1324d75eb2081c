//! `chaos [VERSION] [AUTHORS…]`: no block.

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosConfig {
    /// What `version.bind` and `version.server` answer.
    pub version: String,
    /// What `authors.bind` answers, one TXT record each.
    pub authors: Vec<String>,
}

/// The version answered when the Corefile names none.
pub fn default_version() -> String {
    format!("clusterdns-{}", env!("CARGO_PKG_VERSION"))
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<ChaosConfig, Vec<ConfigError>> {
    let a = Args::new("chaos", d);
    args::no_block("chaos", d).map_err(|e| vec![e])?;
    let mut words = a.rest.iter().map(|t| t.text.clone());
    Ok(ChaosConfig {
        version: words.next().unwrap_or_else(default_version),
        authors: {
            let named: Vec<String> = words.collect();
            if named.is_empty() {
                vec!["clusterdns".to_owned()]
            } else {
                named
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    fn chaos(text: &str) -> super::ChaosConfig {
        plugin(text, |p| match p {
            PluginConfig::Chaos(c) => Some((**c).clone()),
            _ => None,
        })
    }

    #[test]
    fn version_and_authors_as_written() {
        let c = chaos(".:53 {\n chaos\n}");
        assert_eq!(c.version, super::default_version());
        assert_eq!(c.authors, ["clusterdns"]);
        let c = chaos(".:53 {\n chaos CoreDNS-001 info@coredns.io ops@example.org\n}");
        assert_eq!(c.version, "CoreDNS-001");
        assert_eq!(c.authors, ["info@coredns.io", "ops@example.org"]);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n chaos v1 {\n  x\n }\n}",
                "3:3: chaos: unexpected property 'x'; this takes no block",
            ),
            (
                ".:53 {\n chaos\n chaos\n}",
                "3:2: chaos: only one 'chaos' directive is allowed per server block",
            ),
        ]);
    }
}
