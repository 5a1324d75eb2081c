//! A `kubernetes` block's source of data: its index and the task that feeds it (the API
//! watchers or the objects file's poller). The task runs as long as the source is held:
//! dropping the last [`Arc`] of a source stops it, so a reload that fails, or a configuration
//! that no longer uses a source, needs no hand-written clean-up.

use std::sync::Arc;

use crate::cluster::index::{Index, IndexOptions};
use crate::cluster::records::RecordOptions;
use crate::cluster::source::SourceStatus;
use crate::cluster::source::api;
use crate::cluster::source::file;
use crate::observe::http::Readiness;
use crate::observe::metrics::Metrics;
use crate::plugin::setup::SetupError;

use super::config::{KubernetesConfig, Source};

const NAME: &str = "kubernetes";

/// The settings an index depends on (not `fallthrough`, which only the handler reads): a
/// reload whose `kubernetes` has the same key keeps the running source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceKey(KubernetesConfig);

impl SourceKey {
    pub fn of(cfg: &KubernetesConfig) -> Self {
        let mut k = cfg.clone();
        k.fallthrough = Default::default();
        // Moving the line in the Corefile changes nothing served.
        k.objects_at = None;
        Self(k)
    }
}

/// An index and what keeps it current.
pub struct KubernetesSource {
    pub key: SourceKey,
    pub index: Arc<Index>,
    pub status: Arc<SourceStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubernetesSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `kubernetes` source is ready once every watched kind has been listed, or its
/// `startup_timeout` has passed.
impl Readiness for SourceStatus {
    fn name(&self) -> &'static str {
        NAME
    }
    fn is_ready(&self) -> bool {
        self.ready()
    }
}

impl KubernetesSource {
    /// Builds the index and starts what feeds it: an objects file is read before this returns;
    /// the API is listed in the background, readiness saying when it is done.
    pub async fn start(cfg: &KubernetesConfig, metrics: &Arc<Metrics>) -> Result<Self, SetupError> {
        let index = Arc::new(Index::new(IndexOptions {
            zones: cfg.zones.clone(),
            multicluster: cfg.multicluster.clone(),
            ttl: cfg.ttl,
            records: RecordOptions {
                pods: cfg.pods,
                endpoint_pod_names: cfg.endpoint_pod_names,
                ignore_empty_service: cfg.ignore_empty_service,
            },
        }));
        let filters = cfg.filters();
        let (status, task) = match &cfg.source {
            Source::Objects(path) => {
                let seen = file::fingerprint(path);
                let (p, f) = (path.clone(), filters.clone());
                let snap = tokio::task::spawn_blocking(move || file::load(&p, &f))
                    .await
                    .map_err(|e| SetupError::new(NAME, e))?
                    .map_err(|e| SetupError::new(NAME, cfg.objects_error(&e)))?;
                index.replace_all(snap);
                crate::memory::release_freed();
                tracing::info!(
                    "plugin/kubernetes: loaded {} ({} names)",
                    path.display(),
                    index.len()
                );
                let task = file::watch(path.clone(), filters, index.clone(), file::POLL, seen);
                (SourceStatus::loaded(), task)
            }
            Source::Api(cfg_api) => {
                let client = api::client(cfg_api)
                    .await
                    .map_err(|e| SetupError::new(NAME, causes(&e)))?;
                let status = SourceStatus::waiting_for(&api::kinds(&filters), cfg.startup_timeout);
                let task = api::spawn(
                    client,
                    filters,
                    index.clone(),
                    metrics.clone(),
                    status.clone(),
                );
                (status, task)
            }
        };
        Ok(Self {
            key: SourceKey::of(cfg),
            index,
            status,
            task,
        })
    }
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
