//! `ready [ADDRESS]`: `GET /ready` answers 200 once every plugin that reports readiness is ready,
//! else 503 with the names of those still waiting.

use crate::corefile::Directive;

use super::args::{ListenAddr, no_block};
use super::health::listen_addr;
use super::{Args, ConfigError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyConfig {
    pub addr: ListenAddr,
}

pub const DEFAULT_ADDR: ListenAddr = ListenAddr {
    ip: None,
    port: 8181,
};

pub fn parse(d: &Directive) -> Result<ReadyConfig, Vec<ConfigError>> {
    let args = Args::new("ready", d);
    no_block("ready", d).map_err(|e| vec![e])?;
    let addr = listen_addr(&args, DEFAULT_ADDR).map_err(|e| vec![e])?;
    Ok(ReadyConfig { addr })
}
