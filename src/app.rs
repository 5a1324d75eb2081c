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

use crate::chain::{Chain, Handler, Observer};
use crate::cluster::index::{Index, IndexOptions};
use crate::cluster::records::RecordOptions;
use crate::cluster::watch::{self, SourceStatus};
use crate::cluster::{self, file};
use crate::config::args::ListenAddr;
use crate::config::kubernetes::{KubernetesConfig, Source};
use crate::config::reload::ReloadConfig;
use crate::config::{self, Config, ConfigErrors, LoadOptions, PluginConfig};
use crate::observe::http::{HttpListener, Readiness, Routes, Shared};
use crate::observe::metrics::Metrics;
use crate::plugins;
use crate::server::Router;
use crate::server::limit::SourceLimitConfig;
use crate::server::listen::{DnsListener, Limits};

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
}

/// Where a DNS listener listens: the address a `bind` named (`None`: every address, or the
/// one given on the command line) and the port the Corefile named.
pub type DnsKey = (Option<IpAddr>, u16);

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

/// Kept for the tests' and callers' convenience: a started [`App`].
pub type Running = App;

struct State {
    digest: String,
    dns: BTreeMap<DnsKey, DnsListener>,
    http: BTreeMap<ListenAddr, HttpListener>,
    kube: Vec<Kube>,
    lameduck: Option<Duration>,
    reload: Option<ReloadConfig>,
}

/// A `kubernetes` index and the task that feeds it, reusable across reloads.
struct Kube {
    key: IndexKey,
    /// Built by the configuration being applied (not taken over from the running one).
    fresh: bool,
    index: Arc<Index>,
    ready: Arc<SourceStatus>,
    task: tokio::task::JoinHandle<()>,
}

/// The settings an index depends on (not `fallthrough`, which only the handler reads).
#[derive(Clone, Debug, PartialEq)]
struct IndexKey(KubernetesConfig);

impl IndexKey {
    fn of(cfg: &KubernetesConfig) -> Self {
        let mut k = cfg.clone();
        k.fallthrough = Default::default();
        // Moving the line in the Corefile changes nothing served.
        k.objects_at = None;
        Self(k)
    }
}

