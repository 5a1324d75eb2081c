//! The Kubernetes API as a source: one kube-rs watcher per kind (Namespaces, Services,
//! EndpointSlices, Pods when `pods verified` needs them, ServiceImports when `multicluster`
//! does), each object slimmed as it arrives and applied to the [`Index`] as one change.
//!
//! A list after the first (410 Gone, say) is compared object by object with what is held
//! ([`Index::relist_object`]): what changed goes in, what did not costs a comparison, and what
//! it did not list (deleted while the watch was down) goes at its end
//! ([`Index::finish_relist`]); nothing is taken away before, so a reader never sees a
//! half-empty cluster. When a watch fails the kind is *stale*: answers keep coming from the
//! last data, one line is logged, and `clusterdns_kubernetes_stale_seconds` counts. One cheap
//! probe then finds out when the API answers again ([`Reachability`]), and every kind resumes
//! its watch from the last resourceVersion it saw at that moment; it lists again only where the
//! server no longer has that version (410 Gone) or the first list never came.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::observe::metrics::Metrics;
use crate::sync::lock;

use super::Filters;
use crate::cluster::change::{Change, Kind};
use crate::cluster::index::{Index, Relist};
use crate::cluster::slim::{self, Key, ServiceImport, SlimError};
use crate::cluster::source::SourceStatus;

/// The annotation the EndpointSlice controller sets to when the change behind a slice happened.
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// How to reach the Kubernetes API. All `None`: in-cluster, with the pod's service account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiConfig {
    /// `kubeconfig PATH [CONTEXT]`.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `endpoint URL`.
    pub endpoint: Option<String>,
    /// `tls CERT KEY CACERT` (with `endpoint`).
    pub tls: Option<TlsFiles>,
    /// What the client may ask of the API server (`apiserver_qps`, `apiserver_burst`,
    /// `apiserver_max_inflight`).
    pub limits: ApiLimits,
}

/// Client-side limits on requests to the API server, as CoreDNS 1.14's properties set them.
/// None set: no limit (what clusterdns always did; its requests are few).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiLimits {
    /// Requests per second, in thousandths (`apiserver_qps 2.5` is 2500).
    pub milli_qps: Option<u64>,
    /// Requests allowed at once above the rate (`apiserver_burst`); the rate's own second's
    /// worth where unset.
    pub burst: Option<u64>,
    /// Requests in flight at once (`apiserver_max_inflight`): a watch counts until its answer
    /// starts, not while it streams.
    pub max_inflight: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A client for the API `cfg` names: a kubeconfig, an endpoint (with optional client TLS), or
/// the pod's service account.
pub async fn client(cfg: &ApiConfig) -> anyhow::Result<Client> {
    let mut config = if let Some(path) = &cfg.kubeconfig {
        let kc = Kubeconfig::read_from(path)
            .with_context(|| format!("kubeconfig {}", path.display()))?;
        let opts = KubeConfigOptions {
            context: cfg.context.clone(),
            ..KubeConfigOptions::default()
        };
        kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .with_context(|| format!("kubeconfig {}", path.display()))?
    } else if let Some(url) = &cfg.endpoint {
        // Spelled as a one-context kubeconfig, so kube reads the certificate files itself.
        let path = |p: &std::path::Path| Some(p.display().to_string());
        let kc = Kubeconfig {
            clusters: vec![NamedCluster {
                name: "endpoint".into(),
                cluster: Some(Cluster {
                    server: Some(url.clone()),
                    certificate_authority: cfg.tls.as_ref().and_then(|t| path(&t.ca)),
                    ..Cluster::default()
                }),
                ..NamedCluster::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: "endpoint".into(),
                auth_info: Some(AuthInfo {
                    client_certificate: cfg.tls.as_ref().and_then(|t| path(&t.cert)),
                    client_key: cfg.tls.as_ref().and_then(|t| path(&t.key)),
                    ..AuthInfo::default()
                }),
                ..NamedAuthInfo::default()
            }],
            contexts: vec![NamedContext {
                name: "endpoint".into(),
                context: Some(Context {
                    cluster: "endpoint".into(),
                    user: Some("endpoint".into()),
                    ..Context::default()
                }),
                ..NamedContext::default()
            }],
            current_context: Some("endpoint".into()),
            ..Kubeconfig::default()
        };
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("endpoint {url}"))?
    } else {
        kube::Config::incluster().context(
            "no kubeconfig or endpoint given and not running in a cluster (in-cluster \
             configuration needs KUBERNETES_SERVICE_HOST and the service account files)",
        )?
    };
    // kube's client retries 429, 503 and 504 answers by itself, up to 15 times with a backoff
    // that doubles from 5 ms: minutes during which an API server that answers 503 (one that is
    // down behind a load balancer, say) looks, to the watcher, like one that is slow to
    // answer. The outage then goes unnoticed (no stale metric, no log line) until the retries
    // run out. The watch loop below retries with its own backoff and says what it sees, as
    // client-go's informers do; so the client does not retry.
    config.default_retry = false;
    let builder =
        kube::client::ClientBuilder::try_from(config).context("building the Kubernetes client")?;
    let limits = cfg.limits;
    // A rate of QPS with bursts of BURST: BURST requests per BURST/QPS seconds (tower's window
    // refills whole, as a token bucket that is emptied does).
    let rate = limits.milli_qps.filter(|q| *q > 0).map(|milli| {
        let burst = limits.burst.unwrap_or_else(|| milli.div_ceil(1000)).max(1);
        let per = Duration::from_secs_f64(burst as f64 * 1000.0 / milli as f64);
        tower::limit::RateLimitLayer::new(burst, per)
    });
    let inflight = limits
        .max_inflight
        .map(tower::limit::ConcurrencyLimitLayer::new);
    Ok(builder
        .with_layer(&tower::util::option_layer(rate))
        .with_layer(&tower::util::option_layer(inflight))
        .build())
}

