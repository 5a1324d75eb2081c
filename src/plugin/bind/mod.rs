//! `bind ADDRESS…`: the addresses a server block listens on.

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Puts `bind` into the block being set up.
pub fn setup(cfg: &config::BindConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    // The server block's addresses are read with its keys (`config::from_blocks`).
    let _ = (cfg, s);
    Ok(())
}
