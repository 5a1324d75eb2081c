//! Wiring: typed config → indexes, chains, listeners and HTTP endpoints; reloading the Corefile
//! in place; shutting down through the lameduck time.
//!
//! A reload builds the new chains first (reusing a `kubernetes` index whose settings did not
//! change), binds any new address, and only then swaps the new routers in under the running
//! sockets. Nothing closes that stays; nothing goes unready; a Corefile that does not load
//! leaves the running configuration alone.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use hickory_proto::rr::Name;

use crate::cluster::source::ClusterSource;
use crate::config::{self, Config, ConfigErrors, LoadOptions};
use crate::observe::http::{HttpListener, Shared};
use crate::observe::metrics::Metrics;
use crate::plugin::Chain;
use crate::plugin::registry;
use crate::plugin::setup::{Process, ReloadPolling, Setup};
use crate::server::Router;
use crate::server::listen::{DnsListener, Limits};
use crate::vocab::{DnsKey, ListenAddr, SourceLimitConfig};

/// Why a reload did not put a new configuration in service; the running one serves on.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The Corefile does not load: every error, at its `file:line:col`.
    #[error("{0}")]
    Config(ConfigErrors),
    /// It loads but cannot start: a plugin's setup (`plugin/NAME: …`, at its block's
    /// position), a cluster source, or a port that cannot be bound.
    #[error("{0:#}")]
    Start(anyhow::Error),
}

/// How a configuration is started.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Listen on this address only (tests use 127.0.0.1); every address when `None`.
    pub bind: Option<IpAddr>,
    /// The Corefile, for reloads; `None` for a configuration given as text.
    pub path: Option<PathBuf>,
    pub load: LoadOptions,
    /// What one client may cost (timeouts, connection and in-flight caps).
    pub limits: Limits,
    /// The metrics to count in; a new set when `None`. The node-local role passes its own,
    /// which holds node-cache's setup errors too.
    pub metrics: Option<Arc<Metrics>>,
}

/// One port's listeners.
#[derive(Clone, Debug)]
pub struct Listener {
    /// The port the Corefile asked for (0 means "pick one").
    pub port: u16,
    /// The address `bind` named, if a block on this port has one.
    pub bind: Option<IpAddr>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// The zones served on this port.
    pub zones: Vec<Name>,
}

/// A running server.
pub struct App {
    opts: StartOptions,
    shared: Arc<Shared>,
    state: Mutex<State>,
    /// Reloads run one at a time.
    reloading: tokio::sync::Mutex<()>,
    /// How many `kubernetes` indexes were built (a reload that keeps one builds none).
    indexes_built: std::sync::atomic::AtomicU64,
}

struct State {
    digest: String,
    dns: BTreeMap<DnsKey, DnsListener>,
    http: BTreeMap<ListenAddr, HttpListener>,
    /// The running `kubernetes` sources: each runs while it is held here or by a
    /// configuration being built.
    sources: Vec<Arc<ClusterSource>>,
    lameduck: Option<Duration>,
    reload: Option<ReloadPolling>,
}

/// What [`App::bind_new`] opened, ready to be swapped in.
struct New {
    routers: BTreeMap<DnsKey, Arc<Router>>,
    dns: BTreeMap<DnsKey, DnsListener>,
    http: BTreeMap<ListenAddr, HttpListener>,
}

/// Everything a configuration needs, built before anything running is touched.
struct Built {
    ports: BTreeMap<DnsKey, Vec<(Name, Arc<Chain>)>>,
    /// What the plugins asked of the process: HTTP routes, readiness, lameduck, reload, limits.
    process: Process,
    /// The `kubernetes` sources this configuration uses, started or kept.
    sources: Vec<Arc<ClusterSource>>,
    /// (server label, zone, plugin) for `coredns_plugin_enabled`.
    enabled: Vec<(String, String, &'static str)>,
}

impl App {
    /// Builds every chain, loads the cluster data, and binds every port.
    pub async fn start(config: &Config, opts: StartOptions) -> anyhow::Result<Arc<App>> {
        Self::start_with_digest(config, String::new(), opts).await
    }

    /// Reads the Corefile at `opts.path` and starts it.
    pub async fn start_file(opts: StartOptions) -> anyhow::Result<Arc<App>> {
        let path = opts.path.clone().context("no Corefile path")?;
        let loaded = config::read(&path, &opts.load);
        let config = loaded.config().map_err(|e| anyhow::anyhow!("{e}"))?;
        Self::start_with_digest(&config, loaded.digest, opts).await
    }

