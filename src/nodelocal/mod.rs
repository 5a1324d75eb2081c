//! The node-local role: clusterdns started with node-cache's command line runs as NodeLocal
//! DNSCache's DaemonSet runs node-cache. It renders the Corefile from the ConfigMap mounts,
//! puts the local addresses on their link and the conntrack rules in place before it answers,
//! re-checks both every sync interval, and on SIGTERM removes exactly what it added, unless
//! another instance (an update with surge) is serving on the node.
//!
//! A role beside `app`: it starts an [`App`] with the Corefile it wrote, as any Corefile runs.

pub mod args;
pub mod netlink;
pub mod presence;
pub mod render;
pub mod rules;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arc_swap::ArcSwap;
use prometheus::IntCounterVec;

use crate::app::{App, StartOptions};
use crate::config::LoadOptions;
use crate::observe::http::{HttpListener, Routes, Shared};
use crate::observe::metrics::Metrics;
use crate::server::listen::Limits;

pub use args::{Firewall, Params};

/// What was set up, for the checks and the teardown.
#[derive(Default)]
struct Network {
    /// The rules' backend, once chosen.
    backend: Option<rules::Backend>,
}

/// A running node-local cache.
pub struct NodeLocal {
    parts: Arc<Parts>,
    app: Arc<App>,
    presence: presence::Presence,
    /// The last Corefile written, to tell a change.
    written: Mutex<String>,
    _metrics_http: HttpListener,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl NodeLocal {
    /// Renders the Corefile, sets up the link, the addresses and the rules, then starts
    /// answering.
    pub async fn start(params: Params, limits: Limits) -> anyhow::Result<Arc<NodeLocal>> {
        let env = render::service_env(&params.upstream_svc);
        let cluster_dns: IpAddr = std::env::var(&env)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| {
                format!(
                    "the address of the Service -upstreamsvc names ({}) is not in ${env}: \
                     kubelet sets it in pods started after that Service exists",
                    params.upstream_svc
                )
            })?;
        let metrics = Arc::new(Metrics::new());
        let errors = metrics.plugin_counter(
            "coredns_nodecache_setup_errors_total",
            "The number of errors during periodic network setup for node-cache",
            &["errortype"],
        );
        for t in [
            "interface_add",
            "interface_check",
            "configmap",
            "iptables",
            "iptables_lock",
        ] {
            errors.with_label_values(&[t]);
        }
        let parts = Arc::new(Parts {
            params,
            cluster_dns,
            errors,
            net: Mutex::new(Network::default()),
            kube_dns: Mutex::new(render::KubeDns::default()),
        });
        let params = &parts.params;
        let corefile = parts
            .write_corefile(None)?
            .context("the Corefile could not be written")?;
        // Announced first: an older instance stopping from now on leaves the node's network
        // to this one.
        let presence = presence::Presence::announce(&params.interface)
            .context("announcing this instance on the node")?;
        // The link, the addresses and the rules go in before the sockets are bound: the
        // addresses must exist to bind them, and the NOTRACK rules apply only to packets for
        // a bound socket, so they take effect at the moment the cache answers.
        let p = parts.clone();
        tokio::task::spawn_blocking(move || p.sync(true))
            .await
            .context("setting up the node's network")?;
        // A start that fails from here on undoes the setup, as a SIGTERM would.
        let (app, metrics_http) = match Self::serve(params, limits, metrics).await {
            Ok(started) => started,
            Err(e) => {
                parts.leave(&presence).await;
                return Err(e);
            }
        };
        let node = Arc::new(NodeLocal {
            parts: parts.clone(),
            app: app.clone(),
            presence,
            written: Mutex::new(corefile),
            _metrics_http: metrics_http,
            tasks: Mutex::new(Vec::new()),
        });
        let mut tasks = vec![tokio::spawn(app.reload_loop())];
        let every = parts.params.sync_interval;
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let p = parts.clone();
                let _ = tokio::task::spawn_blocking(move || p.sync(false)).await;
            }
        }));
        let weak = Arc::downgrade(&node);
        let every = node.parts.params.config_sync;
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(n) = weak.upgrade() else { return };
                n.refresh_corefile().await;
            }
        }));
        *crate::sync::lock(&node.tasks) = tasks;
        Ok(node)
    }

    /// Starts answering with the Corefile written, and the metrics listener.
    async fn serve(
        params: &Params,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<(Arc<App>, HttpListener)> {
        let app = App::start_file(StartOptions {
            bind: None,
            path: Some(params.corefile.clone()),
            load: LoadOptions {
                default_port: params.port,
            },
            limits,
            metrics: Some(metrics.clone()),
        })
        .await?;
        // The metrics listener and the pidfile; the server stops again if either fails.
        let rest = async {
            let at = crate::corefile::args::parse_listen_addr(&params.metrics_listen)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("-metrics-listen-address {}", params.metrics_listen))?;
            let shared = Arc::new(Shared {
                metrics,
                readiness: ArcSwap::from_pointee(Vec::new()),
            });
            let routes = Routes {
                metrics: true,
                ..Default::default()
            };
            let listener = HttpListener::bind(&at, routes, shared)
                .await
                .with_context(|| format!("-metrics-listen-address {}", params.metrics_listen))?;
            if let Some(pid) = &params.pidfile {
                std::fs::write(pid, format!("{}\n", std::process::id()))
                    .with_context(|| format!("writing the pidfile {}", pid.display()))?;
            }
            Ok::<_, anyhow::Error>(listener)
        }
        .await;
        match rest {
            Ok(listener) => Ok((app, listener)),
            Err(e) => {
                app.close().await;
                Err(e)
            }
        }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Re-renders the Corefile from the mounts; when it changed, writes it and reloads.
    pub async fn refresh_corefile(&self) {
        let before = crate::sync::lock(&self.written).clone();
        match self.parts.write_corefile(Some(&before)) {
            Ok(Some(text)) => {
                *crate::sync::lock(&self.written) = text;
                // node-cache signals itself with -reloadwithsignal, or leaves it to the
                // `reload` directive; reloading here does what either would, at once.
                let _ = self.app.reload(false).await;
            }
            Ok(None) => {}
            Err(e) => tracing::error!("{e:#}"),
        }
    }

    /// SIGUSR1: re-render and reload now.
    pub async fn reload(&self) {
        self.refresh_corefile().await;
        let _ = self.app.reload(true).await;
    }

    /// Stops answering, then removes the rules, the addresses and the link this instance
    /// set up, unless `-skipteardown` or another instance is serving on this node.
    pub async fn stop(&self) {
        for t in crate::sync::lock(&self.tasks).drain(..) {
            t.abort();
        }
        self.app.shutdown().await;
        let params = &self.parts.params;
        if let Some(pid) = &params.pidfile {
            let _ = std::fs::remove_file(pid);
        }
        self.parts.leave(&self.presence).await;
    }
}

