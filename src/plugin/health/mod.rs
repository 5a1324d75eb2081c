//! `health [ADDRESS] { lameduck DURATION }`: `/health` on its own HTTP address (observe::http), and
//! how long a stopping server keeps answering.

pub mod config;

use crate::plugin::setup::{Setup, SetupError};

/// Puts `health` into the block being set up.
pub async fn setup(cfg: &config::HealthConfig, s: &mut Setup<'_>) -> Result<(), SetupError> {
    s.process.http.entry(cfg.addr.clone()).or_default().health = true;
    s.process.lameduck = s.process.lameduck.max(cfg.lameduck);
    Ok(())
}
