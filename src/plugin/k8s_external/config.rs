//! `k8s_external [ZONES…] { apex APEX; ttl TTL; headless; fallthrough [ZONES…] }`: the external
//! addresses of Services (`spec.externalIPs`, load balancer ingress) under zones of their own.
//!
//! As CoreDNS: ZONES default to the block's; `apex` is the label under which the zone's own
//! name server lives (default `dns`, so `ns1.dns.ZONE`); `ttl` is 0 to 3600 (default 5);
//! `headless` also answers headless Services (and endpoint names) from their endpoints;
//! `fallthrough` passes names that do not exist on. The block needs a `kubernetes` directive,
//! whose cluster the names come from.

use hickory_proto::rr::Name;

use crate::corefile::{Directive, Pos};
use crate::dns::name;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, zones_or_block};
use crate::plugin::shared::fallthrough::{Fallthrough, parse_fallthrough};
use crate::plugin::shared::parse_ttl;

pub const DEFAULT_TTL: u32 = 5;
pub const DEFAULT_APEX: &str = "dns";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sExternalConfig {
    pub zones: Vec<Name>,
    /// One or more labels, lower case (`dns`).
    pub apex: String,
    pub ttl: u32,
    pub headless: bool,
    pub fallthrough: Fallthrough,
    /// Where the directive is.
    pub pos: Pos,
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<K8sExternalConfig, Vec<ConfigError>> {
    let mut cfg = K8sExternalConfig {
        zones: zones_or_block(&d.args, ctx)?,
        apex: DEFAULT_APEX.to_string(),
        ttl: DEFAULT_TTL,
        headless: false,
        fallthrough: Fallthrough::Never,
        pos: d.name.pos.clone(),
    };
    let mut errors = Vec::new();
    if !ctx.has("kubernetes") {
        errors.push(ConfigError::new(
            &d.name.pos,
            "k8s_external: needs a kubernetes directive in the same server block, \
             whose Services it answers for",
        ));
    }
    for p in d.block.iter().flatten() {
        if let Err(e) = property(p, &mut cfg) {
            errors.push(e);
        }
    }
    // The default apex too must fit under every zone (a zone of 250 characters leaves no room).
    if errors.is_empty()
        && let Some(z) = cfg.zones.iter().find(|z| apex_name(&cfg.apex, z).is_none())
    {
        errors.push(ConfigError::new(
            &d.name.pos,
            format!(
                "k8s_external: '{}.{z}' is not a valid name; use a shorter zone or apex",
                cfg.apex
            ),
        ));
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

/// `APEX.ZONE`: where the zone's own name server lives. `None` when APEX does not read as labels.
pub fn apex_name(apex: &str, zone: &Name) -> Option<Name> {
    let labels: Vec<&str> = apex.split('.').collect();
    name::join(&labels, zone)
}

fn property(p: &Directive, cfg: &mut K8sExternalConfig) -> Result<(), ConfigError> {
    let name = p.name.text.as_str();
    let args = Args::new(format!("k8s_external: {name}"), p);
    crate::corefile::args::no_block(&args.what, p)?;
    match name {
        "ttl" => cfg.ttl = parse_ttl(&args)?,
        "apex" => {
            let t = args.one("a label, e.g. 'dns'")?;
            let apex = t.text.trim_end_matches('.').to_ascii_lowercase();
            // It is joined to each zone: it must read as a relative name.
            let usable =
                !apex.is_empty() && cfg.zones.iter().all(|z| apex_name(&apex, z).is_some());
            if !usable {
                return Err(args.err(
                    t,
                    format!(
                        "'{}' is not a usable apex; expected one or more DNS labels, e.g. 'dns', \
                         that make APEX.ZONE a valid name",
                        t.text
                    ),
                ));
            }
            cfg.apex = apex;
        }
        "headless" => {
            args.none()?;
            cfg.headless = true;
        }
        "fallthrough" => cfg.fallthrough = parse_fallthrough(&args)?,
        _ => {
            return Err(ConfigError::new(
                &p.name.pos,
                format!(
                    "k8s_external: unknown property '{name}'; expected apex, ttl, headless or \
                     fallthrough"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn k8s_external_takes_coredns_defaults_and_options() {
        let cfg = load_text(
            "example.org:53 {\n kubernetes cluster.local {\n  objects x\n }\n k8s_external\n}\n\
             .:54 {\n kubernetes cluster.local {\n  objects x\n }\n k8s_external a.test b.test {\n  apex NS.Servers\n  ttl 0\n  headless\n  fallthrough b.test\n }\n}",
        )
        .unwrap();
        let ext = |i: usize| -> crate::plugin::k8s_external::config::K8sExternalConfig {
            cfg.servers[i]
                .plugins
                .iter()
                .find_map(|p| match p {
                    PluginConfig::K8sExternal(k) => Some((**k).clone()),
                    _ => None,
                })
                .unwrap()
        };
        let first = ext(0);
        assert_eq!(
            first.zones,
            [crate::dns::name::fqdn("example.org").unwrap()]
        );
        assert_eq!(
            (first.apex.as_str(), first.ttl, first.headless),
            ("dns", 5, false)
        );
        assert!(
            !first
                .fallthrough
                .covers(&crate::dns::name::fqdn("x.example.org").unwrap())
        );
        let second = ext(1);
        assert_eq!(second.zones.len(), 2);
        assert_eq!(
            (second.apex.as_str(), second.ttl, second.headless),
            ("ns.servers", 0, true)
        );
        assert!(
            second
                .fallthrough
                .covers(&crate::dns::name::fqdn("x.b.test").unwrap())
        );
        assert!(
            !second
                .fallthrough
                .covers(&crate::dns::name::fqdn("x.a.test").unwrap())
        );
        // The root zone's apex is `dns.`, not the root itself.
        let root = crate::dns::name::fqdn(".").unwrap();
        assert_eq!(
            crate::plugin::k8s_external::config::apex_name("dns", &root),
            crate::dns::name::fqdn("dns")
        );
        assert_eq!(
            crate::plugin::k8s_external::config::apex_name("ns.servers", &second.zones[0]),
            crate::dns::name::fqdn("ns.servers.a.test")
        );
        // It runs before kubernetes, as in CoreDNS's plugin.cfg.
        let names: Vec<&str> = cfg.servers[1].plugins.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["k8s_external", "kubernetes"]);
    }

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n k8s_external example.org\n forward . 192.0.2.1\n}",
                "2:2: k8s_external: needs a kubernetes directive in the same server block, whose Services it answers for",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  ttl 3601\n }\n}",
                "6:7: k8s_external: ttl: '3601' is not a TTL: expected 0 to 3600",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  upstream\n }\n}",
                "6:3: k8s_external: unknown property 'upstream'; expected apex, ttl, headless or fallthrough",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  headless yes\n }\n}",
                "6:12: k8s_external: headless",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  apex a..b\n }\n}",
                "6:8: k8s_external: apex: 'a..b' is not a usable apex; expected one or more DNS labels",
            ),
        ]);
    }
}