/// What the setup, the checks and the teardown work with (off the runtime's threads: they
/// wait on netlink and on nft or iptables).
struct Parts {
    params: Params,
    cluster_dns: IpAddr,
    errors: IntCounterVec,
    net: Mutex<Network>,
    /// The last kube-dns ConfigMap that was read whole.
    kube_dns: Mutex<render::KubeDns>,
}

impl Parts {
    /// Removes what the setup added, unless `-skipteardown` or another instance on this
    /// node (an update with surge) serves with it.
    async fn leave(self: &Arc<Self>, presence: &presence::Presence) {
        if self.params.skip_teardown {
            tracing::info!(
                "Leaving the link, the addresses and the rules in place (-skipteardown)"
            );
            return;
        }
        if presence.others() > 0 {
            tracing::info!(
                "Another instance serves on {}: leaving the link, the addresses and the rules to it",
                self.params.interface
            );
            return;
        }
        let p = self.clone();
        let _ = tokio::task::spawn_blocking(move || p.teardown()).await;
    }

    fn spec(&self) -> rules::Spec {
        rules::Spec {
            ips: self.params.local_ips.clone(),
            port: self.params.port,
            health_port: self.params.health_port,
        }
    }

    fn count(&self, errortype: &str) {
        self.errors.with_label_values(&[errortype]).inc();
    }

    /// Puts back whatever of the link, the addresses and the rules is missing.
    fn sync(&self, first: bool) {
        if self.params.setup_interface {
            self.sync_link(first);
        }
        if self.params.setup_iptables {
            self.sync_rules(first);
        }
    }

