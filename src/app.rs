//! Wiring: typed config → indexes, chains and listeners, and the running server.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use hickory_proto::rr::Name;
use hickory_server::Server;

use crate::chain::{Chain, Handler};
use crate::cluster::index::{Index, IndexOptions};
use crate::cluster::records::RecordOptions;
use crate::cluster::{self, file};
use crate::config::kubernetes::{KubernetesConfig, Source};
use crate::config::{Config, PluginConfig};
use crate::plugins;
use crate::server::{DnsHandler, Router, TCP_IDLE, bind};

/// How a configuration is started.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Listen on this address only (tests use 127.0.0.1); every address when `None`.
    pub bind: Option<IpAddr>,
}

/// One port's listeners.
#[derive(Clone, Debug)]
pub struct Listener {
    /// The port the Corefile asked for (0 means "pick one").
    pub port: u16,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// The zones served on this port.
    pub zones: Vec<Name>,
}

/// A started server: its listeners and what keeps them going.
pub struct Running {
    pub listeners: Vec<Listener>,
    servers: Vec<Server<DnsHandler>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    routers: Vec<Arc<Router>>,
}

impl Running {
    /// The listener for the port the Corefile named.
    pub fn listener(&self, port: u16) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.port == port)
    }

    /// The router behind a port, for answering raw bytes in-process.
    pub fn router(&self, port: u16) -> Option<&Arc<Router>> {
        let i = self.listeners.iter().position(|l| l.port == port)?;
        self.routers.get(i)
    }

    /// Runs until every listener stops.
    pub async fn wait(&mut self) {
        for s in &mut self.servers {
            if let Err(e) = s.block_until_done().await {
                tracing::error!("listener stopped: {e}");
            }
        }
    }

    /// Stops accepting queries, finishes those in flight, and stops the background tasks.
    pub async fn shutdown(mut self) {
        for s in &mut self.servers {
            let _ = s.shutdown_gracefully().await;
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for s in &self.servers {
            s.shutdown_token().cancel();
        }
    }
}

/// Builds every chain, loads the cluster data, and binds every port.
pub async fn start(config: &Config, opts: &StartOptions) -> anyhow::Result<Running> {
    let mut tasks = Vec::new();
    let mut by_port: BTreeMap<u16, Vec<(Name, Arc<Chain>)>> = BTreeMap::new();
    for block in &config.servers {
        let mut handlers: Vec<Box<dyn Handler>> = Vec::new();
        for plugin in &block.plugins {
            match plugin {
                PluginConfig::Errors(_) => handlers.push(Box::new(plugins::errors::Errors)),
                PluginConfig::Kubernetes(cfg) => {
                    let (handler, task) = kubernetes(cfg).await?;
                    handlers.push(Box::new(handler));
                    tasks.push(task);
                }
            }
        }
        let chain = Arc::new(Chain::new(handlers));
        for key in &block.keys {
            by_port
                .entry(key.port)
                .or_default()
                .push((key.zone.clone(), chain.clone()));
        }
    }
    let mut running = Running {
        listeners: Vec::new(),
        servers: Vec::new(),
        tasks,
        routers: Vec::new(),
    };
    for (port, blocks) in by_port {
        let zones = blocks.iter().map(|(z, _)| z.clone()).collect();
        let router = Arc::new(Router::new(blocks));
        let (udp, tcp) = bind(opts.bind, port)
            .await
            .with_context(|| format!("cannot listen on port {port}"))?;
        let listener = Listener {
            port,
            udp: udp.local_addr()?,
            tcp: tcp.local_addr()?,
            zones,
        };
        let mut server = Server::new(DnsHandler {
            router: router.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, 64);
        running.listeners.push(listener);
        running.servers.push(server);
        running.routers.push(router);
    }
    Ok(running)
}

async fn kubernetes(
    cfg: &KubernetesConfig,
) -> anyhow::Result<(plugins::kubernetes::Kubernetes, tokio::task::JoinHandle<()>)> {
    let index = Arc::new(Index::new(IndexOptions {
        zones: cfg.zones.clone(),
        ttl: cfg.ttl,
        records: RecordOptions {
            pods: cfg.pods,
            endpoint_pod_names: cfg.endpoint_pod_names,
            ignore_empty_service: cfg.ignore_empty_service,
        },
    }));
    let Source::Objects(path) = &cfg.source;
    let filters = file::Filters::from_config(cfg);
    let seen = file::fingerprint(path);
    let (p, f) = (path.clone(), filters.clone());
    let snap = tokio::task::spawn_blocking(move || file::load(&p, &f))
        .await?
        .map_err(|e| anyhow::anyhow!("plugin/kubernetes: {e}"))?;
    index.replace_all(snap);
    tracing::info!(
        "plugin/kubernetes: loaded {} ({} names)",
        path.display(),
        index.len()
    );
    let task = cluster::watch_file(
        path.clone(),
        filters,
        index.clone(),
        cluster::FILE_POLL,
        seen,
    );
    let handler = plugins::kubernetes::Kubernetes::new(index, cfg.fallthrough.clone(), cfg.pods);
    Ok((handler, task))
}
