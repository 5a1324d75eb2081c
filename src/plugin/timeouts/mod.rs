//! `timeouts`: how long a TCP client may take to send a query (`read`), to read an answer
//! (`write`), and may keep a connection open between queries (`idle`), for the ports of the
//! block. What it leaves unset keeps the listener's own (3 s, 3 s and 10 s). `maxtcpqueries`
//! closes a TCP or TLS connection once it has carried that many answers (no limit by default),
//! so that clients behind a connection-based load balancer reconnect and spread.

pub mod config;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;

/// Gives the block's ports these timeouts. Where two blocks share a port, the first to set a
/// timeout decides it, as CoreDNS takes a port's configuration from one block.
pub fn setup(cfg: &config::TimeoutsConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    for port in s.ports() {
        let t = s.process.tcp_timeouts.entry(port).or_default();
        t.read = t.read.or(cfg.read);
        t.write = t.write.or(cfg.write);
        t.idle = t.idle.or(cfg.idle);
        t.max_queries = t.max_queries.or(cfg.max_queries);
    }
    Ok(())
}
