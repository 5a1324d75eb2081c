//! `dns64 [PREFIX] { prefix PREFIX; translate_all; allow_ipv4 }`: PREFIX an IPv6 prefix of a
//! length RFC 6052 allows (32, 40, 48, 56, 64 or 96), `64:ff9b::/96` by default.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::corefile::{Directive, Token};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dns64Config {
    pub prefix: Ipv6Net,
    /// Synthesize even where the name has AAAA records.
    pub translate_all: bool,
    /// Synthesize for clients that asked over IPv4 too.
    pub allow_ipv4: bool,
}

/// The well-known prefix (RFC 6052).
pub fn well_known() -> Ipv6Net {
    Ipv6Net::new(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96).expect("a valid prefix")
}

fn prefix(a: &Args, t: &Token) -> Result<Ipv6Net, ConfigError> {
    let net: Ipv6Net = t
        .text
        .parse()
        .map_err(|_| a.err(t, format!("'{}' is not an IPv6 prefix", t.text)))?;
    if ![32, 40, 48, 56, 64, 96].contains(&net.prefix_len()) {
        return Err(a.err(
            t,
            format!(
                "'{}': the prefix length must be 32, 40, 48, 56, 64 or 96 (RFC 6052)",
                t.text
            ),
        ));
    }
    Ok(net.trunc())
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<Dns64Config, Vec<ConfigError>> {
    let a = Args::new("dns64", d);
    let mut cfg = Dns64Config {
        prefix: well_known(),
        translate_all: false,
        allow_ipv4: false,
    };
    match a.rest {
        [] => {}
        [t] => cfg.prefix = prefix(&a, t).map_err(|e| vec![e])?,
        [_, extra, ..] => {
            return Err(vec![a.err(
                extra,
                format!(
                    "unexpected argument '{}'; expected at most PREFIX",
                    extra.text
                ),
            )]);
        }
    }
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("dns64: {}", p.name.text), p);
        let result = match p.name.text.as_str() {
            "prefix" => pa
                .one("an IPv6 prefix")
                .and_then(|t| prefix(&pa, t))
                .map(|n| cfg.prefix = n),
            "translate_all" => pa.none().map(|_| cfg.translate_all = true),
            "allow_ipv4" => pa.none().map(|_| cfg.allow_ipv4 = true),
            other => Err(pa.err_here(format!(
                "unknown property '{other}'; expected prefix, translate_all or allow_ipv4"
            ))),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    args::finish(cfg, errors)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    fn dns64(text: &str) -> super::Dns64Config {
        plugin(text, |p| match p {
            PluginConfig::Dns64(c) => Some((**c).clone()),
            _ => None,
        })
    }

    #[test]
    fn prefix_and_options() {
        let c = dns64(".:53 {\n dns64\n}");
        assert_eq!(c.prefix.to_string(), "64:ff9b::/96");
        assert!(!c.translate_all && !c.allow_ipv4);
        let c = dns64(".:53 {\n dns64 64:1337::/96\n}");
        assert_eq!(c.prefix.to_string(), "64:1337::/96");
        let c =
            dns64(".:53 {\n dns64 {\n  prefix 2001:db8::/32\n  translate_all\n  allow_ipv4\n }\n}");
        assert_eq!(c.prefix.to_string(), "2001:db8::/32");
        assert!(c.translate_all && c.allow_ipv4);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n dns64 10.0.0.0/8\n}",
                "2:8: dns64: '10.0.0.0/8' is not an IPv6 prefix",
            ),
            (
                ".:53 {\n dns64 64:ff9b::/80\n}",
                "2:8: dns64: '64:ff9b::/80': the prefix length must be 32, 40, 48, 56, 64 or 96",
            ),
            (
                ".:53 {\n dns64 {\n  translate_all yes\n }\n}",
                "3:17: dns64: translate_all: unexpected argument 'yes'",
            ),
            (
                ".:53 {\n dns64 {\n  ipv4\n }\n}",
                "3:3: dns64: ipv4: unknown property 'ipv4'",
            ),
        ]);
    }
}
