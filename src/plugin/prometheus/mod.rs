//! `prometheus [ADDRESS]`: `/metrics` on its own HTTP address, CoreDNS's metric names.

pub mod config;

use crate::plugin::setup::{Setup, SetupError};

/// Puts `prometheus` into the block being set up.
pub async fn setup(cfg: &config::PrometheusConfig, s: &mut Setup<'_>) -> Result<(), SetupError> {
    s.process.http.entry(cfg.addr.clone()).or_default().metrics = true;
    Ok(())
}
