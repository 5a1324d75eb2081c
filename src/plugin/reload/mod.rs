//! `reload [INTERVAL [JITTER]]`: re-reads the Corefile when it changes (app::App::reload_loop).

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::{ReloadPolling, Setup};

/// Puts `reload` into the block being set up.
pub fn setup(cfg: &config::ReloadConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.process.reload = Some(ReloadPolling {
        interval: cfg.interval,
        jitter: cfg.jitter,
    });
    Ok(())
}
