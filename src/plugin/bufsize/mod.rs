//! `bufsize`: caps the EDNS buffer size of the block's queries. A client advertising more
//! gets answers sized and advertised at the cap, and `forward` asks upstream with the cap, so
//! neither leg needs IP fragments (NodeLocal DNSCache and OpenShift's DNS set it). Queries
//! without EDNS are not touched. The router applies it, on the fast path too
//! ([`crate::server::Router`]).

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Gives the block its cap.
pub fn setup(cfg: &config::BufsizeConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.bufsize = Some(cfg.size);
    Ok(())
}
