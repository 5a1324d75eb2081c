//! `health [ADDRESS] { lameduck DURATION }`: `/health` on its own HTTP address (observe::http), and
//! how long a stopping server keeps answering.

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Puts `health` into the block being set up.
pub fn setup(cfg: &config::HealthConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.process.http.entry(cfg.addr.clone()).or_default().health = true;
    s.process.lameduck = s.process.lameduck.max(cfg.lameduck);
    Ok(())
}
