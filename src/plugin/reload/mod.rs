//! `reload [INTERVAL [JITTER]]`: re-reads the Corefile when it changes (app::App::reload_loop).

pub mod config;

use crate::plugin::setup::{ReloadPolling, Setup, SetupError};

/// Puts `reload` into the block being set up.
pub async fn setup(cfg: &config::ReloadConfig, s: &mut Setup<'_>) -> Result<(), SetupError> {
    s.process.reload = Some(ReloadPolling {
        interval: cfg.interval,
        jitter: cfg.jitter,
    });
    Ok(())
}
