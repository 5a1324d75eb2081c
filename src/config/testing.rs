//! Helpers for the tests of every directive's parser.

use hickory_proto::rr::Name;

use super::{Config, ConfigErrors, LoadOptions, from_str};
use crate::plugin::registry::PluginConfig;

/// Types a Corefile as `/etc/coredns/Corefile`.
pub fn load_text(text: &str) -> Result<Config, ConfigErrors> {
    from_str("/etc/coredns/Corefile", text, &LoadOptions::default())
}

/// The first plugin of the first block that `pick` takes.
pub fn plugin<T>(text: &str, pick: impl Fn(&PluginConfig) -> Option<T>) -> T {
    let cfg = load_text(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
    cfg.servers[0]
        .plugins
        .iter()
        .find_map(pick)
        .unwrap_or_else(|| panic!("not found in {text}"))
}

pub fn zones(names: &[Name]) -> Vec<String> {
    names.iter().map(|n| n.to_ascii()).collect()
}

/// Each Corefile fails to load, and its errors include the expected text.
pub fn assert_errors(table: &[(&str, &str)]) {
    for (text, want) in table {
        match load_text(text) {
            Ok(_) => panic!("{text}: loaded"),
            Err(e) => assert!(
                e.to_string().contains(want),
                "{text}\n got: {e}\nwant: {want}"
            ),
        }
    }
}
