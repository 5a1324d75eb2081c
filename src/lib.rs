//! clusterdns: cluster DNS for Kubernetes, a drop-in replacement for CoreDNS in kube-system.
//!
//! The flow of a query: `server` (sockets, EDNS, routing by zone and port) → the block's
//! `plugin::Chain` (handlers in CoreDNS's fixed order) → each `plugin::<name>` (e.g.
//! `kubernetes`, reading `cluster::index`), answers written in wire form by `dns`.
//! The flow of configuration: `corefile` (text → syntax) → `config` (syntax → typed, each
//! directive by its folder through `plugin::registry`) → `app` (each directive's `setup`).

pub mod app;
pub mod cluster;
pub mod config;
pub mod corefile;
pub mod dns;
pub mod memory;
pub mod nodelocal;
pub mod observe;
pub mod plugin;
pub mod server;
pub mod sync;
pub mod vocab;
pub mod watched;

/// The CoreDNS release whose Corefile clusterdns reads: its directives' documented
/// behaviour is the reference (the support table in the README lists what is missing).
pub const COREDNS_RELEASE: &str = "1.14.7";

/// `clusterdns-VERSION`, as CoreDNS prints `CoreDNS-VERSION`.
pub fn version_line() -> String {
    format!("clusterdns-{}", env!("CARGO_PKG_VERSION"))
}
