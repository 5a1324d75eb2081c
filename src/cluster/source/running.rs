//! A running source of the cluster's data: its index and the task that feeds it (the API
//! watchers or the objects file's poller). The task runs as long as the source is held:
//! dropping the last [`Arc`] of a source stops it, so a reload that fails, or a configuration
//! that no longer uses a source, needs no hand-written clean-up.
//!
//! The application starts one per [`SourceKey`] before a block is set up and offers it to the
//! block's plugins (`kubernetes` answers from its index; `autopath`, `cache` and
//! `k8s_external` read it too), none of which imports another for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::api::{self, ApiConfig};
use super::file;
use super::{Filters, SourceStatus};
use crate::cluster::index::{Index, IndexOptions};
use crate::observe::http::Readiness;
use crate::observe::metrics::Metrics;

/// Where a source reads the cluster from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// A YAML/JSON file or a folder of them, polled for changes.
    Objects(PathBuf),
    /// The Kubernetes API, listed and watched.
    Api(ApiConfig),
}

/// Everything an index and its feed depend on: two blocks whose keys are equal share one
/// source, and a reload that keeps the key keeps the running source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceKey {
    pub index: IndexOptions,
    pub filters: Filters,
    pub origin: Origin,
    /// Until every kind is listed, readiness waits at most this long.
    pub startup_timeout: Duration,
}

/// What the application starts a source from: its key, and what its errors are told with.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    pub key: SourceKey,
    /// The directive that asked for it, for messages (`kubernetes`).
    pub directive: &'static str,
    /// Where the Corefile names the objects file (`file:line:col`), for an error that has no
    /// place in the file itself. Not part of the key: moving the line changes nothing served.
    pub objects_at: Option<String>,
}

impl SourceSpec {
    /// An error from loading the objects file, told as `check` and startup print it: where
    /// the error has no place in the file (it cannot be read, say), at the `objects` line of
    /// the Corefile; else at its place in the objects file.
    pub fn objects_error(&self, e: &file::LoadError) -> String {
        match (&self.objects_at, e.line) {
            (Some(at), None) => format!("{at}: {}: objects: {e}", self.directive),
            _ => e.to_string(),
        }
    }
}

/// A source that could not be started: an objects file that does not load, an API client that
/// cannot be built. Said as CoreDNS says a plugin's error, `plugin/NAME: what went wrong`.
#[derive(Debug, thiserror::Error)]
#[error("plugin/{directive}: {msg}")]
pub struct StartError {
    pub directive: &'static str,
    pub msg: String,
}

/// An index and what keeps it current.
pub struct ClusterSource {
    pub key: SourceKey,
    pub index: Arc<Index>,
    pub status: Arc<SourceStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ClusterSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A source is ready once every watched kind has been listed, or its `startup_timeout` has
/// passed. It reports as `kubernetes`, the directive CoreDNS's `/ready` names.
impl Readiness for SourceStatus {
    fn name(&self) -> &'static str {
        "kubernetes"
    }
    fn is_ready(&self) -> bool {
        self.ready()
    }
}

impl ClusterSource {
    /// Builds the index and starts what feeds it: an objects file is read before this returns;
    /// the API is listed in the background, readiness saying when it is done.
    pub async fn start(spec: &SourceSpec, metrics: &Arc<Metrics>) -> Result<Self, StartError> {
        let fail = |msg: String| StartError {
            directive: spec.directive,
            msg,
        };
        let key = &spec.key;
        let index = Arc::new(Index::new(key.index.clone()));
        let filters = key.filters.clone();
        let (status, task) = match &key.origin {
            Origin::Objects(path) => {
                let seen = file::fingerprint(path);
                let (p, f) = (path.clone(), filters.clone());
                // Reading and decoding a large file blocks: off the runtime's threads.
                let snap = tokio::task::spawn_blocking(move || file::load(&p, &f))
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .map_err(|e| fail(spec.objects_error(&e)))?;
                index.replace_all(snap);
                crate::memory::release_freed();
                tracing::info!(
                    "plugin/{}: loaded {} ({} names)",
                    spec.directive,
                    path.display(),
                    index.len()
                );
                let task = file::watch(path.clone(), filters, index.clone(), file::POLL, seen);
                (SourceStatus::loaded(), task)
            }
            Origin::Api(cfg_api) => {
                let client = api::client(cfg_api).await.map_err(|e| fail(causes(&e)))?;
                let status = SourceStatus::waiting_for(&api::kinds(&filters), key.startup_timeout);
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
            key: key.clone(),
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