/// A kubeconfig that cannot serve: unreadable, or without the context named.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(String);

/// What can be checked without reaching the API: the kubeconfig reads and names the context.
pub fn check(cfg: &ApiConfig) -> Result<(), CheckError> {
    let Some(path) = &cfg.kubeconfig else {
        return Ok(());
    };
    let kc =
        Kubeconfig::read_from(path).map_err(|e| CheckError(format!("{}: {e}", path.display())))?;
    if let Some(ctx) = &cfg.context
        && !kc.contexts.iter().any(|c| &c.name == ctx)
    {
        return Err(CheckError(format!(
            "{}: no context named '{ctx}' (it has: {})",
            path.display(),
            kc.contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// What every kind's task shares.
struct Shared {
    index: Arc<Index>,
    filters: Filters,
    metrics: Arc<Metrics>,
    status: Arc<SourceStatus>,
    reach: Arc<Reachability>,
}

/// How often, at most, a failing API is asked whether it answers again: the longest a kind
/// waits after the API is back. A probe is `GET /version`, the cheapest request there is.
const PROBE_EVERY: Duration = Duration::from_millis(1500);
/// The first probes come sooner (a blip ends fast), doubling up to [`PROBE_EVERY`].
const PROBE_FIRST: Duration = Duration::from_millis(100);
/// A probe that gets no answer in this long is asked again (a connection that went silent).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the API server answers, found out with one cheap request while a watch fails, so
/// that every kind resumes the moment it is back instead of each waiting out a long backoff
/// (client-go's reflectors back off up to 30 s each, and list again when they retry).
///
/// A kind whose watch fails starts the probe (one per source) and waits. While the probe finds
/// the API down, the kinds make no request of their own: the probe asks at most every
/// [`PROBE_EVERY`], and when it gets an answer after failing it wakes every waiting kind,
/// which resumes its watch from the last resourceVersion it saw (a list only where the server
/// no longer has that version). Where the probe is answered at once, the API is up and the
/// failure is the kind's own (a 403, say): that kind backs off as client-go's do.
pub(crate) struct Reachability {
    client: Client,
    /// Bumped each time the API answers again after the probe found it down.
    back: tokio::sync::watch::Sender<u64>,
    /// The probe found the API down and has not had an answer since.
    down: std::sync::atomic::AtomicBool,
    /// A probe is running.
    probing: std::sync::atomic::AtomicBool,
}

impl Reachability {
    fn new(client: Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            back: tokio::sync::watch::Sender::new(0),
            down: Default::default(),
            probing: Default::default(),
        })
    }

    /// Waits, after a kind's watch failed, until it is worth polling it again: the API answers
    /// after an outage, or (the API answering all along) the kind's own backoff has passed.
    async fn wait(self: &Arc<Self>, backoff: &mut DefaultBackoff) {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        let mut back = self.back.subscribe();
        back.mark_unchanged();
        if !self.probing.swap(true, AcqRel) {
            tokio::spawn(self.clone().probe());
        }
        let own = backoff.next().unwrap_or(Duration::from_secs(30));
        let timer = tokio::time::sleep(own);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                changed = back.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // The API answers again: resume now, from the start of the backoff.
                    backoff.reset();
                    return;
                }
                () = &mut timer, if !timer.is_elapsed() => {
                    if !self.down.load(Acquire) {
                        return;
                    }
                    // The API is down: only the probe asks it, until it is back.
                }
            }
        }
    }

    /// Asks `GET /version` until it is answered; wakes the waiting kinds if it had failed.
    async fn probe(self: Arc<Self>) {
        use std::sync::atomic::Ordering::Release;
        let mut delay = PROBE_FIRST;
        let mut failed = false;
        loop {
            let answered = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, self.client.apiserver_version()).await,
                Ok(Ok(_))
            );
            if answered {
                self.down.store(false, Release);
                self.probing.store(false, Release);
                if failed {
                    self.back.send_modify(|n| *n += 1);
                }
                return;
            }
            failed = true;
            self.down.store(true, Release);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(PROBE_EVERY);
        }
    }
}

