//! Layers point one way (ARCHITECTURE.md): a module imports only from the layers below it, two
//! plugins never import each other, and only the registry names a plugin. Read from the source
//! text (`crate::…` paths outside comments and test code), so the rule outlives any one change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support;

/// The top-level modules, lowest layer first. A module may import from any earlier layer, and
/// from none of its own layer but itself.
const LAYERS: &[&[&str]] = &[
    // The leaves: shared vocabulary, no imports of the crate.
    &["vocab", "sync", "memory", "dns", "watched"],
    // The Corefile's syntax, and the words every directive's parser reads it with.
    &["corefile"],
    // Metrics, the HTTP endpoints, logging.
    &["observe"],
    // The cluster's data: sources and index.
    &["cluster"],
    // The chain contract and every directive.
    &["plugin"],
    // The typed Corefile, assembled through the registry.
    &["config"],
    // Sockets and routing.
    &["server"],
    // Startup, reload, shutdown.
    &["app"],
    // Roles built on `app`: the node-local cache.
    &["nodelocal"],
];

/// Inside `cluster`: the slim objects; the records built from them and the contract between
/// sources and the index (`change`); the index; the sources that feed it.
const CLUSTER: &[&[&str]] = &[&["slim"], &["records", "change"], &["index"], &["source"]];

fn layer_of(layers: &[&[&str]], module: &str) -> Option<usize> {
    layers.iter().position(|l| l.contains(&module))
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The code of a file that builds into the library: comments and test modules left out.
fn code(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name == "testing.rs" {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" // ").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The paths named after `prefix` in `code`: for `crate::`, `crate::plugin::cache::X` gives
/// `["plugin", "cache", "X"]`; `crate::{a, b::c}` gives `["a"]` and `["b", "c"]`.
fn paths(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let segs = segments(item.trim());
                if !segs.is_empty() {
                    out.push(segs);
                }
            }
        } else {
            out.push(segments(rest));
        }
    }
    out
}

fn segments(text: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '#'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segs.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(more) => rest = more,
            None => break,
        }
    }
    segs
}

/// The plugin folders: every directory under `src/plugin` but `shared`.
fn plugins(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src.join("plugin"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "shared")
        .map(|n| if n == "loop" { "r#loop".into() } else { n })
        .collect()
}

#[test]
fn modules_import_only_from_the_layers_below_them() {
    let src = support::root().join("src");
    let mut wrong = Vec::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(mine) = layer_of(LAYERS, &top) else {
            continue; // lib.rs, main.rs: above everything
        };
        let code = code(&file);
        for path in paths(&code, "crate::") {
            let Some(theirs) = layer_of(LAYERS, &path[0]) else {
                continue;
            };
            if path[0] != top && theirs >= mine {
                wrong.push(format!(
                    "{}: {top} imports {} (layer {theirs}, not below {mine})",
                    rel.display(),
                    path.join("::")
                ));
            }
            // Inside `cluster`, the same rule between its parts.
            if top == "cluster" && path[0] == "cluster" && path.len() > 1 {
                let part = rel.components().nth(1).map(|c| {
                    c.as_os_str()
                        .to_string_lossy()
                        .trim_end_matches(".rs")
                        .to_string()
                });
                if let (Some(part), Some(m), Some(t)) = (
                    part.as_deref(),
                    part.as_deref().and_then(|p| layer_of(CLUSTER, p)),
                    layer_of(CLUSTER, &path[1]),
                ) && path[1] != part
                    && t >= m
                {
                    wrong.push(format!(
                        "{}: cluster::{part} imports {}",
                        rel.display(),
                        path.join("::")
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn plugins_meet_only_through_the_chain_contract() {
    let src = support::root().join("src");
    let folders = plugins(&src);
    let mut wrong = Vec::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        // The folder this file belongs to, if it is a plugin's.
        let own = (parts[0] == "plugin" && parts.len() > 2)
            .then(|| parts[1].clone())
            .map(|n| if n == "loop" { "r#loop".into() } else { n });
        // The registry is the one table that names every plugin.
        if parts == ["plugin", "registry.rs"] {
            continue;
        }
        let code = code(&file);
        let mut named: Vec<String> = paths(&code, "crate::")
            .into_iter()
            .filter(|p| p.len() > 1 && p[0] == "plugin")
            .map(|p| p[1].clone())
            .collect();
        // `super::NAME` from the contract's own files (plugin/mod.rs, plugin/setup.rs).
        if parts[0] == "plugin" && parts.len() == 2 {
            named.extend(paths(&code, "super::").into_iter().map(|p| p[0].clone()));
        }
        for name in named {
            if folders.contains(&name) && own.as_deref() != Some(name.as_str()) {
                wrong.push(format!("{}: names the plugin {name}", rel.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "only a plugin's own folder and the registry name a plugin; others meet through \
         plugin/mod.rs, plugin/setup.rs and plugin/shared:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_path_reader_sees_grouped_and_nested_imports() {
    let code = "use crate::{dns::wire, vocab};\nlet x = crate::plugin::cache::Thing;\n";
    assert_eq!(
        paths(code, "crate::"),
        [
            vec!["dns".to_string(), "wire".into()],
            vec!["vocab".into()],
            vec!["plugin".into(), "cache".into(), "Thing".into()],
        ]
    );
    assert!(code_of_test_is_skipped());
}

fn code_of_test_is_skipped() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.rs");
    std::fs::write(
        &f,
        "use crate::a;\n// crate::b\n#[cfg(test)]\nmod tests { use crate::c; }\n",
    )
    .unwrap();
    paths(&code(&f), "crate::") == [vec!["a".to_string()]]
}
