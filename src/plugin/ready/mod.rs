//! `ready [ADDRESS]`: `/ready` on its own HTTP address (observe::http), 200 once every plugin
//! that can be unready is ready.

pub mod config;

use crate::plugin::setup::{Setup, SetupError};

/// Puts `ready` into the block being set up.
pub async fn setup(cfg: &config::ReadyConfig, s: &mut Setup<'_>) -> Result<(), SetupError> {
    s.process.http.entry(cfg.addr.clone()).or_default().ready = true;
    Ok(())
}