    fn sync_link(&self, first: bool) {
        let name = &self.params.interface;
        let mut nl = match netlink::Netlink::open() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("Error checking interface {name}: netlink: {e}");
                self.count("interface_check");
                return;
            }
        };
        let link = match nl.link(name) {
            Ok(Some(l)) => l,
            Ok(None) => match nl.create_dummy(name) {
                Ok(l) => {
                    tracing::info!("Added interface - {name}");
                    l
                }
                Err(e) => {
                    tracing::error!("Failed to add non-existent interface {name}: {e}");
                    self.count("interface_add");
                    return;
                }
            },
            Err(e) => {
                tracing::error!("Error checking interface {name}: {e}");
                self.count("interface_check");
                return;
            }
        };
        for ip in &self.params.local_ips {
            match nl.add_address(link.index, *ip) {
                Ok(true) if !first => tracing::warn!("Added back address {ip} to {name}"),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("Failed to add address {ip} to {name}: {e}");
                    self.count("interface_add");
                }
            }
        }
    }

    fn sync_rules(&self, first: bool) {
        let mut net = crate::sync::lock(&self.net);
        if net.backend.is_none() {
            net.backend = match self.params.firewall {
                Firewall::Nftables => Some(rules::Backend::Nft),
                Firewall::Iptables => Some(rules::Backend::Iptables("iptables".into())),
                Firewall::Auto => rules::Backend::detect(),
            };
            match &net.backend {
                Some(b) => tracing::info!("Writing the node's rules with {}", b.name()),
                None => {
                    tracing::error!("Neither nft nor iptables is installed: no rules are written");
                    self.count("iptables");
                    return;
                }
            }
        }
        let Some(backend) = net.backend.clone() else {
            return;
        };
        drop(net);
        match backend.ensure(&self.spec()) {
            Ok(rules::Outcome::Written) if !first => {
                tracing::warn!(
                    "Put back the node-local rules ({}): some were missing or changed",
                    backend.name()
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!("Error writing the node-local rules: {e}");
                self.count(e.errortype());
            }
        }
    }

    fn teardown(&self) {
        tracing::info!("Tearing down");
        if self.params.setup_iptables {
            let backend = crate::sync::lock(&self.net).backend.clone();
            if let Some(b) = backend
                && let Err(e) = b.remove()
            {
                tracing::error!("Error removing the node-local rules: {e}");
                self.count(e.errortype());
            }
        }
        if !self.params.setup_interface {
            return;
        }
        let name = &self.params.interface;
        let Ok(mut nl) = netlink::Netlink::open() else {
            return;
        };
        let Ok(Some(link)) = nl.link(name) else {
            return;
        };
        if link.alias.as_deref() == Some(netlink::OUR_ALIAS) {
            if let Err(e) = nl.delete_link(link.index) {
                tracing::error!("Failed to remove interface {name}: {e}");
            }
            return;
        }
        // A link made by someone else stays; only the addresses go.
        for ip in &self.params.local_ips {
            if let Err(e) = nl.delete_address(link.index, *ip) {
                tracing::error!("Failed to remove address {ip} from {name}: {e}");
            }
        }
    }
}

/// Renders the Corefile from the mounts and writes it where `-conf` says, unless it is what
/// `before` holds. Returns the text written, or `None` when nothing changed. A mount that
/// cannot be read is counted (`configmap`) and the Corefile left as it was.
impl Parts {
    fn write_corefile(&self, before: Option<&str>) -> anyhow::Result<Option<String>> {
        let params = &self.params;
        let errors = &self.errors;
        let cluster_dns = self.cluster_dns;
        let fail = |e: anyhow::Error| {
            errors.with_label_values(&["configmap"]).inc();
            e
        };
        let base = std::fs::read_to_string(&params.base_corefile)
            .with_context(|| format!("reading -basecorefile {}", params.base_corefile.display()))
            .map_err(fail)?;
        let dir = params.kubedns_cm.clone().or_else(|| {
            let d = PathBuf::from("/etc/kube-dns");
            d.is_dir().then_some(d)
        });
        let kube_dns = match &dir {
            Some(d) => match render::KubeDns::read(d) {
                Ok(k) => {
                    *crate::sync::lock(&self.kube_dns) = k.clone();
                    k
                }
                Err(e) => {
                    errors.with_label_values(&["configmap"]).inc();
                    tracing::error!("Invalid kube-dns ConfigMap, the last good one stays: {e}");
                    crate::sync::lock(&self.kube_dns).clone()
                }
            },
            None => render::KubeDns::default(),
        };
        let text = render::render(&render::Inputs {
            base: &base,
            local_ips: &params.local_ips,
            cluster_dns,
            kube_dns: &kube_dns,
            port: params.port,
        });
        if before == Some(text.as_str()) {
            return Ok(None);
        }
        write_atomically(&params.corefile, &text)
            .with_context(|| format!("writing the Corefile {}", params.corefile.display()))
            .map_err(fail)?;
        tracing::info!(
            "Updated Corefile with {} custom stubdomains and upstream servers {}",
            kube_dns.stub_domains.len(),
            if kube_dns.upstream_nameservers.is_empty() {
                "/etc/resolv.conf".to_string()
            } else {
                kube_dns.upstream_nameservers.join(" ")
            }
        );
        Ok(Some(text))
    }
}

/// Writes beside the file, then renames over it: a reload never reads half a Corefile.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
