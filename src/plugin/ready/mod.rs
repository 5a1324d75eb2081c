//! `ready [ADDRESS]`: `/ready` on its own HTTP address (observe::http), 200 once every plugin
//! that can be unready is ready.

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Puts `ready` into the block being set up.
pub fn setup(cfg: &config::ReadyConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.process.http.entry(cfg.addr.clone()).or_default().ready = true;
    Ok(())
}
