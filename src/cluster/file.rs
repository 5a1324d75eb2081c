//! The objects file: Kubernetes objects as `kubectl get svc,endpointslices,pods,namespaces -A
//! -o yaml` prints them (a `kind: List`), as multi-document YAML, as JSON, or a folder of such
//! files. Decoded with the k8s-openapi types and slimmed by the same conversions the API
//! watchers use.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::kubernetes::{KubernetesConfig, PodMode};
use crate::config::selector::Selector;

use super::index::Snapshot;
use super::slim;

/// What a `kubernetes` block keeps of the objects it is given.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Only these namespaces; empty for all.
    pub namespaces: Vec<String>,
    pub labels: Option<Selector>,
    pub namespace_labels: Option<Selector>,
    pub noendpoints: bool,
    /// Pods are kept only when `pods verified` needs them.
    pub pods: bool,
}

impl Filters {
    pub fn from_config(cfg: &KubernetesConfig) -> Self {
        Self {
            namespaces: cfg.namespaces.clone(),
            labels: cfg.labels.clone(),
            namespace_labels: cfg.namespace_labels.clone(),
            noendpoints: cfg.noendpoints,
            pods: cfg.pods == PodMode::Verified,
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

/// A problem with the objects file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub msg: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.msg)
    }
}

impl LoadError {
    fn at(file: &Path, line: Option<usize>, col: Option<usize>, msg: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            col,
            msg: msg.into(),
        }
    }
}

/// The files `path` stands for: itself, or the `.yaml`, `.yml` and `.json` files in it.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| LoadError::at(path, None, None, format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(path)
        .map_err(|e| LoadError::at(path, None, None, format!("cannot list the folder: {e}")))?;
    for entry in entries.flatten() {
        let p = entry.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if p.is_file() && matches!(ext, "yaml" | "yml" | "json") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// One file's name, size, modification time and inode: a kubelet-style symlink swap always
/// changes the inode, even when size and time come out the same.
pub type Fingerprint = (PathBuf, u64, Option<SystemTime>, u64);

/// A cheap fingerprint of the files behind `path` (names, sizes, modification times), to notice
/// changes without reading them; kubelet's symlink swaps change it too.
pub fn fingerprint(path: &Path) -> Vec<Fingerprint> {
    files(path)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).ok();
            let len = m.as_ref().map(|m| m.len()).unwrap_or(0);
            let inode = m.as_ref().map(inode).unwrap_or(0);
            let modified = m.and_then(|m| m.modified().ok());
            (p, len, modified, inode)
        })
        .collect()
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// Reads every object behind `path` into a snapshot, keeping what `filters` let through.
pub fn load(path: &Path, filters: &Filters) -> Result<Snapshot, LoadError> {
    let mut objects = Objects::default();
    for file in files(path)? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| LoadError::at(&file, None, None, format!("cannot read: {e}")))?;
        decode_text(&file, &text, &mut objects)?;
    }
    objects.into_snapshot(path, filters)
}

/// Decodes one file's text (for tests and fuzzing as much as for [`load`]).
pub fn decode(file: &Path, text: &str, filters: &Filters) -> Result<Snapshot, LoadError> {
    let mut objects = Objects::default();
    decode_text(file, text, &mut objects)?;
    objects.into_snapshot(file, filters)
}

#[derive(Default)]
struct Objects {
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
    pods: Vec<Pod>,
    namespaces: Vec<Namespace>,
}

fn decode_text(file: &Path, text: &str, out: &mut Objects) -> Result<(), LoadError> {
    let is_json = file.extension().and_then(|e| e.to_str()) == Some("json")
        || text.trim_start().starts_with('{');
    if is_json {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            LoadError::at(
                file,
                Some(e.line()),
                Some(e.column()),
                format!("invalid JSON: {e}"),
            )
        })?;
        return add_object(file, None, &[], "", value, out);
    }
    let starts = document_lines(text);
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(doc).map_err(|e| {
            let loc = e.location();
            LoadError::at(
                file,
                loc.as_ref().map(|l| l.line()),
                loc.as_ref().map(|l| l.column()),
                format!("invalid YAML: {e}"),
            )
        })?;
        if value.is_null() {
            continue;
        }
        let line = starts.get(i).copied();
        let items = line.map(|l| item_lines(text, l)).unwrap_or_default();
        add_object(file, line, &items, "", value, out)?;
    }
    Ok(())
}

/// The first line of each YAML document (1-based), as far as `---` markers tell.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut seen_content = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if line.starts_with("---") {
            starts.push(i + 2);
            seen_content = true;
        } else if !seen_content && !trimmed.is_empty() && !trimmed.starts_with('#') {
            starts.push(i + 1);
            seen_content = true;
        }
    }
    starts
}