/// The kinds a `kubernetes` block with `filters` watches.
pub fn kinds(filters: &Filters) -> Vec<Kind> {
    let mut kinds = vec![Kind::Namespace, Kind::Service];
    if !filters.noendpoints {
        kinds.push(Kind::Slice);
    }
    if filters.pods {
        kinds.push(Kind::Pod);
    }
    if filters.imports {
        kinds.push(Kind::Import);
    }
    kinds
}

/// Starts one watcher per kind; the returned task owns them (aborting it stops them all).
pub fn spawn(
    client: Client,
    filters: Filters,
    index: Arc<Index>,
    metrics: Arc<Metrics>,
    status: Arc<SourceStatus>,
) -> tokio::task::JoinHandle<()> {
    let kinds = kinds(&filters);
    let shared = Arc::new(Shared {
        index,
        filters,
        metrics,
        status,
        reach: Reachability::new(client.clone()),
    });
    tokio::spawn(async move {
        // Streaming lists where the server may offer them; a server that cannot say its
        // version gets the lists every version serves.
        let streaming = match client.apiserver_version().await {
            Ok(v) => may_stream(&v),
            Err(e) => {
                tracing::debug!("plugin/kubernetes: the API server's version: {e}");
                false
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for kind in &kinds {
            let s = shared.clone();
            let c = client.clone();
            match kind {
                Kind::Namespace => tasks.spawn(run::<Namespace>(c, s, streaming)),
                Kind::Service => tasks.spawn(run::<Service>(c, s, streaming)),
                Kind::Slice => tasks.spawn(run::<EndpointSlice>(c, s, streaming)),
                Kind::Pod => tasks.spawn(run::<Pod>(c, s, streaming)),
                Kind::Import => tasks.spawn(run::<ServiceImport>(c, s, streaming)),
            };
        }
        tasks.spawn(report(shared, kinds));
        // The tasks loop forever; the JoinSet aborts them when this task is aborted.
        while tasks.join_next().await.is_some() {}
    })
}

/// Keeps the stale and objects gauges current, and says once when readiness came from
/// `startup_timeout` rather than a finished list.
async fn report(shared: Arc<Shared>, kinds: Vec<Kind>) {
    let mut warned = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for kind in &kinds {
            let stale = shared.status.stale_for(*kind).unwrap_or_default();
            shared
                .metrics
                .kubernetes
                .stale
                .with_label_values(&[kind.plural()])
                .set(stale.as_secs_f64());
        }
        if !warned && shared.status.ready() && !shared.status.synced() {
            warned = true;
            let pending: Vec<&str> = lock(&shared.status.pending)
                .iter()
                .map(|k| k.plural())
                .collect();
            tracing::warn!(
                "plugin/kubernetes: startup_timeout passed before the first list of {} \
                 finished; serving what there is",
                pending.join(", ")
            );
        }
    }
}

/// A kind of object the source watches.
trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    const KIND: Kind;
    /// Where this kind is listed and watched.
    fn api(client: Client, filters: &Filters) -> Api<Self>;
    /// Server-side selectors for this kind.
    fn config(filters: &Filters) -> watcher::Config;
    /// The object as the index should hold it: an upsert, or a removal when the filters or
    /// DNS do not want it.
    fn change(&self, filters: &Filters) -> Result<Change, SlimError>;
    /// The removal of the object `meta` names.
    fn removal(meta: &ObjectMeta) -> Change;
}

