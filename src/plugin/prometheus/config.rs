//! `prometheus [ADDRESS]`: CoreDNS's metrics at `GET /metrics` (default `localhost:9153`).

use std::net::{IpAddr, Ipv4Addr};

use crate::corefile::Directive;

use crate::corefile::args::Args;
use crate::corefile::args::{listen_addr, no_block};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::vocab::ListenAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusConfig {
    pub addr: ListenAddr,
}

pub const DEFAULT_ADDR: ListenAddr = ListenAddr {
    ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    port: 9153,
};

pub fn parse(d: &Directive, _: &BlockContext) -> Result<PrometheusConfig, Vec<ConfigError>> {
    let args = Args::new("prometheus", d);
    no_block("prometheus", d).map_err(|e| vec![e])?;
    let addr = listen_addr(&args, DEFAULT_ADDR).map_err(|e| vec![e])?;
    Ok(PrometheusConfig { addr })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[(
            ".:53 {\n prometheus :9153 {\n  x\n }\n}",
            "3:3: prometheus: unexpected property 'x'; this takes no block",
        )]);
    }
}
