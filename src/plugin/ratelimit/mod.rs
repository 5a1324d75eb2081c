//! `ratelimit LIMIT { whitelist ADDRESS… }`: a per-source UDP limit for the block's ports,
//! applied by the server before any handler (server::limit).

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Puts `ratelimit` into the block being set up.
pub fn setup(cfg: &config::RatelimitConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    for port in s.ports() {
        let merged = match s.process.source_limits.get(&port) {
            Some(had) => had.merge(cfg),
            None => cfg.clone(),
        };
        s.process.source_limits.insert(port, merged);
    }
    Ok(())
}
