//! `prometheus [ADDRESS]`: `/metrics` on its own HTTP address, CoreDNS's metric names.

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Puts `prometheus` into the block being set up.
pub fn setup(cfg: &config::PrometheusConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.process.http.entry(cfg.addr.clone()).or_default().metrics = true;
    Ok(())
}
