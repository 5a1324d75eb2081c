//! `tls CERT KEY [CA] { client_auth nocert|verify_if_given|require_and_verify }`: the files
//! relative to the Corefile's folder.

use std::path::PathBuf;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, relative_path};
use crate::corefile::{Directive, Pos};

/// Whether clients present certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// None asked for (the default).
    NoCert,
    /// Verified against CA where given; clients without one are served too.
    VerifyIfGiven,
    /// Required and verified against CA.
    RequireAndVerify,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// Where the directive is, for errors about its files.
    pub pos: Pos,
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<TlsConfig, Vec<ConfigError>> {
    let a = Args::new("tls", d);
    let (cert, key, ca) = match &d.args[..] {
        [cert, key] => (cert, key, None),
        [cert, key, ca] => (cert, key, Some(ca)),
        [] | [_] => return Err(vec![a.err_here("expected CERT KEY [CA]")]),
        [_, _, _, extra, ..] => {
            return Err(vec![a.err(
                extra,
                format!(
                    "unexpected argument '{}'; expected CERT KEY [CA]",
                    extra.text
                ),
            )]);
        }
    };
    let mut cfg = TlsConfig {
        cert: relative_path(&cert.pos, &cert.text),
        key: relative_path(&key.pos, &key.text),
        ca: ca.map(|t| relative_path(&t.pos, &t.text)),
        client_auth: ClientAuth::NoCert,
        pos: d.name.pos.clone(),
    };
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("tls: {}", p.name.text), p);
        if p.name.text != "client_auth" {
            errors.push(pa.err_here(format!(
                "unknown property '{}'; expected client_auth",
                p.name.text
            )));
            continue;
        }
        match pa.one("nocert, verify_if_given or require_and_verify") {
            Ok(t) => match t.text.as_str() {
                "nocert" => cfg.client_auth = ClientAuth::NoCert,
                "verify_if_given" => cfg.client_auth = ClientAuth::VerifyIfGiven,
                "require_and_verify" => cfg.client_auth = ClientAuth::RequireAndVerify,
                "request" | "require" => errors.push(pa.err(
                    t,
                    format!(
                        "'{}' (a client certificate taken without verifying it) is not supported; use verify_if_given or require_and_verify",
                        t.text
                    ),
                )),
                other => errors.push(pa.err(
                    t,
                    format!(
                        "unknown mode '{other}'; expected nocert, verify_if_given or require_and_verify"
                    ),
                )),
            },
            Err(e) => errors.push(e),
        }
    }
    if cfg.client_auth != ClientAuth::NoCert && cfg.ca.is_none() {
        errors.push(a.err_here("client_auth that verifies needs a CA: tls CERT KEY CA"));
    }
    args::finish(cfg, errors)
}

#[cfg(test)]
mod tests {
    use super::ClientAuth;
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn files_and_client_auth() {
        let c = plugin(
            "tls://.:853 {\n tls cert.pem key.pem ca.pem {\n  client_auth require_and_verify\n }\n}",
            |p| match p {
                PluginConfig::Tls(c) => Some((**c).clone()),
                _ => None,
            },
        );
        assert_eq!(c.cert.to_str(), Some("/etc/coredns/cert.pem"));
        assert_eq!(
            c.ca.as_ref().and_then(|p| p.to_str()),
            Some("/etc/coredns/ca.pem")
        );
        assert_eq!(c.client_auth, ClientAuth::RequireAndVerify);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                "tls://.:853 {\n tls cert.pem\n}",
                "2:2: tls: expected CERT KEY [CA]",
            ),
            (
                "tls://.:853 {\n tls c k {\n  client_auth require\n }\n}",
                "3:15: tls: client_auth: 'require' (a client certificate taken without verifying it) is not supported",
            ),
            (
                "tls://.:853 {\n tls c k {\n  client_auth verify_if_given\n }\n}",
                "2:2: tls: client_auth that verifies needs a CA",
            ),
        ]);
    }
}
