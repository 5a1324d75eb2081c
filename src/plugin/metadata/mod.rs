//! `metadata`: lets the block's plugins publish labelled values about each query in its zones
//! (`kubernetes/namespace`, `kubernetes/client-namespace`, `view/name`, …), which `log` writes
//! with `{/LABEL}` and `view` reads with `metadata(LABEL)`. The values are collected once per
//! query, before routing's views and the chain run, and only in blocks that have `metadata`.

pub mod config;

use hickory_proto::rr::LowerName;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Has the block collect metadata in these zones.
pub fn setup(cfg: &config::MetadataConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.metadata = Some(cfg.zones.iter().map(LowerName::from).collect());
    Ok(())
}
