//! What a directive's `setup` is given: the server block it is in, and the places it puts what
//! it builds (handlers, observers, HTTP routes, things to do once the chain or the ports exist).
//!
//! Every plugin folder has `pub fn setup(cfg: &ItsConfig, s: &mut Setup<'_>) -> Result<(),
//! PluginError>`; the registry calls them in the chain's order, one block at a time. Setup is
//! synchronous: it awaits nothing, and a plugin that reads a file there does it through
//! [`crate::plugin::shared::blocking`], off the runtime's other tasks. A plugin
//! that needs something another plugin of the same block made (`forward` the `loop` probe, the
//! plugins that read the `kubernetes` index) asks [`Setup::shared`] for it by type: the one that
//! makes it runs earlier in the chain's order, or (the `kubernetes` source, which others above it
//! read) is started by the application before the block is set up.

use std::any::Any;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::{Chain, Handler, Observer, Viewer};
use crate::corefile::keys::ZoneKey;
use crate::observe::http::{Readiness, Routes};
use crate::observe::metrics::Metrics;
use crate::vocab::{DnsKey, ListenAddr, SourceLimitConfig, TcpTimeouts};

/// Done once the ports of a configuration listen, with the address a block's first key
/// listens on (the `loop` probe).
pub type OnListen = Box<dyn FnOnce(SocketAddr) + Send + Sync>;

/// Done once a block's chain exists (the `cache` refreshing entries through it).
pub type OnChain = Box<dyn FnOnce(&Arc<Chain>) + Send + Sync>;

/// How often the Corefile is polled for changes, spread by up to `jitter` either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadPolling {
    pub interval: Duration,
    pub jitter: Duration,
}

/// What a configuration asks of the process as a whole, gathered over every block.
#[derive(Default)]
pub struct Process {
    /// The HTTP endpoints to serve, by address.
    pub http: BTreeMap<ListenAddr, Routes>,
    /// What `/ready` waits for.
    pub readiness: Vec<Arc<dyn Readiness>>,
    /// The longest `health` lameduck.
    pub lameduck: Option<Duration>,
    /// How often to re-read the Corefile (`reload`).
    pub reload: Option<ReloadPolling>,
    /// The per-source UDP limits (`ratelimit`), merged per port.
    pub source_limits: BTreeMap<DnsKey, SourceLimitConfig>,
    /// The TCP timeouts of each port whose block sets them (`timeouts`).
    pub tcp_timeouts: BTreeMap<DnsKey, TcpTimeouts>,
    /// Debug log lines on (`debug` in any block).
    pub debug: bool,
    /// The TLS server configuration of each `tls://` port (`tls`).
    pub tls: BTreeMap<DnsKey, Arc<rustls::ServerConfig>>,
    pub on_listen: Vec<(DnsKey, OnListen)>,
}

/// One server block being set up.
pub struct Setup<'a> {
    pub keys: &'a [ZoneKey],
    /// The addresses the block listens on (`[None]`: every address).
    pub binds: &'a [Option<IpAddr>],
    /// The metrics' `server` label of every port the block listens on.
    pub servers: Vec<String>,
    pub metrics: &'a Arc<Metrics>,
    pub process: &'a mut Process,
    /// The block's `view`, if it has one.
    pub view: Option<Arc<dyn Viewer>>,
    /// The zones `metadata` collects in, if the block has it.
    pub metadata: Option<Vec<hickory_proto::rr::LowerName>>,
    /// The cap on the EDNS buffer size (`bufsize`).
    pub bufsize: Option<u16>,
    handlers: Vec<Box<dyn Handler>>,
    observers: Vec<Arc<dyn Observer>>,
    on_chain: Vec<OnChain>,
    shared: Vec<Box<dyn Any + Send + Sync>>,
}

impl<'a> Setup<'a> {
    pub fn new(
        keys: &'a [ZoneKey],
        binds: &'a [Option<IpAddr>],
        servers: Vec<String>,
        metrics: &'a Arc<Metrics>,
        process: &'a mut Process,
    ) -> Self {
        Self {
            keys,
            binds,
            servers,
            metrics,
            process,
            view: None,
            metadata: None,
            bufsize: None,
            handlers: Vec::new(),
            observers: Vec::new(),
            on_chain: Vec::new(),
            shared: Vec::new(),
        }
    }

    /// The block's first zone (the root if it has none).
    pub fn zone(&self) -> Name {
        self.keys
            .first()
            .map_or_else(Name::root, |k| k.zone.clone())
    }

    /// Every port the block listens on.
    pub fn ports(&self) -> Vec<DnsKey> {
        let mut out = Vec::new();
        for key in self.keys {
            for bind in self.binds {
                out.push(DnsKey::new(*bind, key.port));
            }
        }
        out
    }

    /// Adds a handler after those already added (the chain's order).
    pub fn handler(&mut self, h: impl Handler + 'static) {
        self.handlers.push(Box::new(h));
    }

    /// Whether a handler of this name is in already.
    pub fn has_handler(&self, name: &str) -> bool {
        self.handlers.iter().any(|h| h.name() == name)
    }

    pub fn observer(&mut self, o: Arc<dyn Observer>) {
        self.observers.push(o);
    }

    /// Something to do with the block's chain once it is built.
    pub fn on_chain(&mut self, f: impl FnOnce(&Arc<Chain>) + Send + Sync + 'static) {
        self.on_chain.push(Box::new(f));
    }

    /// Something to do once the block's first port listens, given its address.
    pub fn on_listen(&mut self, f: impl FnOnce(SocketAddr) + Send + Sync + 'static) {
        if let Some(key) = self.keys.first() {
            self.process
                .on_listen
                .push((DnsKey::new(self.binds[0], key.port), Box::new(f)));
        }
    }

    /// Offers `value` to the plugins set up after this one in the same block.
    pub fn share<T: Any + Send + Sync>(&mut self, value: T) {
        self.shared.push(Box::new(value));
    }

    /// What an earlier plugin of this block offered as a `T` (the latest offer, where one
    /// was made twice).
    pub fn shared<T: Any + Clone>(&self) -> Option<T> {
        self.shared
            .iter()
            .rev()
            .find_map(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// The block's chain, and what is to be done with it.
    pub fn finish(self) -> Arc<Chain> {
        let chain = Arc::new(
            Chain::new(self.handlers, self.observers)
                .with_view(self.view)
                .with_metadata(self.metadata)
                .with_bufsize(self.bufsize),
        );
        for f in self.on_chain {
            f(&chain);
        }
        chain
    }
}
