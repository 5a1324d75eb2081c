//! `bind ADDRESS…`: the addresses a server block listens on.

pub mod config;

use crate::plugin::setup::{Setup, SetupError};

/// Puts `bind` into the block being set up.
pub async fn setup(cfg: &config::BindConfig, s: &mut Setup<'_>) -> Result<(), SetupError> {
    // The server block's addresses are read with its keys (`config::from_blocks`).
    let _ = (cfg, s);
    Ok(())
}
