//! `debug`: turns on the plugins' debug log lines (`[DEBUG] …`) while a Corefile with it is
//! loaded; a reload without it turns them off again. `RUST_LOG`, where set, is the operator's
//! word and wins. Unlike CoreDNS, a panic is still recovered (the query gets SERVFAIL and the
//! log says where): a DNS server for a whole cluster does not exit on one query.

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Asks the process for debug logging; the application applies it once the whole
/// configuration is set up ([`crate::observe::set_debug`]).
pub fn setup(_: &config::DebugConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.process.debug = true;
    Ok(())
}
