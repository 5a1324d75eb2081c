//! Every Corefile example in the README parses, so the documentation cannot drift from the code.

use clusterdns::config::{self, LoadOptions};

use crate::support;

#[test]
fn every_corefile_in_the_readme_parses() {
    let readme = std::fs::read_to_string(support::root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```corefile") => current = Some(String::new()),
            (Some(text), "```") => {
                blocks.push(std::mem::take(text));
                current = None;
            }
            (Some(text), l) => {
                text.push_str(l);
                text.push('\n');
            }
            _ => {}
        }
    }
    assert!(!blocks.is_empty(), "the README has no ```corefile examples");
    for text in blocks {
        if let Err(e) = config::from_str("README.md", &text, &LoadOptions::default()) {
            panic!("a README Corefile does not parse:\n{e}\n{text}");
        }
    }
}
