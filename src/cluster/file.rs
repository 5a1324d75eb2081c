//! The objects file: Kubernetes objects as `kubectl get svc,endpointslices,pods,namespaces -A
//! -o yaml` prints them (a `kind: List`), as multi-document YAML, as JSON, or a folder of such
//! files. Decoded with the k8s-openapi types and slimmed by the same conversions the API
//! watchers use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::{DeserializeOwned, DeserializeSeed};

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
    /// Endpoints keep their pod's name only when `endpoint_pod_names` names them by it.
    pub pod_names: bool,
}

impl Filters {
    pub fn from_config(cfg: &KubernetesConfig) -> Self {
        Self {
            namespaces: cfg.namespaces.clone(),
            labels: cfg.labels.clone(),
            namespace_labels: cfg.namespace_labels.clone(),
            noendpoints: cfg.noendpoints,
            pods: cfg.pods == PodMode::Verified,
            pod_names: cfg.endpoint_pod_names,
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
    let mut objects = Objects::new(filters);
    for file in files(path)? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| LoadError::at(&file, None, None, format!("cannot read: {e}")))?;
        decode_text(&file, &text, &mut objects)?;
    }
    Ok(objects.into_snapshot())
}

/// Decodes one file's text (for tests and fuzzing as much as for [`load`]).
pub fn decode(file: &Path, text: &str, filters: &Filters) -> Result<Snapshot, LoadError> {
    let mut objects = Objects::new(filters);
    decode_text(file, text, &mut objects)?;
    Ok(objects.into_snapshot())
}

/// The objects read so far, already slimmed and filtered: each object is slimmed as soon as it
/// is decoded, so a large dump never exists whole as Kubernetes objects.
struct Objects<'f> {
    filters: &'f Filters,
    snap: Snapshot,
    /// Namespaces that Services and Pods live in.
    mentioned: BTreeSet<Arc<str>>,
    any_namespace_objects: bool,
}

impl<'f> Objects<'f> {
    fn new(filters: &'f Filters) -> Self {
        Self {
            filters,
            snap: Snapshot::default(),
            mentioned: BTreeSet::new(),
            any_namespace_objects: false,
        }
    }

    /// Takes in everything `other` read (a List's items, once the List's kind is known).
    fn absorb(&mut self, other: Objects<'_>) {
        self.snap.namespaces.extend(other.snap.namespaces);
        self.snap.services.extend(other.snap.services);
        self.snap.slices.extend(other.snap.slices);
        self.snap.pods.extend(other.snap.pods);
        self.mentioned.extend(other.mentioned);
        self.any_namespace_objects |= other.any_namespace_objects;
    }

    fn namespace(&mut self, ns: &Namespace) -> Result<(), slim::SlimError> {
        self.any_namespace_objects = true;
        let (name, labels) = slim::namespace(ns)?;
        let label_ok = self
            .filters
            .namespace_labels
            .as_ref()
            .is_none_or(|sel| sel.matches(&labels));
        if label_ok && self.filters.namespace_ok(&name) {
            self.snap.namespaces.insert(name);
        }
        Ok(())
    }

    fn service(&mut self, svc: &Service) -> Result<(), slim::SlimError> {
        let s = slim::service(svc)?;
        self.mentioned.insert(s.key.namespace.clone());
        if self.filters.namespace_ok(&s.key.namespace)
            && self.filters.labels_ok(svc.metadata.labels.as_ref())
        {
            self.snap.services.insert(s.key.clone(), s);
        }
        Ok(())
    }

    fn slice(&mut self, es: &EndpointSlice) -> Result<(), slim::SlimError> {
        if self.filters.noendpoints {
            return Ok(());
        }
        if let Some(s) = slim::endpoint_slice(es, self.filters.pod_names)?
            && self.filters.namespace_ok(&s.key.namespace)
            && self.filters.labels_ok(es.metadata.labels.as_ref())
        {
            self.snap.slices.insert(s.key.clone(), s);
        }
        Ok(())
    }

    fn pod(&mut self, pod: &Pod) -> Result<(), slim::SlimError> {
        if !self.filters.pods {
            return Ok(());
        }
        if let Some(p) = slim::pod(pod)?
            && self.filters.namespace_ok(&p.key.namespace)
        {
            self.mentioned.insert(p.key.namespace.clone());
            self.snap.pods.insert(p.key.clone(), p);
        }
        Ok(())
    }

    fn into_snapshot(mut self) -> Snapshot {
        let filters = self.filters;
        // A hand-written file may list no Namespace objects at all: then the namespaces its
        // objects live in exist (in a real cluster they must).
        if !self.any_namespace_objects && filters.namespace_labels.is_none() {
            self.snap.namespaces.extend(
                self.mentioned
                    .into_iter()
                    .filter(|ns: &Arc<str>| filters.namespace_ok(ns)),
            );
        }
        self.snap
    }
}

fn decode_text(file: &Path, text: &str, out: &mut Objects) -> Result<(), LoadError> {
    let is_json = file.extension().and_then(|e| e.to_str()) == Some("json")
        || text.trim_start().starts_with('{');
    if is_json {
        let mut failed = None;
        let mut de = serde_json::Deserializer::from_str(text);
        let doc = Document {
            file,
            line: None,
            item_lines: &[],
            out,
            failed: &mut failed,
        };
        let read = doc.deserialize(&mut de).and_then(|()| de.end());
        return match (failed, read) {
            (Some(e), _) => Err(e),
            (None, Ok(())) => Ok(()),
            (None, Err(e)) => Err(LoadError::at(
                file,
                Some(e.line()),
                Some(e.column()),
                format!("invalid JSON: {e}"),
            )),
        };
    }
    let starts = document_lines(text);
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let line = starts.get(i).copied();
        let items = line.map(|l| item_lines(text, l)).unwrap_or_default();
        let mut failed = None;
        let read = Document {
            file,
            line,
            item_lines: &items,
            out: &mut *out,
            failed: &mut failed,
        }
        .deserialize(doc);
        match (failed, read) {
            (Some(e), _) => return Err(e),
            (None, Ok(())) => {}
            (None, Err(e)) => {
                let loc = e.location();
                return Err(LoadError::at(
                    file,
                    loc.as_ref().map(|l| l.line()),
                    loc.as_ref().map(|l| l.column()),
                    format!("invalid YAML: {e}"),
                ));
            }
        }
    }
    Ok(())
}

