//! `nsid [DATA…]`: the words joined by spaces; the host name when there are none.

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::plugin::shared::hostname;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsidConfig {
    pub data: String,
}

/// What fits in one EDNS option, and then some: longer identifiers are refused.
const MAX: usize = 512;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<NsidConfig, Vec<ConfigError>> {
    let a = Args::new("nsid", d);
    args::no_block("nsid", d).map_err(|e| vec![e])?;
    let data = if a.rest.is_empty() {
        hostname()
    } else {
        a.rest
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if data.len() > MAX {
        return Err(vec![a.err(
            &a.rest[0],
            format!("the identifier is {} bytes; at most {MAX}", data.len()),
        )]);
    }
    Ok(NsidConfig { data })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn words_are_joined_and_the_default_is_the_host_name() {
        let data = |text: &str| {
            plugin(text, |p| match p {
                PluginConfig::Nsid(c) => Some(c.data.clone()),
                _ => None,
            })
        };
        assert_eq!(data(".:53 {\n nsid\n}"), crate::plugin::shared::hostname());
        assert_eq!(data(".:53 {\n nsid Use The Force\n}"), "Use The Force");
    }

    #[test]
    fn errors_name_the_place() {
        let long = "x".repeat(513);
        assert_errors(&[
            (
                &format!(".:53 {{\n nsid {long}\n}}"),
                "2:7: nsid: the identifier is 513 bytes; at most 512",
            ),
            (
                ".:53 {\n nsid a {\n  b\n }\n}",
                "3:3: nsid: unexpected property 'b'; this takes no block",
            ),
        ]);
    }
}