/// The first line (1-based) of each entry of the top-level `items:` list of the YAML document
/// starting at `doc_line`, as `kubectl -o yaml` lays it out; empty when the layout is another.
fn item_lines(text: &str, doc_line: usize) -> Vec<usize> {
    let mut lines = text.lines().enumerate().skip(doc_line.saturating_sub(1));
    if !lines.any(|(_, l)| l.starts_with("items:")) {
        return Vec::new();
    }
    let mut indent = None;
    let mut out = Vec::new();
    for (i, l) in lines {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = l.len() - trimmed.len();
        if l.starts_with("---") || (depth == 0 && !trimmed.starts_with('-')) {
            break;
        }
        match indent {
            None if trimmed.starts_with("- ") => {
                indent = Some(depth);
                out.push(i + 1);
            }
            Some(d) if depth == d && trimmed.starts_with("- ") => out.push(i + 1),
            Some(d) if depth < d => break,
            _ => {}
        }
    }
    out
}

fn add_object(
    file: &Path,
    line: Option<usize>,
    item_lines: &[usize],
    path: &str,
    value: serde_json::Value,
    out: &mut Objects,
) -> Result<(), LoadError> {
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_string();
    let name = value
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_string();
    let here = |msg: String| {
        let at = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        LoadError::at(file, line, None, format!("{at}{msg}"))
    };
    match kind.as_str() {
        "List" | "ServiceList" | "EndpointSliceList" | "PodList" | "NamespaceList" => {
            let items = match value.get("items") {
                Some(serde_json::Value::Array(items)) => items.clone(),
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(_) => return Err(here(format!("{kind}: 'items' must be a list"))),
            };
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            // Item lines are known for the top-level list of a YAML document only.
            let lines = if path.is_empty() && item_lines.len() == items.len() {
                item_lines
            } else {
                &[]
            };
            for (j, mut item) in items.into_iter().enumerate() {
                if let (Some(k), Some(obj)) = (item_kind, item.as_object_mut()) {
                    // Typed lists may leave kind and apiVersion off their items.
                    obj.entry("kind").or_insert_with(|| k.into());
                    let api = if k == "EndpointSlice" {
                        "discovery.k8s.io/v1"
                    } else {
                        "v1"
                    };
                    obj.entry("apiVersion").or_insert_with(|| api.into());
                }
                let at = lines.get(j).copied().or(line);
                add_object(file, at, &[], &format!("{path}items[{j}]"), item, out)?;
            }
            Ok(())
        }
        "Service" => typed(&kind, &name, value)
            .map(|o| out.services.push(o))
            .map_err(here),
        "EndpointSlice" => typed(&kind, &name, value)
            .map(|o| out.slices.push(o))
            .map_err(here),
        "Pod" => typed(&kind, &name, value)
            .map(|o| out.pods.push(o))
            .map_err(here),
        "Namespace" => typed(&kind, &name, value)
            .map(|o| out.namespaces.push(o))
            .map_err(here),
        // kubectl dumps carry other kinds too (Endpoints next to EndpointSlices, say): DNS
        // does not read them.
        "" => Err(here(
            "an object without 'kind'; expected Service, EndpointSlice, Pod, Namespace or List"
                .into(),
        )),
        _ => Ok(()),
    }
}

fn typed<T: DeserializeOwned>(
    kind: &str,
    name: &str,
    value: serde_json::Value,
) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            String::new()
        } else {
            format!("{field}: ")
        };
        format!("{kind} '{name}': {field}{}", e.inner())
    })
}

impl Objects {
    fn into_snapshot(self, path: &Path, filters: &Filters) -> Result<Snapshot, LoadError> {
        let err = |e: slim::SlimError| LoadError::at(path, None, None, e.to_string());
        let mut snap = Snapshot::default();
        let mut mentioned = std::collections::BTreeSet::new();
        let any_namespace_objects = !self.namespaces.is_empty();
        for ns in &self.namespaces {
            let (name, labels) = slim::namespace(ns).map_err(err)?;
            let label_ok = filters
                .namespace_labels
                .as_ref()
                .is_none_or(|sel| sel.matches(&labels));
            if label_ok && filters.namespace_ok(&name) {
                snap.namespaces.insert(name);
            }
        }
        for svc in &self.services {
            let s = slim::service(svc).map_err(err)?;
            mentioned.insert(s.key.namespace.clone());
            if filters.namespace_ok(&s.key.namespace)
                && filters.labels_ok(svc.metadata.labels.as_ref())
            {
                snap.services.insert(s.key.clone(), s);
            }
        }
        if !filters.noendpoints {
            for es in &self.slices {
                if let Some(s) = slim::endpoint_slice(es).map_err(err)?
                    && filters.namespace_ok(&s.key.namespace)
                    && filters.labels_ok(es.metadata.labels.as_ref())
                {
                    snap.slices.insert(s.key.clone(), s);
                }
            }
        }
        if filters.pods {
            for p in &self.pods {
                if let Some(p) = slim::pod(p).map_err(err)?
                    && filters.namespace_ok(&p.key.namespace)
                {
                    mentioned.insert(p.key.namespace.clone());
                    snap.pods.insert(p.key.clone(), p);
                }
            }
        }
        // A hand-written file may list no Namespace objects at all: then the namespaces its
        // objects live in exist (in a real cluster they must).
        if !any_namespace_objects && filters.namespace_labels.is_none() {
            snap.namespaces.extend(
                mentioned
                    .into_iter()
                    .filter(|ns: &Arc<str>| filters.namespace_ok(ns)),
            );
        }
        Ok(snap)
    }
}
