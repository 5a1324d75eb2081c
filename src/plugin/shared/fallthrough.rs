//! `fallthrough [ZONES…]`: which names a plugin that found nothing passes on to the next one,
//! as CoreDNS's `plugin/pkg/fall` reads it (`kubernetes`, `hosts`, `template`, `k8s_external`).

use hickory_proto::rr::Name;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::parse_zone;

/// Which NXDOMAIN answers go on to the next plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fallthrough {
    #[default]
    Never,
    /// `fallthrough` with no zones: every name.
    All,
    /// Only names in these zones.
    Zones(Vec<Name>),
}

impl Fallthrough {
    pub fn covers(&self, name: &Name) -> bool {
        match self {
            Fallthrough::Never => false,
            Fallthrough::All => true,
            Fallthrough::Zones(zones) => zones.iter().any(|z| z.zone_of(name)),
        }
    }
}

/// `fallthrough [ZONES…]`: every name when no zone is given.
pub fn parse_fallthrough(args: &Args) -> Result<Fallthrough, ConfigError> {
    if args.rest.is_empty() {
        return Ok(Fallthrough::All);
    }
    let mut zones = Vec::new();
    for a in args.rest {
        zones.extend(parse_zone(&a.text).map_err(|m| args.err(a, m))?);
    }
    Ok(Fallthrough::Zones(zones))
}
