//! `ratelimit LIMIT { whitelist ADDRESS… }`: UDP queries answered per second from one source
//! address, as the `ratelimit` plugin built into many CoreDNS images reads it (not part of
//! CoreDNS's own plugin.cfg). Off unless set: see the README's "Hostile input".

use std::net::IpAddr;

use crate::corefile::Directive;
use crate::vocab::SourceLimitConfig;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

/// `ratelimit`'s settings: the server's per-source limit, which it applies before any handler.
pub type RatelimitConfig = SourceLimitConfig;

pub fn parse(d: &Directive, _: &BlockContext) -> Result<RatelimitConfig, Vec<ConfigError>> {
    parse_one(d).map_err(|e| vec![e])
}

fn parse_one(d: &Directive) -> Result<RatelimitConfig, ConfigError> {
    let a = Args::new("ratelimit", d);
    let t = a.one("LIMIT, the queries per second one source address may ask")?;
    let limit = t
        .text
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            a.err(
                t,
                format!("'{}' is not a number of queries above 0", t.text),
            )
        })?;
    let mut cfg = SourceLimitConfig {
        limit,
        exempt: Vec::new(),
    };
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("ratelimit: {}", p.name.text), p);
        if p.name.text != "whitelist" {
            return Err(pa.err_here(format!(
                "unknown property '{}'; expected whitelist",
                p.name.text
            )));
        }
        for t in pa.some("an IP address")? {
            let ip: IpAddr = t
                .text
                .parse()
                .map_err(|_| pa.err(t, format!("'{}' is not an IP address", t.text)))?;
            if !cfg.exempt.contains(&ip) {
                cfg.exempt.push(ip);
            }
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn ratelimit_reads_a_limit_and_exempt_addresses() {
        let cfg = load_text(
            ".:53 {\n ratelimit 50 {\n  whitelist 127.0.0.1 ::1\n  whitelist 127.0.0.1\n }\n}",
        )
        .unwrap();
        let [PluginConfig::Ratelimit(r)] = &cfg.servers[0].plugins[..] else {
            panic!("{:?}", cfg.servers[0].plugins);
        };
        assert_eq!(r.limit, 50);
        assert_eq!(
            r.exempt,
            [
                "127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n ratelimit\n}",
                "2:2: ratelimit: expected LIMIT, the queries per second one source address may ask",
            ),
            (
                ".:53 {\n ratelimit 0\n}",
                "2:12: ratelimit: '0' is not a number of queries above 0",
            ),
            (
                ".:53 {\n ratelimit 50 {\n  whitelist 10.0.0.0/8\n }\n}",
                "3:13: ratelimit: whitelist: '10.0.0.0/8' is not an IP address",
            ),
            (
                ".:53 {\n ratelimit 50 {\n  allow 10.0.0.1\n }\n}",
                "3:3: ratelimit: allow: unknown property 'allow'; expected whitelist",
            ),
        ]);
    }
}
