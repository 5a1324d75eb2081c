//! `prometheus [ADDRESS]`: CoreDNS's metrics at `GET /metrics` (default `localhost:9153`).

use std::net::{IpAddr, Ipv4Addr};

use crate::corefile::Directive;

use super::args::{ListenAddr, no_block};
use super::health::listen_addr;
use super::{Args, ConfigError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusConfig {
    pub addr: ListenAddr,
}

pub const DEFAULT_ADDR: ListenAddr = ListenAddr {
    ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    port: 9153,
};

pub fn parse(d: &Directive) -> Result<PrometheusConfig, Vec<ConfigError>> {
    let args = Args::new("prometheus", d);
    no_block("prometheus", d).map_err(|e| vec![e])?;
    let addr = listen_addr(&args, DEFAULT_ADDR).map_err(|e| vec![e])?;
    Ok(PrometheusConfig { addr })
}
