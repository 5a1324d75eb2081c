//! `health [ADDRESS] { lameduck DURATION }`: `GET /health` answers 200 while the server runs.
//! On SIGTERM the server keeps answering (queries and `/health`) for the lameduck time.

use std::time::Duration;

use crate::corefile::Directive;

use crate::corefile::args::Args;
use crate::corefile::args::listen_addr;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::vocab::ListenAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthConfig {
    pub addr: ListenAddr,
    pub lameduck: Option<Duration>,
}

pub const DEFAULT_ADDR: ListenAddr = ListenAddr {
    ip: None,
    port: 8080,
};

pub fn parse(d: &Directive, _: &BlockContext) -> Result<HealthConfig, Vec<ConfigError>> {
    let args = Args::new("health", d);
    let addr = listen_addr(&args, DEFAULT_ADDR).map_err(|e| vec![e])?;
    let mut lameduck = None;
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let a = Args::new(format!("health: {}", p.name.text), p);
        match p.name.text.as_str() {
            "lameduck" => match a.one("a duration such as 5s").and_then(|t| a.duration(t)) {
                Ok(dur) => lameduck = Some(dur),
                Err(e) => errors.push(e),
            },
            other => errors.push(ConfigError::new(
                &p.name.pos,
                format!("health: unknown property '{other}'; expected lameduck"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(HealthConfig { addr, lameduck })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n health :8080 :8081\n}",
                "2:15: health: unexpected argument ':8081'",
            ),
            (
                ".:53 {\n health localhost\n}",
                "2:9: health: 'localhost' is not an address",
            ),
            (
                ".:53 {\n health :http\n}",
                "2:9: health: 'http' in ':http' is not a port number",
            ),
            (
                ".:53 {\n health {\n  lameduck forever\n }\n}",
                "3:12: health: lameduck: 'forever' is not a duration",
            ),
            (
                ".:53 {\n health {\n  lame 5s\n }\n}",
                "3:3: health: unknown property 'lame'; expected lameduck",
            ),
            (
                ".:53 {\n health\n health\n}",
                "3:2: health: only one 'health' directive is allowed per server block",
            ),
        ]);
    }
}