/// One document's top level, read field by field. A List's `items` are decoded one at a time
/// and slimmed at once, so that the tree of a whole dump (hundreds of MB for a 9 MB file) is
/// never built. kubectl writes `items` before `kind`: items that carry their own kind are
/// read straight away; those that do not (typed lists may leave it off) wait for the List's.
///
/// An error of ours is kept in `failed`, and the decoder is stopped with a placeholder error
/// that [`decode_text`] replaces by it.
struct Document<'a, 'f> {
    file: &'a Path,
    line: Option<usize>,
    item_lines: &'a [usize],
    out: &'a mut Objects<'f>,
    failed: &'a mut Option<LoadError>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object or List")
    }

    /// An empty YAML document.
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut fields = serde_json::Map::new();
        let mut items = Objects::new(self.out.filters);
        let mut kindless = Vec::new();
        let mut had_items = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" && !had_items {
                had_items = true;
                map.next_value_seed(Items {
                    file: self.file,
                    line: self.line,
                    item_lines: self.item_lines,
                    out: &mut items,
                    kindless: &mut kindless,
                    failed: &mut *self.failed,
                })?;
            } else {
                fields.insert(key, map.next_value()?);
            }
        }
        let kind = fields
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        let list_kind = match kind {
            "List" => Some(None),
            "ServiceList" | "EndpointSliceList" | "PodList" | "NamespaceList" => {
                Some(kind.strip_suffix("List"))
            }
            _ => None,
        };
        let result = match list_kind {
            // Not a List: any `items` of it were not objects of ours (no kind DNS reads has a
            // top-level `items`), and the object is read from its other fields.
            None => add_object(
                self.file,
                self.line,
                "",
                serde_json::Value::Object(fields),
                self.out,
            ),
            Some(item_kind) => {
                let mut result = Ok(());
                for (j, item) in kindless {
                    let at = self.item_lines.get(j).copied().or(self.line);
                    let path = format!("items[{j}]");
                    result = match item_kind {
                        Some(k) => add_object(self.file, at, &path, with_kind(item, k), &mut items),
                        None => add_object(self.file, at, &path, item, &mut items),
                    };
                    if result.is_err() {
                        break;
                    }
                }
                self.out.absorb(items);
                result
            }
        };
        result.map_err(|e| {
            *self.failed = Some(e);
            serde::de::Error::custom("stopped at an invalid object")
        })
    }
}

/// Typed lists may leave `kind` and `apiVersion` off their items.
fn with_kind(mut item: serde_json::Value, kind: &str) -> serde_json::Value {
    if let Some(obj) = item.as_object_mut() {
        obj.entry("kind").or_insert_with(|| kind.into());
        let api = if kind == "EndpointSlice" {
            "discovery.k8s.io/v1"
        } else {
            "v1"
        };
        obj.entry("apiVersion").or_insert_with(|| api.into());
    }
    item
}

/// A List's `items`, one object at a time (see [`Document`]).
struct Items<'a, 'f> {
    file: &'a Path,
    line: Option<usize>,
    item_lines: &'a [usize],
    out: &'a mut Objects<'f>,
    /// Items without a kind of their own, by position.
    kindless: &'a mut Vec<(usize, serde_json::Value)>,
    failed: &'a mut Option<LoadError>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Items<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Items<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut j = 0;
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            if item.get("kind").and_then(|k| k.as_str()).is_none() {
                self.kindless.push((j, item));
            } else {
                let at = self.item_lines.get(j).copied().or(self.line);
                let path = format!("items[{j}]");
                if let Err(e) = add_object(self.file, at, &path, item, self.out) {
                    *self.failed = Some(e);
                    return Err(serde::de::Error::custom("stopped at an invalid object"));
                }
            }
            j += 1;
        }
        Ok(())
    }
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

/// Reads one object (a List nested in a List included) into `out`.
fn add_object(
    file: &Path,
    line: Option<usize>,
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
    let slimmed = |r: Result<(), slim::SlimError>| r.map_err(|e| here(e.to_string()));
    match kind.as_str() {
        "List" | "ServiceList" | "EndpointSliceList" | "PodList" | "NamespaceList" => {
            let serde_json::Value::Object(mut fields) = value else {
                unreachable!("an object has a kind")
            };
            let items = match fields.remove("items") {
                Some(serde_json::Value::Array(items)) => items,
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(_) => return Err(here(format!("{kind}: 'items' must be a list"))),
            };
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            for (j, item) in items.into_iter().enumerate() {
                let item = match item_kind {
                    Some(k) => with_kind(item, k),
                    None => item,
                };
                add_object(file, line, &format!("{path}items[{j}]"), item, out)?;
            }
            Ok(())
        }
        "Service" => slimmed(out.service(&typed(&kind, &name, value).map_err(here)?)),
        "EndpointSlice" => slimmed(out.slice(&typed(&kind, &name, value).map_err(here)?)),
        "Pod" => slimmed(out.pod(&typed(&kind, &name, value).map_err(here)?)),
        "Namespace" => slimmed(out.namespace(&typed(&kind, &name, value).map_err(here)?)),
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