/// The object's namespace, lower-cased, and `name`.
fn key_in(meta: &ObjectMeta, name: &str) -> Key {
    Key::new(
        &meta
            .namespace
            .as_deref()
            .unwrap_or("default")
            .to_ascii_lowercase(),
        &name.to_ascii_lowercase(),
    )
}

fn key(meta: &ObjectMeta) -> Key {
    key_in(meta, meta.name.as_deref().unwrap_or_default())
}

/// Whether an API server of this version may offer streaming lists (`sendInitialEvents`,
/// Kubernetes 1.27+). Older servers ignore the parameter and would never say the initial
/// events are over; a 1.27+ server whose WatchList gate is off (1.33's default) refuses the
/// watch with 422, and [`refuses_streaming`] falls back then.
fn may_stream(version: &k8s_openapi::apimachinery::pkg::version::Info) -> bool {
    let number = |s: &str| {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .ok()
    };
    match (number(&version.major), number(&version.minor)) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 27),
        _ => false,
    }
}

/// Whether the server refused a streaming list as a server without the WatchList feature does
/// (422 Invalid; 400 from anything in front of it that checks parameters).
fn refuses_streaming(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 422 || s.code == 400)
}

/// Whether the server said the resource does not exist (404): a custom resource whose CRD is
/// not installed.
fn not_found(e: &watcher::Error) -> bool {
    matches!(
        e,
        watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
            | watcher::Error::WatchFailed(kube::Error::Api(s))
            if s.code == 404
    )
}

/// Lists from the API server's watch cache, as client-go's informers ask for them:
/// `resourceVersion=0`, which the server answers whole from memory. No `limit`: kube leaves
/// `resourceVersion=0` out of a list that has one (the server ignores the limit there), and
/// what it then sends is a consistent list that the server reads from etcd page by page, the
/// dearest list there is (at 100k Services, hundreds of round trips per kind).
fn from_cache() -> watcher::Config {
    let mut wc = watcher::Config::default().any_semantic();
    wc.page_size = None;
    wc
}

/// The base config: lists from the watch cache ([`from_cache`]), with the label selector.
fn base(filters: &Filters, labels: bool) -> watcher::Config {
    let mut wc = from_cache();
    if labels && let Some(sel) = &filters.labels {
        wc = wc.labels(&sel.to_string());
    }
    wc
}

/// One namespace when only one is served; otherwise every namespace, with the filter applied
/// here.
fn namespaced<K>(client: Client, filters: &Filters) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match filters.namespaces.as_slice() {
        [one] => Api::namespaced(client, one),
        _ => Api::all(client),
    }
}

impl Watched for Namespace {
    const KIND: Kind = Kind::Namespace;
    fn api(client: Client, _: &Filters) -> Api<Self> {
        Api::all(client)
    }
    fn config(filters: &Filters) -> watcher::Config {
        let mut wc = from_cache();
        if let Some(sel) = &filters.namespace_labels {
            wc = wc.labels(&sel.to_string());
        }
        if let [one] = filters.namespaces.as_slice() {
            wc = wc.fields(&format!("metadata.name={one}"));
        }
        wc
    }
    fn change(&self, filters: &Filters) -> Result<Change, SlimError> {
        let (name, labels) = slim::namespace(self)?;
        let wanted = filters.namespace_ok(&name)
            && filters
                .namespace_labels
                .as_ref()
                .is_none_or(|sel| sel.matches(&labels));
        Ok(Change::Namespace {
            name,
            present: wanted,
        })
    }
    fn removal(meta: &ObjectMeta) -> Change {
        let name = meta
            .name
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Change::Namespace {
            name: Arc::from(name),
            present: false,
        }
    }
}

impl Watched for Service {
    const KIND: Kind = Kind::Service;
    fn api(client: Client, filters: &Filters) -> Api<Self> {
        namespaced(client, filters)
    }
    fn config(filters: &Filters) -> watcher::Config {
        base(filters, true)
    }
    fn change(&self, filters: &Filters) -> Result<Change, SlimError> {
        let s = slim::service(self)?;
        let wanted = filters.namespace_ok(&s.key.namespace)
            && filters.labels_ok(self.metadata.labels.as_ref());
        Ok(Change::Service(s.key.clone(), wanted.then_some(s)))
    }
    fn removal(meta: &ObjectMeta) -> Change {
        Change::Service(key(meta), None)
    }
}

