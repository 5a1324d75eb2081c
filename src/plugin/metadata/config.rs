//! `metadata [ZONES…]`: no block.

use hickory_proto::rr::Name;

use crate::corefile::Directive;
use crate::corefile::args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, zones_or_block};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataConfig {
    pub zones: Vec<Name>,
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<MetadataConfig, Vec<ConfigError>> {
    args::no_block("metadata", d).map_err(|e| vec![e])?;
    Ok(MetadataConfig {
        zones: zones_or_block(&d.args, ctx)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, plugin, zones};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn zones_default_to_the_blocks() {
        let z = |text: &str| {
            plugin(text, |p| match p {
                PluginConfig::Metadata(c) => Some(zones(&c.zones)),
                _ => None,
            })
        };
        assert_eq!(z("cluster.local:53 {\n metadata\n}"), ["cluster.local."]);
        assert_eq!(z(".:53 {\n metadata example.org\n}"), ["example.org."]);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[(
            ".:53 {\n metadata {\n  x\n }\n}",
            "3:3: metadata: unexpected property 'x'; this takes no block",
        )]);
    }
}