/// A `kubernetes` source is ready once every watched kind has been listed, or its
/// `startup_timeout` has passed.
impl Readiness for SourceStatus {
    fn name(&self) -> &'static str {
        "kubernetes"
    }
    fn is_ready(&self) -> bool {
        self.ready()
    }
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
    http: BTreeMap<ListenAddr, Routes>,
    kube: Vec<Kube>,
    readiness: Vec<Arc<dyn Readiness>>,
    /// (server label, zone, plugin) for `coredns_plugin_enabled`.
    enabled: Vec<(String, String, &'static str)>,
    lameduck: Option<Duration>,
    reload: Option<ReloadConfig>,
    /// `loop` probes to send once the ports listen: (where, probe).
    probes: Vec<(DnsKey, Arc<plugins::loops::Probe>)>,
    /// `ratelimit` of the blocks on each port, merged.
    source_limits: BTreeMap<DnsKey, SourceLimitConfig>,
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
            metrics: Arc::new(Metrics::new()),
            readiness: ArcSwap::from_pointee(Vec::new()),
        });
        let app = Arc::new(App {
            opts,
            shared,
            state: Mutex::new(State {
                digest: String::new(),
                dns: BTreeMap::new(),
                http: BTreeMap::new(),
                kube: Vec::new(),
                lameduck: None,
                reload: None,
            }),
            reloading: tokio::sync::Mutex::new(()),
            indexes_built: Default::default(),
        });
        let (built, _) = build(config, Vec::new(), &app).await.map_err(|(e, _)| e)?;
        app.apply(built, Vec::new(), digest).await?;
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
            .map(|((bind, port), l)| Listener {
                port: *port,
                bind: *bind,
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
            .find(|((_, p), _)| *p == port)
            .map(|(_, l)| l.router())
    }

    /// Where an HTTP address the Corefile named is listening.
    pub fn http_addr(&self, configured: &str) -> Option<SocketAddr> {
        let want = config::args::parse_listen_addr(configured).ok()?;
        self.lock().http.get(&want).map(|l| l.addr)
    }

    /// The `reload` directive's settings, if the Corefile has one.
    pub fn reload_config(&self) -> Option<ReloadConfig> {
        self.lock().reload
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Re-reads the Corefile. Unless `force`, nothing happens when its content is unchanged.
    /// Returns whether a new configuration is now serving.
    pub async fn reload(&self, force: bool) -> Result<bool, ConfigErrors> {
        let Some(path) = self.opts.path.clone() else {
            return Ok(false);
        };
        let _one = self.reloading.lock().await;
        let load = self.opts.load.clone();
        let loaded = tokio::task::spawn_blocking(move || config::read(&path, &load))
            .await
            .map_err(|e| internal(format!("reading the Corefile: {e}")))?;
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
                self.shared.metrics.reload_failed.inc();
                for e in &errors.0 {
                    tracing::error!("Restart failed: {e}");
                }
                return Err(errors);
            }
        };
        let reuse = std::mem::take(&mut self.lock().kube);
        let (built, leftover) = match build(&config, reuse, self).await {
            Ok(b) => b,
            Err((e, kept)) => {
                self.lock().kube = kept;
                self.shared.metrics.reload_failed.inc();
                tracing::error!("Restart failed: {e:#}");
                return Err(internal(format!("{e:#}")));
            }
        };
        if let Err(e) = self.apply(built, leftover, loaded.digest).await {
            self.shared.metrics.reload_failed.inc();
            tracing::error!("Restart failed: {e:#}");
            return Err(internal(format!("{e:#}")));
        }
        tracing::info!("Reloading complete");
        Ok(true)
    }

    /// Puts `built` in service: binds what is new, then swaps routers and routes in, then
    /// closes what is gone (`leftover`: running indexes the new configuration does not use).
    /// On a bind error nothing running is touched.
    async fn apply(
        &self,
        mut built: Built,
        leftover: Vec<Kube>,
        digest: String,
    ) -> anyhow::Result<()> {
        match self.bind_new(&built).await {
            Ok(new) => {
                let probes = std::mem::take(&mut built.probes);
                self.swap_in(&mut built, new, digest).await;
                for ((bind, port), probe) in probes {
                    let ip = match bind.or(self.opts.bind) {
                        Some(ip) if !ip.is_unspecified() => ip,
                        _ => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                    };
                    tokio::spawn(probe.run(SocketAddr::new(ip, port)));
                }
                for k in leftover {
                    k.task.abort();
                }
                Ok(())
            }
            Err(e) => {
                // Keep the running indexes; drop the ones built for nothing.
                let mut s = self.lock();
                for k in built.kube {
                    if k.fresh {
                        k.task.abort();
                    } else {
                        s.kube.push(k);
                    }
                }
                s.kube.extend(leftover);
                Err(e)
            }
        }
    }

    /// Binds the ports and HTTP addresses `built` needs that are not open yet.
    async fn bind_new(&self, built: &Built) -> anyhow::Result<New> {
        let routers: BTreeMap<DnsKey, Arc<Router>> =
            built
                .ports
                .iter()
                .map(|(key, blocks)| (*key, blocks.clone()))
                .map(|(key, blocks)| {
                    // The Corefile's `ratelimit` for the port, else the command line's.
                    let limit = built.source_limits.get(&key).cloned().unwrap_or_else(|| {
                        SourceLimitConfig {
                            limit: self.opts.limits.udp_per_source_qps,
                            exempt: Vec::new(),
                        }
                    });
                    let router = Router::new(
                        blocks,
                        server_label(key.0.or(self.opts.bind), key.1),
                        self.shared.metrics.clone(),
                    )
                    .with_source_limit(&limit);
                    (key, Arc::new(router))
                })
                .collect();
        // Bind what is new first: if that fails, the running configuration stays as it was.
        let (have_dns, have_http): (Vec<DnsKey>, Vec<ListenAddr>) = {
            let s = self.lock();
            (
                s.dns.keys().copied().collect(),
                s.http.keys().cloned().collect(),
            )
        };
        let mut new_dns = BTreeMap::new();
        for (key, router) in routers.iter().filter(|(k, _)| !have_dns.contains(k)) {
            let (bind, port) = *key;
            let l = DnsListener::bind(
                bind.or(self.opts.bind),
                port,
                router.clone(),
                self.opts.limits,
            )
            .await
            .with_context(|| match bind {
                Some(ip) => format!("cannot listen on {}", SocketAddr::new(ip, port)),
                None => format!("cannot listen on port {port}"),
            })?;
            new_dns.insert(*key, l);
        }
        let mut new_http = BTreeMap::new();
        for (addr, routes) in built.http.iter().filter(|(a, _)| !have_http.contains(a)) {
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
            .store(Arc::new(std::mem::take(&mut built.readiness)));
        let metrics = &self.shared.metrics;
        metrics.plugin_enabled.reset();
        for (server, zone, name) in &built.enabled {
            metrics
                .plugin_enabled
                .with_label_values(&[server.as_str(), zone.as_str(), "", name])
                .set(1);
        }
        if !digest.is_empty() {
            metrics.reload_version.reset();
            metrics
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
            for (addr, routes) in &built.http {
                if let Some(l) = s.http.get(addr) {
                    l.set_routes(*routes);
                }
            }
            s.http.extend(new_http);
            s.http.retain(|addr, _| built.http.contains_key(addr));
            s.kube = std::mem::take(&mut built.kube);
            for k in &mut s.kube {
                k.fresh = false;
            }
            s.lameduck = built.lameduck;
            s.reload = built.reload;
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
                config::args::format_duration(d)
            );
            tokio::time::sleep(d).await;
        }
        self.close().await;
    }

    /// Stops at once: listeners closed, watches ended, no lameduck.
    pub async fn close(&self) {
        let (dns, http, kube) = {
            let mut s = self.lock();
            (
                std::mem::take(&mut s.dns),
                std::mem::take(&mut s.http),
                std::mem::take(&mut s.kube),
            )
        };
        for l in http.values() {
            l.stop();
        }
        for (_, l) in dns {
            l.stop().await;
        }
        for k in kube {
            k.task.abort();
        }
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

impl Drop for App {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for k in &s.kube {
            k.task.abort();
        }
    }
}

