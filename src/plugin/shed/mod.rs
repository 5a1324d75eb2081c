//! `shed` (CoreDNS 1.14): protects a UDP listener that cannot keep up. Accepted for the
//! Corefiles that carry it; what it asks for is how clusterdns's UDP loop always works (see the
//! README): each socket is read and answered by one task that writes its answers itself, the
//! queries off the fast path in flight are bounded per port, and what is dropped for either is
//! counted in `coredns_shed_dropped_total{server, reason}`.

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Nothing to add: the server's loop sheds as `shed` asks, with or without it.
pub fn setup(_: &config::ShedConfig, _: &mut Setup<'_>) -> Result<(), PluginError> {
    Ok(())
}