    async fn start_with_digest(
        config: &Config,
        digest: String,
        opts: StartOptions,
    ) -> anyhow::Result<Arc<App>> {
        let shared = Arc::new(Shared {
            metrics: opts
                .metrics
                .clone()
                .unwrap_or_else(|| Arc::new(Metrics::new())),
            readiness: ArcSwap::from_pointee(Vec::new()),
        });
        let app = Arc::new(App {
            opts,
            shared,
            state: Mutex::new(State {
                digest: String::new(),
                dns: BTreeMap::new(),
                http: BTreeMap::new(),
                sources: Vec::new(),
                lameduck: None,
                reload: None,
            }),
            reloading: tokio::sync::Mutex::new(()),
            indexes_built: Default::default(),
        });
        let built = build(config, &[], &app).await?;
        app.apply(built, digest).await?;
        Ok(app)
    }

    /// What `/ready` would say: every plugin that can be unready is ready.
    pub fn is_ready(&self) -> bool {
        self.shared.readiness.load().iter().all(|r| r.is_ready())
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// How many `kubernetes` indexes have been built since start.
    pub fn indexes_built(&self) -> u64 {
        self.indexes_built.load(Ordering::Relaxed)
    }

    /// The DNS listeners, by the port the Corefile named.
    pub fn listeners(&self) -> Vec<Listener> {
        let state = self.lock();
        state
            .dns
            .iter()
            .map(|(key, l)| Listener {
                port: key.port,
                bind: key.ip,
                udp: l.udp,
                tcp: l.tcp,
                zones: l
                    .router()
                    .blocks()
                    .iter()
                    .map(|b| Name::from(&b.zone))
                    .collect(),
            })
            .collect()
    }

    pub fn listener(&self, port: u16) -> Option<Listener> {
        self.listeners().into_iter().find(|l| l.port == port)
    }

    /// The router behind a port, for answering raw bytes in-process.
    pub fn router(&self, port: u16) -> Option<Arc<Router>> {
        self.lock()
            .dns
            .iter()
            .find(|(key, _)| key.port == port)
            .map(|(_, l)| l.router())
    }

    /// Where an HTTP address the Corefile named is listening.
    pub fn http_addr(&self, configured: &str) -> Option<SocketAddr> {
        let want = crate::corefile::args::parse_listen_addr(configured).ok()?;
        self.lock().http.get(&want).map(|l| l.addr)
    }

    /// The `reload` directive's settings, if the Corefile has one.
    pub fn reload_config(&self) -> Option<ReloadPolling> {
        self.lock().reload
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Re-reads the Corefile. Unless `force`, nothing happens when its content is unchanged.
    /// Returns whether a new configuration is now serving.
    pub async fn reload(&self, force: bool) -> Result<bool, ReloadError> {
        let Some(path) = self.opts.path.clone() else {
            return Ok(false);
        };
        let _one = self.reloading.lock().await;
        let load = self.opts.load.clone();
        let loaded = tokio::task::spawn_blocking(move || config::read(&path, &load))
            .await
            .map_err(|e| ReloadError::Start(anyhow::anyhow!("reading the Corefile: {e}")))?;
        let old_digest = self.lock().digest.clone();
        if !force && loaded.digest == old_digest {
            return Ok(false);
        }
        tracing::info!("Reloading");
        // Do not retry the same broken file every interval: remember its digest either way.
        self.lock().digest = loaded.digest.clone();
        let config = match loaded.config() {
            Ok(c) => c,
            Err(errors) => {
                self.shared.metrics.core.reload_failed.inc();
                for e in &errors.0 {
                    tracing::error!("Restart failed: {e}");
                }
                return Err(ReloadError::Config(errors));
            }
        };
        let running = self.lock().sources.clone();
        let built = match build(&config, &running, self).await {
            Ok(b) => b,
            Err(e) => {
                self.shared.metrics.core.reload_failed.inc();
                tracing::error!("Restart failed: {e:#}");
                return Err(ReloadError::Start(e));
            }
        };
        drop(running);
        if let Err(e) = self.apply(built, loaded.digest).await {
            self.shared.metrics.core.reload_failed.inc();
            tracing::error!("Restart failed: {e:#}");
            return Err(ReloadError::Start(e));
        }
        tracing::info!("Reloading complete");
        Ok(true)
    }

    /// Puts `built` in service: binds what is new, then swaps routers and routes in; the
    /// sources the new configuration does not use stop as the old one lets go of them. On a
    /// bind error nothing running is touched, and the sources started for `built` stop as it is
    /// dropped.
    async fn apply(&self, mut built: Built, digest: String) -> anyhow::Result<()> {
        let new = self.bind_new(&built).await?;
        let on_listen = std::mem::take(&mut built.process.on_listen);
        self.swap_in(&mut built, new, digest).await;
        for (key, f) in on_listen {
            let ip = match key.ip.or(self.opts.bind) {
                Some(ip) if !ip.is_unspecified() => ip,
                _ => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            };
            f(SocketAddr::new(ip, key.port));
        }
        Ok(())
    }

    /// Binds the ports and HTTP addresses `built` needs that are not open yet.
    async fn bind_new(&self, built: &Built) -> anyhow::Result<New> {
        let routers: BTreeMap<DnsKey, Arc<Router>> = built
            .ports
            .iter()
            .map(|(key, blocks)| (*key, blocks.clone()))
            .map(|(key, blocks)| {
                // The Corefile's `ratelimit` for the port, else the command line's.
                let limit = built
                    .process
                    .source_limits
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| SourceLimitConfig {
                        limit: self.opts.limits.udp_per_source_qps,
                        exempt: Vec::new(),
                    });
                let tls = built.process.tls.get(&key).cloned();
                let router = Router::new(
                    blocks,
                    server_label(key.ip.or(self.opts.bind), key.port, tls.is_some()),
                    self.shared.metrics.clone(),
                )
                .with_source_limit(&limit)
                .with_tcp_timeouts(built.process.tcp_timeouts.get(&key).copied())
                .with_tls(tls);
                (key, Arc::new(router))
            })
            .collect();
        // Bind what is new first: if that fails, the running configuration stays as it was.
        let (have_dns, have_http): (Vec<DnsKey>, Vec<ListenAddr>) = {
            let s = self.lock();
            // A listener serves one transport: a port moving between dns:// and tls:// would
            // need its socket closed before the new one binds, which a reload does not do.
            for (key, router) in &routers {
                if let Some(l) = s.dns.get(key)
                    && l.is_tls() != router.tls().is_some()
                {
                    anyhow::bail!(
                        "port {} moves between dns:// and tls://; restart to apply that",
                        key.port
                    );
                }
            }
            (
                s.dns.keys().copied().collect(),
                s.http.keys().cloned().collect(),
            )
        };
        let mut new_dns = BTreeMap::new();
        for (key, router) in routers.iter().filter(|(k, _)| !have_dns.contains(k)) {
            let DnsKey { ip: bind, port } = *key;
            let at = bind.or(self.opts.bind);
            let l = if router.tls().is_some() {
                DnsListener::bind_tls(at, port, router.clone(), self.opts.limits).await
            } else {
                DnsListener::bind(at, port, router.clone(), self.opts.limits).await
            }
            .with_context(|| match bind {
                Some(ip) => format!("cannot listen on {}", SocketAddr::new(ip, port)),
                None => format!("cannot listen on port {port}"),
            })?;
            new_dns.insert(*key, l);
        }
        let mut new_http = BTreeMap::new();
        for (addr, routes) in built
            .process
            .http
            .iter()
            .filter(|(a, _)| !have_http.contains(a))
        {
            let bind_at = match (self.opts.bind, addr.ip) {
                (Some(ip), None) => ListenAddr {
                    ip: Some(ip),
                    port: addr.port,
                },
                _ => addr.clone(),
            };
            let l = HttpListener::bind(&bind_at, *routes, self.shared.clone())
                .await
                .with_context(|| format!("cannot listen on {addr} for health, ready or metrics"))?;
            new_http.insert(addr.clone(), l);
        }
        Ok(New {
            routers,
            dns: new_dns,
            http: new_http,
        })
    }

    /// Swaps everything in; cannot fail.
    async fn swap_in(&self, built: &mut Built, new: New, digest: String) {
        let New {
            routers,
            dns: new_dns,
            http: new_http,
        } = new;
        self.shared
            .readiness
            .store(Arc::new(std::mem::take(&mut built.process.readiness)));
        let metrics = &self.shared.metrics;
        metrics.core.plugin_enabled.reset();
        for (server, zone, name) in &built.enabled {
            metrics
                .core
                .plugin_enabled
                .with_label_values(&[server.as_str(), zone.as_str(), "", name])
                .set(1);
        }
        if !digest.is_empty() {
            metrics.core.reload_version.reset();
            metrics
                .core
                .reload_version
                .with_label_values(&["sha512", &digest])
                .set(1);
            tracing::info!("plugin/reload: Running configuration SHA512 = {digest}");
        }
        let gone_dns = {
            let mut s = self.lock();
            for (port, router) in &routers {
                if let Some(l) = s.dns.get(port) {
                    l.swap(router.clone());
                }
            }
            s.dns.extend(new_dns);
            let gone: Vec<DnsKey> = s
                .dns
                .keys()
                .filter(|p| !routers.contains_key(p))
                .copied()
                .collect();
            let gone_dns: Vec<DnsListener> = gone.iter().filter_map(|p| s.dns.remove(p)).collect();
            for (addr, routes) in &built.process.http {
                if let Some(l) = s.http.get(addr) {
                    l.set_routes(*routes);
                }
            }
            s.http.extend(new_http);
            s.http
                .retain(|addr, _| built.process.http.contains_key(addr));
            // The sources only the old configuration used stop here.
            s.sources = std::mem::take(&mut built.sources);
            s.lameduck = built.process.lameduck;
            crate::observe::set_debug(built.process.debug);
            s.reload = built.process.reload;
            s.digest = digest;
            gone_dns
        };
        for l in gone_dns {
            l.stop().await;
        }
    }

    /// Stops: after the lameduck time, if `health` set one, during which queries and `/health`
    /// keep being answered.
    pub async fn shutdown(&self) {
        let lameduck = self.lock().lameduck;
        if let Some(d) = lameduck.filter(|d| !d.is_zero()) {
            tracing::info!(
                "Going into lameduck mode for {}",
                crate::corefile::args::format_duration(d)
            );
            tokio::time::sleep(d).await;
        }
        self.close().await;
    }

    /// Stops at once: listeners closed, watches ended, no lameduck.
    pub async fn close(&self) {
        let (dns, http, sources) = {
            let mut s = self.lock();
            (
                std::mem::take(&mut s.dns),
                std::mem::take(&mut s.http),
                std::mem::take(&mut s.sources),
            )
        };
        for l in http.values() {
            l.stop();
        }
        for (_, l) in dns {
            l.stop().await;
        }
        drop(sources);
    }

    /// Polls the Corefile as the `reload` directive says, while it says so. Runs until the task
    /// is dropped.
    pub async fn reload_loop(self: Arc<Self>) {
        loop {
            let Some(cfg) = self.reload_config() else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            // Spread over ±jitter/2, as CoreDNS draws it.
            let half = cfg.jitter.as_secs_f64() / 2.0;
            let offset = if half > 0.0 {
                rand::random_range(-half..half)
            } else {
                0.0
            };
            let wait = (cfg.interval.as_secs_f64() + offset).max(1.0);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            let _ = self.reload(false).await;
        }
    }
}

/// Builds every chain of `config`, each plugin by its own `setup` (the registry), block by
/// block. A `kubernetes` source whose settings are unchanged is taken over from `running`; the
/// others are started here, and stop again if what is built is dropped unused.
async fn build(
    config: &Config,
    running: &[Arc<ClusterSource>],
    app: &App,
) -> anyhow::Result<Built> {
    let opts = &app.opts;
    let mut built = Built {
        ports: BTreeMap::new(),
        process: Process::default(),
        sources: Vec::new(),
        enabled: Vec::new(),
    };
    for block in &config.servers {
        let mut servers = Vec::new();
        for key in &block.keys {
            for bind in &block.binds {
                servers.push(server_label(bind.or(opts.bind), key.port, key.tls));
            }
        }
        let mut setup = Setup::new(
            &block.keys,
            &block.binds,
            servers,
            &app.shared.metrics,
            &mut built.process,
        );
        // The source goes in first: the plugins above `kubernetes` in the chain read its index.
        if let Some(spec) = block.plugins.iter().find_map(registry::cluster_source) {
            let have = built
                .sources
                .iter()
                .chain(running)
                .find(|k| k.key == spec.key)
                .cloned();
            let source = match have {
                Some(k) => k,
                None => {
                    let k = Arc::new(ClusterSource::start(&spec, &app.shared.metrics).await?);
                    app.indexes_built.fetch_add(1, Ordering::Relaxed);
                    k
                }
            };
            if !built.sources.iter().any(|k| Arc::ptr_eq(k, &source)) {
                built.sources.push(source.clone());
            }
            setup.share(source);
        }
        for plugin in &block.plugins {
            registry::setup(plugin, &mut setup).map_err(|e| e.at(&block.pos))?;
        }
        let chain = setup.finish();
        for key in &block.keys {
            for bind in &block.binds {
                built
                    .ports
                    .entry(DnsKey::new(*bind, key.port))
                    .or_default()
                    .push((key.zone.clone(), chain.clone()));
                let server = server_label(bind.or(opts.bind), key.port, key.tls);
                for p in &block.plugins {
                    built
                        .enabled
                        .push((server.clone(), key.zone.to_string(), p.name()));
                }
            }
        }
    }
    Ok(built)
}

/// The `server` label of the metrics for a port: `dns://:53`.
fn server_label(bind: Option<IpAddr>, port: u16, tls: bool) -> String {
    let scheme = if tls { "tls" } else { "dns" };
    match bind {
        Some(ip) => format!("{scheme}://{}", SocketAddr::new(ip, port)),
        None => format!("{scheme}://:{port}"),
    }
}