fn internal(msg: String) -> ConfigErrors {
    ConfigErrors(vec![config::ConfigError::new(
        &crate::corefile::Pos {
            file: "".into(),
            line: 0,
            col: 0,
        },
        msg,
    )])
}

/// Builds every chain of `config`. `reuse` holds the running indexes; those whose settings are
/// unchanged are taken over, the others are handed back with the result (the running
/// configuration still uses them until the swap). On error every running index is handed back.
async fn build(
    config: &Config,
    mut reuse: Vec<Kube>,
    app: &App,
) -> Result<(Built, Vec<Kube>), (anyhow::Error, Vec<Kube>)> {
    let opts = &app.opts;
    let mut built = Built {
        ports: BTreeMap::new(),
        http: BTreeMap::new(),
        kube: Vec::new(),
        readiness: Vec::new(),
        enabled: Vec::new(),
        lameduck: None,
        reload: None,
        probes: Vec::new(),
        source_limits: BTreeMap::new(),
    };
    // Hands back what was taken from `reuse` and drops what was built for nothing.
    fn give_back(built: Built, mut reuse: Vec<Kube>) -> Vec<Kube> {
        for k in built.kube {
            if k.fresh {
                k.task.abort();
            } else {
                reuse.push(k);
            }
        }
        reuse
    }
    for block in &config.servers {
        let binds = &block.binds;
        let mut handlers: Vec<Box<dyn Handler>> = Vec::new();
        let mut observers: Vec<Arc<dyn Observer>> = Vec::new();
        let mut probe: Option<Arc<plugins::loops::Probe>> = None;
        let mut caches = Vec::new();
        let mut indexes = Vec::new();
        let mut autopath: Option<(usize, config::autopath::AutopathConfig)> = None;
        let mut external: Option<(usize, &config::k8s_external::K8sExternalConfig)> = None;
        let mut statuses = Vec::new();
        for plugin in &block.plugins {
            match plugin {
                PluginConfig::Cache(c) => {
                    let cache = plugins::cache::Cache::new(c, app.shared.metrics.clone());
                    caches.push(cache.shared());
                    handlers.push(Box::new(cache));
                }
                PluginConfig::Any => handlers.push(Box::new(plugins::any::Any)),
                PluginConfig::Bind(_) => {}
                PluginConfig::Ratelimit(c) => {
                    for key in &block.keys {
                        for bind in binds {
                            let merged = match built.source_limits.get(&(*bind, key.port)) {
                                Some(had) => had.merge(c),
                                None => c.clone(),
                            };
                            built.source_limits.insert((*bind, key.port), merged);
                        }
                    }
                }
                PluginConfig::Autopath(c) => {
                    // @kubernetes needs the block's index, built further down the chain: the
                    // handler goes in once the loop is done.
                    autopath = Some((handlers.len(), c.clone()));
                }
                PluginConfig::K8sExternal(c) => {
                    // Like autopath: it reads the index of the block's kubernetes plugin.
                    external = Some((handlers.len(), c));
                }
                PluginConfig::Loadbalance => {
                    handlers.push(Box::new(plugins::loadbalance::Loadbalance))
                }
                PluginConfig::Loop => {
                    let zone = block
                        .keys
                        .first()
                        .map_or_else(Name::root, |k| k.zone.clone());
                    let p = Arc::new(plugins::loops::Probe::new(&zone));
                    if let Some(key) = block.keys.first() {
                        built.probes.push(((binds[0], key.port), p.clone()));
                    }
                    handlers.push(Box::new(plugins::loops::Loop::new(p.clone())));
                    probe = Some(p);
                }
                PluginConfig::Forward(c) => {
                    match plugins::forward::Forward::new(
                        c,
                        app.shared.metrics.clone(),
                        probe.clone(),
                    ) {
                        Ok(f) => handlers.push(Box::new(f)),
                        Err(e) => {
                            let e = anyhow::anyhow!("plugin/forward: {e}");
                            return Err((e, give_back(built, reuse)));
                        }
                    }
                }
                PluginConfig::Hosts(c) => {
                    match plugins::hosts::Hosts::new(c, app.shared.metrics.clone()) {
                        Ok(h) => handlers.push(Box::new(h)),
                        Err(e) => return Err((e, give_back(built, reuse))),
                    }
                }
                PluginConfig::Rewrite(_) => {
                    // Every rule of the block is one handler: a `stop` rule ends them all.
                    if !handlers.iter().any(|h| h.name() == "rewrite") {
                        let rules = block
                            .plugins
                            .iter()
                            .filter_map(|p| match p {
                                PluginConfig::Rewrite(r) => Some((**r).clone()),
                                _ => None,
                            })
                            .collect();
                        handlers.push(Box::new(plugins::rewrite::Rewrite::new(rules)));
                    }
                }
                PluginConfig::Template(c) => handlers.push(Box::new(
                    plugins::template::Template::new(c, app.shared.metrics.clone()),
                )),
                PluginConfig::Errors(c) => handlers.push(Box::new(plugins::errors::Errors::new(c))),
                PluginConfig::Log(c) => observers.push(Arc::new(plugins::log::Log::new(c.clone()))),
                PluginConfig::Kubernetes(cfg) => {
                    let key = IndexKey::of(cfg);
                    let kube = match reuse.iter().position(|k| k.key == key) {
                        Some(i) => reuse.swap_remove(i),
                        None => match kubernetes(cfg, key, &app.shared.metrics).await {
                            Ok(k) => {
                                app.indexes_built.fetch_add(1, Ordering::Relaxed);
                                k
                            }
                            Err(e) => return Err((e, give_back(built, reuse))),
                        },
                    };
                    handlers.push(Box::new(plugins::kubernetes::Kubernetes::new(
                        kube.index.clone(),
                        cfg.fallthrough.clone(),
                        cfg.pods,
                        kube.ready.clone(),
                    )));
                    built.readiness.push(kube.ready.clone());
                    statuses.push(kube.ready.clone());
                    indexes.push(kube.index.clone());
                    built.kube.push(kube);
                }
                PluginConfig::Health(c) => {
                    built.http.entry(c.addr.clone()).or_default().health = true;
                    built.lameduck = built.lameduck.max(c.lameduck);
                }
                PluginConfig::Ready(c) => {
                    built.http.entry(c.addr.clone()).or_default().ready = true
                }
                PluginConfig::Prometheus(c) => {
                    built.http.entry(c.addr.clone()).or_default().metrics = true
                }
                PluginConfig::Reload(c) => built.reload = Some(*c),
            }
        }
        // Before autopath's handler goes in, which sits earlier in the chain.
        if let Some((at, c)) = external {
            let (Some(index), Some(status)) = (indexes.first(), statuses.first()) else {
                let e = anyhow::anyhow!(
                    "plugin/k8s_external: needs a kubernetes plugin in the same block"
                );
                return Err((e, give_back(built, reuse)));
            };
            handlers.insert(
                at,
                Box::new(plugins::k8s_external::K8sExternal::new(
                    c,
                    Arc::clone(index),
                    Arc::clone(status),
                )),
            );
        }
        if let Some((at, c)) = autopath {
            let search = match &c.from {
                config::autopath::SearchFrom::Kubernetes => {
                    let Some(index) = indexes.first() else {
                        let e = anyhow::anyhow!(
                            "plugin/autopath: @kubernetes needs a kubernetes plugin in the same block"
                        );
                        return Err((e, give_back(built, reuse)));
                    };
                    let host = std::fs::read_to_string("/etc/resolv.conf")
                        .map(|t| config::autopath::resolv_conf_search(&t))
                        .unwrap_or_default();
                    plugins::autopath::Search::Kubernetes(Arc::clone(index), host)
                }
                config::autopath::SearchFrom::File(path) => match std::fs::read_to_string(path) {
                    Ok(t) => {
                        plugins::autopath::Search::Fixed(config::autopath::resolv_conf_search(&t))
                    }
                    Err(e) => {
                        let e = anyhow::anyhow!("plugin/autopath: {}: {e}", path.display());
                        return Err((e, give_back(built, reuse)));
                    }
                },
            };
            handlers.insert(
                at,
                Box::new(plugins::autopath::Autopath::new(
                    &c.zones,
                    search,
                    app.shared.metrics.clone(),
                )),
            );
        }
        let chain = Arc::new(Chain::new(handlers, observers));
        for cache in &caches {
            cache.watch(indexes.clone());
            cache.set_chain(&chain);
            for key in &block.keys {
                for bind in binds {
                    cache.register(&server_label(bind.or(opts.bind), key.port));
                }
            }
        }
        for key in &block.keys {
            for bind in binds {
                built
                    .ports
                    .entry((*bind, key.port))
                    .or_default()
                    .push((key.zone.clone(), chain.clone()));
                let server = server_label(bind.or(opts.bind), key.port);
                for p in &block.plugins {
                    built
                        .enabled
                        .push((server.clone(), key.zone.to_string(), p.name()));
                }
            }
        }
    }
    Ok((built, reuse))
}

