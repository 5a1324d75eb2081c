//! `hosts [FILE [ZONES…]] { INLINE…; ttl N; reload D; no_reverse; fallthrough [ZONES…] }`:
//! names from a hosts(5) file and from lines written in the block.
//!
//! As CoreDNS: FILE defaults to `/etc/hosts` and may be missing (a warning at start, served once
//! it appears); ZONES default to the server block's; `ttl` is 1 to 65535 (default 3600); `reload`
//! is how often the file is checked (default 5s, `0` never); inline lines come before
//! `fallthrough`. A relative FILE is read from the Corefile's folder, as every path in ours.
//! Unlike CoreDNS, an inline line that is not `IP NAME…` is an error, not skipped in silence.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;

use crate::corefile::{Directive, Pos};
use crate::dns::name;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, relative_path, zones_or_block};
use crate::plugin::shared::fallthrough::{Fallthrough, parse_fallthrough};

pub const DEFAULT_FILE: &str = "/etc/hosts";
pub const DEFAULT_TTL: u32 = 3600;
pub const DEFAULT_RELOAD: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsConfig {
    pub path: PathBuf,
    /// Where the file was named (the directive, when it was not): for messages.
    pub pos: Pos,
    /// Names outside these are ignored in the file and passed on in queries (PTR excepted).
    pub zones: Vec<Name>,
    /// The block's `IP NAME…` lines, in order.
    pub inline: Vec<(IpAddr, Vec<Name>)>,
    pub ttl: u32,
    /// Zero: read once.
    pub reload: Duration,
    /// Answer PTR queries for the addresses (off with `no_reverse`).
    pub reverse: bool,
    pub fallthrough: Fallthrough,
    /// `fallthrough_unsupported`: a name the table has, asked for a type it does not serve
    /// (TXT, HTTPS, …), goes on where `fallthrough` covers it.
    pub fallthrough_unsupported: bool,
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<HostsConfig, Vec<ConfigError>> {
    let (path, pos, zones) = match d.args.split_first() {
        None => (
            PathBuf::from(DEFAULT_FILE),
            d.name.pos.clone(),
            ctx.zones.clone(),
        ),
        Some((file, zones)) => (
            relative_path(&file.pos, &file.text),
            file.pos.clone(),
            zones_or_block(zones, ctx)?,
        ),
    };
    let mut cfg = HostsConfig {
        path,
        pos,
        zones,
        inline: Vec::new(),
        ttl: DEFAULT_TTL,
        reload: DEFAULT_RELOAD,
        reverse: true,
        fallthrough: Fallthrough::Never,
        fallthrough_unsupported: false,
    };
    let mut errors = Vec::new();
    let mut fallthrough_at: Option<Pos> = None;
    for p in d.block.iter().flatten() {
        if let Err(e) = property(p, &mut cfg, &mut fallthrough_at) {
            errors.push(e);
        }
    }
    if cfg.fallthrough_unsupported
        && cfg.fallthrough == Fallthrough::Never
        && let Some(p) = d
            .block
            .iter()
            .flatten()
            .find(|p| p.name.text == "fallthrough_unsupported")
    {
        errors.push(ConfigError::new(
            &p.name.pos,
            "hosts: fallthrough_unsupported: needs fallthrough, whose zones it goes on for",
        ));
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn property(
    p: &Directive,
    cfg: &mut HostsConfig,
    fallthrough_at: &mut Option<Pos>,
) -> Result<(), ConfigError> {
    let name = p.name.text.as_str();
    let args = Args::new(format!("hosts: {name}"), p);
    crate::corefile::args::no_block(&args.what, p)?;
    match name {
        "ttl" => {
            let t = args.one("a TTL in seconds")?;
            cfg.ttl = t
                .text
                .parse::<u32>()
                .ok()
                .filter(|v| (1..=65535).contains(v))
                .ok_or_else(|| args.err(t, format!("bad TTL '{}'; expected 1 to 65535", t.text)))?;
        }
        "reload" => cfg.reload = args.duration(args.one("a duration, e.g. 15s")?)?,
        "no_reverse" => {
            args.none()?;
            cfg.reverse = false;
        }
        "fallthrough" => {
            cfg.fallthrough = parse_fallthrough(&args)?;
            *fallthrough_at = Some(p.name.pos.clone());
        }
        "fallthrough_unsupported" => {
            args.none()?;
            cfg.fallthrough_unsupported = true;
        }
        _ => {
            let Ok(ip) = strip_zone(name).parse::<IpAddr>() else {
                return Err(ConfigError::new(
                    &p.name.pos,
                    format!(
                        "hosts: unknown property '{name}'; expected an inline 'IP NAME…' line, \
                         ttl, reload, no_reverse, fallthrough or fallthrough_unsupported"
                    ),
                ));
            };
            if let Some(at) = fallthrough_at {
                return Err(ConfigError::new(
                    &p.name.pos,
                    format!("hosts: inline entries must come before fallthrough (at {at})"),
                ));
            }
            let hosts = args.some("at least one name after the address")?;
            let mut list = Vec::with_capacity(hosts.len());
            for h in hosts {
                let n = name::fqdn(&h.text).ok_or_else(|| {
                    ConfigError::new(
                        &h.pos,
                        format!("hosts: '{}' is not a valid host name", h.text),
                    )
                })?;
                list.push(n.to_lowercase());
            }
            cfg.inline.push((ip, list));
        }
    }
    Ok(())
}

/// `fe80::1%eth0` → `fe80::1`: hosts files may carry a zone index, which DNS has no use for.
pub fn strip_zone(ip: &str) -> &str {
    ip.split_once('%').map_or(ip, |(a, _)| a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn hosts_properties() {
        let cfg = load_text(
            "cluster.local:53 {\n hosts\n}\n.:53 {\n hosts NodeHosts example.org 10.0.0.0/24 {\n  ttl 60\n  reload 0\n  10.0.0.1 a.example.org B\n  fe80::1%eth0 c\n  no_reverse\n  fallthrough example.org\n }\n}",
        )
        .unwrap();
        let hosts = |i: usize| match &cfg.servers[i].plugins[..] {
            [PluginConfig::Hosts(h)] => (**h).clone(),
            other => panic!("{other:?}"),
        };
        let h = hosts(0);
        assert_eq!(h.path, std::path::PathBuf::from("/etc/hosts"));
        assert_eq!(zones(&h.zones), ["cluster.local."]);
        assert_eq!(
            (h.ttl, h.reload, h.reverse),
            (3600, Duration::from_secs(5), true)
        );
        assert_eq!(h.fallthrough, Fallthrough::Never);
        let h = hosts(1);
        assert_eq!(h.path, std::path::PathBuf::from("/etc/coredns/NodeHosts"));
        assert_eq!(zones(&h.zones), ["example.org.", "0.0.10.in-addr.arpa."]);
        assert_eq!((h.ttl, h.reload, h.reverse), (60, Duration::ZERO, false));
        let inline: Vec<(String, Vec<String>)> = h
            .inline
            .iter()
            .map(|(ip, n)| (ip.to_string(), zones(n)))
            .collect();
        assert_eq!(
            inline,
            [
                (
                    "10.0.0.1".to_string(),
                    vec!["a.example.org.".to_string(), "b.".to_string()]
                ),
                ("fe80::1".to_string(), vec!["c.".to_string()]),
            ]
        );
        assert_eq!(
            h.fallthrough,
            Fallthrough::Zones(vec![Name::from_ascii("example.org.").unwrap()])
        );
    }

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n hosts {\n  fallthrough_unsupported\n }\n}",
                "3:3: hosts: fallthrough_unsupported: needs fallthrough",
            ),
            (
                ".:53 {\n hosts {\n  fallthrough_unsupported now\n }\n}",
                "3:27: hosts: fallthrough_unsupported: unexpected argument 'now'",
            ),
            (
                ".:53 {\n hosts {\n  fallthrough\n  10.0.0.1 late\n }\n}",
                "4:3: hosts: inline entries must come before fallthrough (at /etc/coredns/Corefile:3:3)",
            ),
            (
                ".:53 {\n hosts {\n  ttl 0\n }\n}",
                "3:7: hosts: ttl: bad TTL '0'; expected 1 to 65535",
            ),
            (
                ".:53 {\n hosts {\n  reload often\n }\n}",
                "3:10: hosts: reload: 'often' is not a duration",
            ),
            (
                ".:53 {\n hosts {\n  10.0.0.1\n }\n}",
                "3:3: hosts: 10.0.0.1: expected at least one name after the address",
            ),
            (
                ".:53 {\n hosts {\n  no_reverse please\n }\n}",
                "3:14: hosts: no_reverse: unexpected argument 'please'",
            ),
            (
                ".:53 {\n hosts {\n  nameserver 10.0.0.1\n }\n}",
                "3:3: hosts: unknown property 'nameserver'; expected an inline 'IP NAME…' line, ttl, reload, no_reverse, fallthrough or fallthrough_unsupported",
            ),
        ]);
    }
}