impl Watched for EndpointSlice {
    const KIND: Kind = Kind::Slice;
    fn api(client: Client, filters: &Filters) -> Api<Self> {
        namespaced(client, filters)
    }
    fn config(filters: &Filters) -> watcher::Config {
        base(filters, true)
    }
    fn change(&self, filters: &Filters) -> Result<Change, SlimError> {
        let s = slim::endpoint_slice(self, filters.keep())?.filter(|s| {
            filters.namespace_ok(&s.key.namespace)
                && filters.labels_ok(self.metadata.labels.as_ref())
        });
        Ok(Change::Slice(key(&self.metadata), s))
    }
    fn removal(meta: &ObjectMeta) -> Change {
        Change::Slice(key(meta), None)
    }
}

impl Watched for Pod {
    const KIND: Kind = Kind::Pod;
    fn api(client: Client, filters: &Filters) -> Api<Self> {
        namespaced(client, filters)
    }
    fn config(filters: &Filters) -> watcher::Config {
        base(filters, false)
    }
    fn change(&self, filters: &Filters) -> Result<Change, SlimError> {
        let p = slim::pod(self)?.filter(|p| filters.namespace_ok(&p.key.namespace));
        Ok(Change::Pod(key(&self.metadata), p))
    }
    fn removal(meta: &ObjectMeta) -> Change {
        Change::Pod(key(meta), None)
    }
}

/// ServiceImports, the MCS API's custom resource, listed and watched as Services are: the
/// same namespace and label filters, the same watch cache.
impl Watched for ServiceImport {
    const KIND: Kind = Kind::Import;
    fn api(client: Client, filters: &Filters) -> Api<Self> {
        namespaced(client, filters)
    }
    fn config(filters: &Filters) -> watcher::Config {
        base(filters, true)
    }
    fn change(&self, filters: &Filters) -> Result<Change, SlimError> {
        let s = slim::service_import(self)?;
        let wanted = filters.namespace_ok(&s.key.namespace)
            && filters.labels_ok(self.metadata.labels.as_ref());
        Ok(Change::Import(s.key.clone(), wanted.then_some(s)))
    }
    fn removal(meta: &ObjectMeta) -> Change {
        Change::Import(key(meta), None)
    }
}

/// The object as a change; an object the slimming rejects is logged and dropped.
fn slimmed<K: Watched>(obj: &K, filters: &Filters) -> Change {
    obj.change(filters).unwrap_or_else(|e| {
        tracing::warn!("plugin/kubernetes: ignoring {e}");
        K::removal(obj.meta())
    })
}

/// How many listed objects of a first list are applied at a time.
const LISTED_PER_APPLY: usize = 1024;

/// How long a watch resumed after a failure may stay quiet before it is taken as caught up: a
/// server that refuses the watch says so at once, and one that accepts it has nothing to send
/// where nothing changed.
const RESUMED_QUIET: Duration = Duration::from_secs(1);

