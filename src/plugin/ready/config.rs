//! `ready [ADDRESS]`: `GET /ready` answers 200 once every plugin that reports readiness is ready,
//! else 503 with the names of those still waiting.

use crate::corefile::Directive;

use crate::corefile::args::Args;
use crate::corefile::args::{listen_addr, no_block};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::vocab::ListenAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyConfig {
    pub addr: ListenAddr,
}

pub const DEFAULT_ADDR: ListenAddr = ListenAddr {
    ip: None,
    port: 8181,
};

pub fn parse(d: &Directive, _: &BlockContext) -> Result<ReadyConfig, Vec<ConfigError>> {
    let args = Args::new("ready", d);
    no_block("ready", d).map_err(|e| vec![e])?;
    let addr = listen_addr(&args, DEFAULT_ADDR).map_err(|e| vec![e])?;
    Ok(ReadyConfig { addr })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[(
            ".:53 {\n ready example.com:8181\n}",
            "2:8: ready: 'example.com' in 'example.com:8181' is not an IP address",
        )]);
    }
}
