//! Every Corefile example in the READMEs (the root one and each plugin's) parses, so the
//! documentation cannot drift from the code; each supported directive has its README, in
//! CoreDNS's form.

use std::path::Path;

use clusterdns::config::{self, LoadOptions};
use clusterdns::plugin::registry::SUPPORTED;

use crate::support;

/// The ```corefile (or ~~~ corefile) blocks of a Markdown file.
fn corefiles(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut current: Option<(String, &str)> = None;
    for line in text.lines() {
        let line = line.trim_end();
        match &mut current {
            None => {
                for fence in ["```", "~~~"] {
                    if let Some(lang) = line.strip_prefix(fence)
                        && lang.trim() == "corefile"
                    {
                        current = Some((String::new(), fence));
                    }
                }
            }
            Some((_, fence)) if line == *fence => {
                let (text, _) = current.take().unwrap();
                blocks.push(text);
            }
            Some((text, _)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    blocks
}

fn assert_parse(path: &Path, blocks: &[String]) {
    for text in blocks {
        if let Err(e) = config::from_str(&path.to_string_lossy(), text, &LoadOptions::default()) {
            panic!(
                "a Corefile in {} does not parse:\n{e}\n{text}",
                path.display()
            );
        }
    }
}

#[test]
fn every_corefile_in_the_readme_parses() {
    let path = support::root().join("README.md");
    let blocks = corefiles(&path);
    assert!(!blocks.is_empty(), "the README has no ```corefile examples");
    assert_parse(&path, &blocks);
}

#[test]
fn every_plugin_has_a_readme_whose_examples_parse() {
    let root = support::root();
    for name in SUPPORTED {
        let path = root.join("src/plugin").join(name).join("README.md");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for section in [
            "## Name",
            "## Description",
            "## Syntax",
            "## Examples",
            "## Metrics",
            "## Differences from CoreDNS",
        ] {
            assert!(text.contains(section), "{}: no '{section}'", path.display());
        }
        let blocks = corefiles(&path);
        assert!(
            !blocks.is_empty(),
            "{}: no corefile example",
            path.display()
        );
        assert_parse(&path, &blocks);
        // The root README's support table links to it.
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        assert!(
            readme.contains(&format!("(src/plugin/{name}/README.md)")),
            "README.md's support table does not link {name}'s README"
        );
    }
}

/// Every Corefile example of every plugin's README also serves: moved to a free loopback port
/// and local upstreams as the Corefile-compat cases are (`compat::localize`), it loads, starts,
/// and answers one of a few names (or, where the example drops queries or serves DNS over TLS,
/// at least starts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plugin_readmes_examples_serve() {
    use clusterdns::plugin::Transport;

    use crate::compat::{local_upstreams, localize};

    let (_knot, _stub, _demo, up) = local_upstreams().await;
    let root = support::root();
    // A certificate for the `tls` examples.
    let (certs, _, _) = crate::upstream::tls_server();
    let mut silent = Vec::new();
    for name in SUPPORTED {
        let path = root.join("src/plugin").join(name).join("README.md");
        for (i, text) in corefiles(&path).iter().enumerate() {
            let tmp = tempfile::tempdir().unwrap();
            // What the examples read: the demo cluster, and the zone files of `file` and
            // `transfer`.
            std::fs::copy(
                root.join("deploy/local/cluster.yaml"),
                tmp.path().join("cluster.yaml"),
            )
            .unwrap();
            std::fs::write(tmp.path().join("db.example.org"), crate::file::ZONE).unwrap();
            std::fs::write(
                tmp.path().join("db.corp.internal"),
                crate::file::ZONE.replace("example.org.", "corp.internal."),
            )
            .unwrap();
            std::fs::create_dir_all(tmp.path().join("tls")).unwrap();
            for (from, to) in [("leaf.pem", "tls/tls.crt"), ("leaf.key", "tls/tls.key")] {
                std::fs::copy(certs.path().join(from), tmp.path().join(to)).unwrap();
            }
            let port = crate::cli::free_port();
            let corefile = localize(text, tmp.path(), port, &up);
            let file = tmp.path().join("Corefile");
            std::fs::write(&file, &corefile).unwrap();
            eprintln!("== {name} example {}\n{corefile}", i + 1);
            let running = support::start(&file, &corefile).await;
            support::until_ready(&running).await;
            let mut answered = false;
            for q in [
                "kubernetes.default.svc.cluster.local.",
                "example.org.",
                "test.",
                "www.example.org.",
            ] {
                let bytes = support::query(q, hickory_proto::rr::RecordType::A, Some(1232))
                    .to_vec()
                    .unwrap();
                if support::ask(&running, port, &bytes, Transport::Udp)
                    .await
                    .is_some()
                {
                    answered = true;
                    break;
                }
            }
            // DNS over TLS is asked over TLS in tests/it/tls.rs; here it must start.
            if !answered && !text.contains("drop") && !text.contains("tls://") {
                silent.push(format!("{name} example {}:\n{corefile}", i + 1));
            }
            running.close().await;
        }
    }
    assert!(
        silent.is_empty(),
        "examples that answer nothing:\n{}",
        silent.join("\n")
    );
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a Markdown file outside its code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.starts_with("```") || line.starts_with("~~~") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .into_iter()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|h| anchor(h.trim_start_matches('#')))
        .collect()
}

/// The relative links of a Markdown file (outside code blocks): `(target)` after `]`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

/// Every relative link and anchor in the project's Markdown points somewhere: the README, the
/// architecture, the guides and every plugin's README.
#[test]
fn markdown_links_and_anchors_resolve() {
    let root = support::root();
    let mut files: Vec<std::path::PathBuf> = [
        "README.md",
        "ARCHITECTURE.md",
        "bench/README.md",
        "deploy/README.md",
        "fuzz/README.md",
        "Corefile-compat/README.md",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    for name in SUPPORTED {
        files.push(root.join("src/plugin").join(name).join("README.md"));
    }
    let mut dead = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for link in links(&text) {
            let (path, frag) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                dead.push(format!("{}: {link}: no such file", file.display()));
                continue;
            }
            if !frag.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let there = std::fs::read_to_string(&target).unwrap();
                if !anchors(&there).iter().any(|a| a == frag) {
                    dead.push(format!("{}: {link}: no such heading", file.display()));
                }
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn the_root_readme_stays_short() {
    let text = std::fs::read_to_string(support::root().join("README.md")).unwrap();
    assert!(
        text.len() < 20_000,
        "README.md is {} characters: detail belongs in ARCHITECTURE.md, bench/README.md or a plugin's README",
        text.len()
    );
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(
        anchor(" The live path: `cargo bench --bench live`"),
        "the-live-path-cargo-bench---bench-live"
    );
    assert_eq!(anchor(" Multi-cluster Services"), "multi-cluster-services");
}
