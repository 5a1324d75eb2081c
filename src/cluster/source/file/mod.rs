//! The objects file: Kubernetes objects as `kubectl get svc,endpointslices,pods,namespaces -A
//! -o yaml` prints them (a `kind: List`), as multi-document YAML, as JSON, or a folder of such
//! files. Decoded with the k8s-openapi types and slimmed by the same conversions the API
//! watchers use.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::{DeserializeOwned, DeserializeSeed};

use super::Filters;
use crate::watched::Fingerprint;

use crate::cluster::change::Snapshot;
use crate::cluster::index::Index;
use crate::cluster::slim;
use std::time::Duration;

mod watch;
mod yaml;

pub use watch::{POLL, watch};
use yaml::*;

/// A problem with the objects file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub msg: String,
    /// The field of the object that is wrong (`spec.ports[0].port`), where one is: what
    /// [`decode_text`] looks for in the YAML to point at the value itself.
    field: Option<String>,
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
            field: None,
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

/// A cheap fingerprint of the files behind `path`, to notice a change without reading them.
pub fn fingerprint(path: &Path) -> Vec<Fingerprint> {
    crate::watched::fingerprint(&files(path).unwrap_or_default())
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
        self.snap.imports.extend(other.snap.imports);
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
        if let Some(s) = slim::endpoint_slice(es, self.filters.keep())?
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

    fn import(&mut self, imp: &slim::ServiceImport) -> Result<(), slim::SlimError> {
        if !self.filters.imports {
            return Ok(());
        }
        let s = slim::service_import(imp)?;
        self.mentioned.insert(s.key.namespace.clone());
        if self.filters.namespace_ok(&s.key.namespace)
            && self.filters.labels_ok(imp.metadata.labels.as_ref())
        {
            self.snap.imports.insert(s.key.clone(), s);
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
    let (layout, plain) = yaml_layout(text);
    if plain && layout.iter().any(|d| d.list.is_some()) {
        // Where the documents can be told apart by their `---` lines, each is read on its
        // own, and a List item by item.
        for doc in &layout {
            if let Some(done) = decode_list_by_item(file, text, doc, out) {
                done?;
                continue;
            }
            let one = text.get(doc.start..doc.end).unwrap_or_default();
            // Lines before the document's text: its marker's and those above.
            let above = if doc.start == 0 { 0 } else { doc.line - 1 };
            for de in yaml_serde::Deserializer::from_str(one) {
                read_document(file, text, Some(doc), above, de, out)?;
            }
        }
        return Ok(());
    }
    for (i, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        read_document(file, text, layout.get(i), 0, de, out)?;
    }
    Ok(())
}

/// Reads one YAML document, laid out as `doc` says, through [`Document`]; `above` is how many
/// lines of the file come before the text `de` reads.
fn read_document(
    file: &Path,
    text: &str,
    doc: Option<&DocLayout>,
    above: usize,
    de: yaml_serde::Deserializer<'_>,
    out: &mut Objects,
) -> Result<(), LoadError> {
    let mut failed = None;
    let read = Document {
        file,
        line: doc.map(|d| d.line),
        item_lines: doc.map_or(&[], |d| &d.items[..]),
        out,
        failed: &mut failed,
    }
    .deserialize(de);
    match (failed, read) {
        (Some(e), _) => Err(at_value(text, e)),
        (None, Ok(())) => Ok(()),
        (None, Err(e)) => {
            let loc = e.location();
            Err(LoadError::at(
                file,
                loc.as_ref().map(|l| l.line() + above),
                loc.as_ref().map(|l| l.column()),
                format!("invalid YAML: {e}"),
            ))
        }
    }
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
        let api = match kind {
            "EndpointSlice" => "discovery.k8s.io/v1",
            "ServiceImport" => "multicluster.x-k8s.io/v1alpha1",
            _ => "v1",
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

/// Decodes a YAML document whose top-level `items:` list [`yaml_layout`] could cut up: the
/// document without its items first (for its kind), then each item on its own, so that memory
/// holds one item's parse at a time: yaml_serde holds a whole document's events, which for a
/// large List is many times the file (bench/README.md has the figures). `None` where the
/// document must be read whole (it is not a List, say); the caller then reads it with
/// [`Document`].
fn decode_list_by_item(
    file: &Path,
    text: &str,
    doc: &DocLayout,
    out: &mut Objects,
) -> Option<Result<(), LoadError>> {
    let list = doc.list.as_ref()?;
    let head = format!(
        "{}{}",
        text.get(doc.start..list.key)?,
        text.get(list.end..doc.end)?
    );
    let head: serde_json::Value = yaml_serde::from_str(&head).ok()?;
    let item_kind = match head.get("kind").and_then(|k| k.as_str())? {
        "List" => None,
        kind @ ("ServiceList" | "EndpointSliceList" | "PodList" | "NamespaceList"
        | "ServiceImportList") => kind.strip_suffix("List"),
        _ => return None,
    };
    let bounds = || list.entries.iter().chain([&list.end, &doc.end]);
    if bounds().any(|&o| !text.is_char_boundary(o)) || list.end < list.key {
        return None;
    }
    let strip = list.indent + 2;
    let mut one = String::new();
    for (j, &from) in list.entries.iter().enumerate() {
        let to = list.entries.get(j + 1).copied().unwrap_or(list.end);
        let line = doc.items[j];
        // The entry without its `- ` and indentation, as a document of its own.
        one.clear();
        for (k, l) in text[from..to].split_inclusive('\n').enumerate() {
            let lead = if k == 0 {
                strip
            } else {
                l.len() - l.trim_start_matches(' ').len()
            };
            one.push_str(l.get(lead.min(strip)..).unwrap_or(""));
        }
        let item: serde_json::Value = match yaml_serde::from_str(&one) {
            Ok(v) => v,
            Err(e) => {
                let loc = e.location();
                return Some(Err(LoadError::at(
                    file,
                    Some(loc.as_ref().map_or(line, |l| line + l.line() - 1)),
                    loc.as_ref().map(|l| l.column() + strip),
                    format!("invalid YAML: {e}"),
                )));
            }
        };
        let item = match item_kind {
            Some(k) => with_kind(item, k),
            None => item,
        };
        if let Err(e) = add_object(file, Some(line), &format!("items[{j}]"), item, out) {
            return Some(Err(at_value(text, e)));
        }
    }
    Some(Ok(()))
}

/// An error about a field, pointed at the field's value where the YAML's layout tells where
/// it is, rather than at the start of its object.
fn at_value(text: &str, mut e: LoadError) -> LoadError {
    if let (Some(start), Some(field)) = (e.line, e.field.as_deref())
        && let Some((line, col)) = value_position(text, start, field)
    {
        (e.line, e.col) = (Some(line), col);
    }
    e
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
    let at = if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    let here = |msg: String| LoadError::at(file, line, None, format!("{at}{msg}"));
    let bad_field = |(msg, field): (String, Option<String>)| LoadError { field, ..here(msg) };
    let slimmed = |r: Result<(), slim::SlimError>| r.map_err(|e| here(e.to_string()));
    match kind.as_str() {
        "List" | "ServiceList" | "EndpointSliceList" | "PodList" | "NamespaceList"
        | "ServiceImportList" => {
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
        "Service" => slimmed(out.service(&typed(&kind, &name, value).map_err(bad_field)?)),
        "EndpointSlice" => slimmed(out.slice(&typed(&kind, &name, value).map_err(bad_field)?)),
        "Pod" => slimmed(out.pod(&typed(&kind, &name, value).map_err(bad_field)?)),
        "Namespace" => slimmed(out.namespace(&typed(&kind, &name, value).map_err(bad_field)?)),
        "ServiceImport" => slimmed(out.import(&typed(&kind, &name, value).map_err(bad_field)?)),
        // kubectl dumps carry other kinds too (Endpoints next to EndpointSlices, say): DNS
        // does not read them.
        "" => Err(here(
            "an object without 'kind'; expected Service, EndpointSlice, Pod, Namespace, ServiceImport or List"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// The object as its type; an error says which field is wrong, in the message and apart.
fn typed<T: DeserializeOwned>(
    kind: &str,
    name: &str,
    value: serde_json::Value,
) -> Result<T, (String, Option<String>)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let (shown, field) = if field == "." {
            (String::new(), None)
        } else {
            (format!("{field}: "), Some(field))
        };
        (format!("{kind} '{name}': {shown}{}", e.inner()), field)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_layout_finds_each_document_and_its_own_items() {
        let text = "# a comment\n\
                    kind: Service\n\
                    metadata: {name: a}\n\
                    ---\n\
                    apiVersion: v1\n\
                    items:\n\
                    - kind: Service\n\
                    \x20 metadata: {name: b}\n\
                    # between items\n\
                    - kind: Pod\n\
                    kind: List\n\
                    ---\n\
                    kind: List\n\
                    items:\n\
                    \x20 - kind: Namespace\n\
                    \x20   metadata:\n\
                    \x20     name: c\n\
                    \x20 - kind: Namespace\n\
                    ---\n\
                    kind: Namespace\n";
        let (got, plain) = yaml_layout(text);
        assert!(plain);
        let got: Vec<(usize, &[usize])> = got.iter().map(|d| (d.line, &d.items[..])).collect();
        let want: [(usize, &[usize]); 4] = [(2, &[]), (5, &[7, 10]), (13, &[15, 18]), (20, &[])];
        assert_eq!(got, want);
    }

    #[test]
    fn a_fields_value_is_found_in_block_yaml() {
        let text = "---\n\
                    apiVersion: v1\n\
                    kind: Service\n\
                    metadata:\n\
                    \x20 name: web\n\
                    spec:\n\
                    \x20 selector:\n\
                    \x20   port: 1\n\
                    \x20 ports:\n\
                    \x20 - name: http\n\
                    \x20   port: 80\n\
                    \x20 - name: dns\n\
                    \x20   protocol: UDP\n\
                    \x20   port: eighty\n\
                    \x20 clusterIP: [1, 2]\n";
        assert_eq!(
            value_position(text, 2, "spec.ports[1].port"),
            Some((14, Some(11)))
        );
        assert_eq!(
            value_position(text, 2, "spec.ports[0]"),
            Some((10, Some(5)))
        );
        assert_eq!(
            value_position(text, 2, "spec.clusterIP"),
            Some((15, Some(14)))
        );
        // Not in the layout: as near as it gets.
        assert_eq!(
            value_position(text, 2, "spec.ports[1].nodePort"),
            Some((12, Some(5)))
        );
        assert_eq!(value_position(text, 2, "status"), None);
        // A List's item, starting at its `- `.
        let list = "items:\n- kind: Service\n  spec:\n    ports:\n    - port: x\n- kind: Pod\n";
        assert_eq!(
            value_position(list, 2, "spec.ports[0].port"),
            Some((5, Some(13)))
        );
        assert_eq!(value_position(list, 2, "kind"), Some((2, Some(9))));
        assert_eq!(
            steps("spec.ports[0].port"),
            [
                Step::Key("spec"),
                Step::Key("ports"),
                Step::Index(0),
                Step::Key("port")
            ]
        );
    }

    /// The layout is read in one pass: a document without `items:` no longer scans the rest of
    /// the file for one (which made the load quadratic in the number of documents), and so
    /// never takes the items of a later List for its own.
    #[test]
    fn a_document_without_items_takes_none_of_a_later_lists() {
        let mut text = String::new();
        for i in 0..3 {
            text.push_str(&format!("---\nkind: Namespace\nmetadata: {{name: n{i}}}\n"));
        }
        text.push_str("---\nkind: List\nitems:\n- kind: Namespace\n");
        let (got, _) = yaml_layout(&text);
        assert_eq!(got.len(), 4);
        assert!(got[..3].iter().all(|d| d.items.is_empty()), "{got:?}");
        assert_eq!(got[3].items, [13]);
    }
}
