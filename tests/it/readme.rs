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