/// Watches one kind forever: list, then watch. After a failure it waits (see
/// [`Reachability`]) and polls the same watcher again, which resumes the watch from the last
/// resourceVersion it saw; kube's watcher lists again only where it must (the first list
/// failed, or the server answered 410 Gone).
async fn run<K: Watched>(client: Client, shared: Arc<Shared>, mut streaming: bool) {
    let api = K::api(client, &shared.filters);
    let wc = K::config(&shared.filters);
    let mut backoff = DefaultBackoff::default();
    let kind = K::KIND;
    let gauge = shared
        .metrics
        .kubernetes
        .objects
        .with_label_values(&[kind.plural()]);
    loop {
        // A streaming list sends the objects one by one from the watch cache; a list sends
        // them in one response, which is held whole while it is read.
        let config = if streaming {
            wc.clone().streaming_lists()
        } else {
            wc.clone()
        };
        let mut stream = watcher::watcher(api.clone(), config).boxed();
        // The first list of the kind: nothing can have gone, and what is listed goes in as it
        // comes, a batch at a time.
        let mut listing: Option<Vec<Change>> = None;
        // A list after that (410 Gone, say): each object compared with what is held as it
        // comes, the names listed remembered, and what was not listed taken away at the end.
        let mut relist: Option<Relist> = None;
        // After a failure, until the watcher shows it is back.
        let mut resuming = false;
        loop {
            let event = if resuming {
                match tokio::time::timeout(RESUMED_QUIET, stream.next()).await {
                    Ok(event) => event,
                    Err(_) => {
                        resuming = false;
                        shared.status.caught_up(kind);
                        continue;
                    }
                }
            } else {
                stream.next().await
            };
            let Some(event) = event else {
                break; // kube's watcher never ends; start one afresh if it did
            };
            match event {
                Ok(Event::Init) => {
                    // A list after all: it says when it is done.
                    resuming = false;
                    if shared.index.count(kind) == 0 {
                        listing = Some(Vec::new());
                        relist = None;
                    } else {
                        listing = None;
                        relist = Some(Relist::default());
                    }
                }
                Ok(Event::InitApply(obj)) => {
                    let change = slimmed(&obj, &shared.filters);
                    if let Some(r) = relist.as_mut() {
                        shared.index.relist_object(r, change);
                    } else {
                        let listed = listing.get_or_insert_with(Vec::new);
                        listed.push(change);
                        if listed.len() >= LISTED_PER_APPLY {
                            shared.index.apply(listed.drain(..));
                        }
                    }
                }
                Ok(Event::InitDone) => {
                    let applied = match relist.take() {
                        Some(r) => shared.index.finish_relist(kind, r),
                        None => shared
                            .index
                            .finish_first_list(kind, listing.take().unwrap_or_default()),
                    };
                    crate::memory::release_freed();
                    tracing::debug!(
                        "plugin/kubernetes: listed {}: {} owners changed",
                        kind.plural(),
                        applied.owners
                    );
                    shared.status.listed(kind);
                    shared.status.caught_up(kind);
                    backoff.reset();
                    gauge.set(shared.index.count(kind) as i64);
                }
                Ok(Event::Apply(obj)) => {
                    if std::mem::take(&mut resuming) {
                        shared.status.caught_up(kind);
                    }
                    let change = slimmed(&obj, &shared.filters);
                    shared.index.apply([change]);
                    if kind == Kind::Slice {
                        record_programming(&shared, obj.meta());
                    }
                    gauge.set(shared.index.count(kind) as i64);
                }
                Ok(Event::Delete(obj)) => {
                    if std::mem::take(&mut resuming) {
                        shared.status.caught_up(kind);
                    }
                    shared.index.apply([K::removal(obj.meta())]);
                    gauge.set(shared.index.count(kind) as i64);
                }
                Err(e)
                    if streaming
                        && listing.is_none()
                        && relist.is_none()
                        && refuses_streaming(&e) =>
                {
                    // Not an outage: list at once, the way every server offers.
                    tracing::info!(
                        "plugin/kubernetes: the API server does not offer streaming lists ({e}); \
                         listing {} from its watch cache",
                        kind.plural()
                    );
                    streaming = false;
                    break;
                }
                Err(e) => {
                    if kind == Kind::Import && not_found(&e) {
                        // Not an outage: the cluster has no MCS API. Stale all the same (the
                        // metric says so), and the watch tries again, so that installing the
                        // CRD later is picked up.
                        shared.status.missing(
                            kind,
                            "the API server has no ServiceImports (multicluster.x-k8s.io/v1alpha1): \
                             is the MCS API's CRD installed? Names in the multicluster zones \
                             answer without imports until it is",
                        );
                    } else {
                        shared.status.failing(kind, &e);
                    }
                    shared.reach.wait(&mut backoff).await;
                    resuming = true;
                }
            }
        }
    }
}

/// `coredns_kubernetes_dns_programming_duration_seconds`: as CoreDNS, for slices of headless
/// Services that the EndpointSlice controller stamped with the time of the change behind them
/// (so a Service with a selector), from that time to now, when the answer reflects it.
fn record_programming(shared: &Shared, meta: &ObjectMeta) {
    let Some(stamp) = meta.annotations.as_ref().and_then(|a| a.get(TRIGGER_TIME)) else {
        return;
    };
    let Some(service) = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(slim::SERVICE_NAME_LABEL))
    else {
        return;
    };
    let svc = key_in(meta, service);
    if !shared.index.is_headless(&svc) {
        return;
    }
    let Ok(at) = stamp.parse::<k8s_openapi::jiff::Timestamp>() else {
        return;
    };
    let took = k8s_openapi::jiff::Timestamp::now().duration_since(at);
    shared
        .metrics
        .kubernetes
        .dns_programming
        .with_label_values(&["headless_with_selector"])
        .observe(took.as_secs_f64().max(0.0));
}
