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
use crate::names;

use super::kubernetes::{Fallthrough, parse_fallthrough, parse_ttl};
use super::{Args, BlockContext, ConfigError, zones_or_block};

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
    /// Where the directive is, for the check that the block has a `kubernetes` directive.
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
    names::join(&labels, zone)
}

fn property(p: &Directive, cfg: &mut K8sExternalConfig) -> Result<(), ConfigError> {
    let name = p.name.text.as_str();
    let args = Args::new(format!("k8s_external: {name}"), p);
    super::args::no_block(&args.what, p)?;
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
