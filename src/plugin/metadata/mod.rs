//! `metadata`: in CoreDNS, lets plugins attach labelled values to a query (`kubernetes/namespace`,
//! …) for `log`'s `{/LABEL}` placeholders and for `view`'s expressions. See the README for what
//! clusterdns's plugins attach today.

pub mod config;

use crate::plugin::setup::{Setup, SetupError};

/// Nothing to build: no clusterdns plugin attaches values yet, so `{/LABEL}` writes `-`, as
/// CoreDNS writes it for a label nothing set.
pub async fn setup(_: &config::MetadataConfig, _: &mut Setup<'_>) -> Result<(), SetupError> {
    Ok(())
}