/// The `server` label of the metrics for a port: `dns://:53`.
fn server_label(bind: Option<IpAddr>, port: u16) -> String {
    match bind {
        Some(ip) => format!("dns://{}", SocketAddr::new(ip, port)),
        None => format!("dns://:{port}"),
    }
}

async fn kubernetes(
    cfg: &KubernetesConfig,
    key: IndexKey,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Kube> {
    let index = Arc::new(Index::new(IndexOptions {
        zones: cfg.zones.clone(),
        ttl: cfg.ttl,
        records: RecordOptions {
            pods: cfg.pods,
            endpoint_pod_names: cfg.endpoint_pod_names,
            ignore_empty_service: cfg.ignore_empty_service,
        },
    }));
    let filters = file::Filters::from_config(cfg);
    let (status, task) = match &cfg.source {
        Source::Objects(path) => {
            let seen = file::fingerprint(path);
            let (p, f) = (path.clone(), filters.clone());
            let snap = tokio::task::spawn_blocking(move || file::load(&p, &f))
                .await?
                .map_err(|e| anyhow::anyhow!("plugin/kubernetes: {}", cfg.objects_error(&e)))?;
            index.replace_all(snap);
            crate::memory::release_freed();
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
            (SourceStatus::loaded(), task)
        }
        Source::Api(api) => {
            let client = watch::client(api)
                .await
                .map_err(|e| anyhow::anyhow!("plugin/kubernetes: {}", causes(&e)))?;
            let status = SourceStatus::waiting_for(&watch::kinds(&filters), cfg.startup_timeout);
            let task = watch::spawn(
                client,
                filters,
                index.clone(),
                metrics.clone(),
                status.clone(),
            );
            (status, task)
        }
    };
    Ok(Kube {
        key,
        index,
        ready: status,
        task,
        fresh: true,
    })
}

/// An error and its causes on one line, leaving out a cause its parent already quotes (kube's
/// errors repeat their source in their own text).
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
