//! Where the cluster's objects come from, and the contract every source keeps: a source (the
//! API server's lists and watches in `api`, an objects file in `file`) slims what it reads, hands
//! the index a whole [`Snapshot`] or single [`Change`]s, and says through [`SourceStatus`] when
//! each [`Kind`] has been listed.

pub mod api;
pub mod file;
mod running;
pub mod selector;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::change::Kind;
use crate::sync::lock;
pub use running::{ClusterSource, Origin, SourceKey, SourceSpec, StartError};
use selector::Selector;

/// Where a source stands: synced (for readiness) and stale (for the log and the metric).
pub struct SourceStatus {
    started: Instant,
    startup_timeout: Duration,
    /// Kinds whose first list is not in yet.
    pending: std::sync::Mutex<Vec<Kind>>,
    /// Latched once ready, so the query path reads one atomic.
    ready: AtomicBool,
    /// Kinds whose watch is failing, and since when.
    stale: std::sync::Mutex<BTreeMap<Kind, Instant>>,
}

impl SourceStatus {
    /// A source that has everything already (the objects file, loaded before serving).
    pub fn loaded() -> Arc<Self> {
        let s = Self::waiting_for(&[], Duration::ZERO);
        s.ready.store(true, Ordering::Release);
        s
    }

    pub fn waiting_for(kinds: &[Kind], startup_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            startup_timeout,
            pending: std::sync::Mutex::new(kinds.to_vec()),
            ready: AtomicBool::new(kinds.is_empty()),
            stale: Default::default(),
        })
    }

    /// Ready to answer: every kind has been listed once, or `startup_timeout` has passed
    /// (CoreDNS's contract: serve what there is rather than stay unready forever).
    pub fn ready(&self) -> bool {
        if self.ready.load(Ordering::Acquire) {
            return true;
        }
        if self.started.elapsed() >= self.startup_timeout {
            self.ready.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// Every kind has finished its first list.
    pub fn synced(&self) -> bool {
        lock(&self.pending).is_empty()
    }

    fn listed(&self, kind: Kind) {
        let mut pending = lock(&self.pending);
        pending.retain(|k| *k != kind);
        if pending.is_empty() {
            self.ready.store(true, Ordering::Release);
        }
    }

    /// Marks `kind` stale; logs only when the source was healthy until now.
    fn failing(&self, kind: Kind, error: &dyn std::fmt::Display) {
        let mut stale = lock(&self.stale);
        if stale.contains_key(&kind) {
            tracing::debug!("plugin/kubernetes: watching {}: {error}", kind.plural());
            return;
        }
        if stale.is_empty() {
            tracing::error!(
                "plugin/kubernetes: lost the Kubernetes API (watching {}: {error}); answering \
                 from the last known data until it is back",
                kind.plural()
            );
        } else {
            tracing::debug!("plugin/kubernetes: watching {}: {error}", kind.plural());
        }
        stale.insert(kind, Instant::now());
    }

    /// Marks `kind` stale because the API does not serve it at all; says so once.
    fn missing(&self, kind: Kind, why: &str) {
        if let std::collections::btree_map::Entry::Vacant(e) = lock(&self.stale).entry(kind) {
            tracing::warn!("plugin/kubernetes: {why}");
            e.insert(Instant::now());
        }
    }

    /// `kind` has listed again after failing.
    fn caught_up(&self, kind: Kind) {
        let mut stale = lock(&self.stale);
        let Some(since) = stale.remove(&kind) else {
            return;
        };
        tracing::info!(
            "plugin/kubernetes: {} caught up with the Kubernetes API after {:.1}s of stale data",
            kind.plural(),
            since.elapsed().as_secs_f64()
        );
    }

    /// How long `kind` has been stale.
    pub fn stale_for(&self, kind: Kind) -> Option<Duration> {
        lock(&self.stale).get(&kind).map(|t| t.elapsed())
    }
}

/// What a `kubernetes` block keeps of the objects it is given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    /// Only these namespaces; empty for all.
    pub namespaces: Vec<String>,
    pub labels: Option<Selector>,
    pub namespace_labels: Option<Selector>,
    pub noendpoints: bool,
    /// Pods are kept only when `pods verified` needs them.
    pub pods: bool,
    /// Endpoints keep their pod's name only when `endpoint_pod_names` names them by it.
    pub pod_names: bool,
    /// ServiceImports are read only where `multicluster` names a zone.
    pub imports: bool,
    /// Endpoints keep their topology zone only under `zonal`.
    pub zones: bool,
}

impl Filters {
    /// What an EndpointSlice keeps.
    pub(crate) fn keep(&self) -> crate::cluster::slim::SliceKeep {
        crate::cluster::slim::SliceKeep {
            pod_names: self.pod_names,
            imports: self.imports,
            zones: self.zones,
        }
    }

    pub(crate) fn namespace_ok(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns)
    }

    pub(crate) fn labels_ok(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        match &self.labels {
            None => true,
            Some(sel) => sel.matches(labels.unwrap_or(&BTreeMap::new())),
        }
    }
}
