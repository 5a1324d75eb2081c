//! clusterdns: cluster DNS for Kubernetes, a drop-in replacement for CoreDNS in kube-system.
//!
//! The flow of a query: `server` (sockets, EDNS, routing by zone and port) → `chain` (handlers
//! in CoreDNS's fixed order) → `plugins` (e.g. `kubernetes`, reading `cluster::index`).
//! The flow of configuration: `corefile` (text → syntax) → `config` (syntax → typed) → `app`.

pub mod app;
pub mod cluster;
pub mod config;
pub mod corefile;
pub mod dns;
pub mod memory;
pub mod observe;
pub mod plugin;
pub mod server;
pub mod sync;
pub mod watched;

/// `clusterdns-VERSION`, as CoreDNS prints `CoreDNS-VERSION`.
pub fn version_line() -> String {
    format!("clusterdns-{}", env!("CARGO_PKG_VERSION"))
}
