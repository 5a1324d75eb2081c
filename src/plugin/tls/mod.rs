//! `tls`: the certificate (and, for client certificates, the CA) of a block's `tls://` ports:
//! DNS over TLS (RFC 7858), with the TCP rules the plain listener has (idle and I/O timeouts,
//! the connection cap, queries answered in order on a connection). The server configuration is
//! built when the Corefile loads, so a certificate that cannot be read is an error then, and a
//! reload with a renewed certificate serves it from the next connection on.

pub mod config;

use std::sync::Arc;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::shared::tls::{self, ClientCerts};
use config::ClientAuth;

const NAME: &str = "tls";

/// The rustls server configuration `cfg` describes.
fn server_config(cfg: &config::TlsConfig) -> Result<rustls::ServerConfig, String> {
    let clients = match (&cfg.ca, cfg.client_auth) {
        (_, ClientAuth::NoCert) | (None, _) => ClientCerts::None,
        (Some(ca), mode) => ClientCerts::Verify {
            ca,
            optional: mode == ClientAuth::VerifyIfGiven,
        },
    };
    tls::server_config(&cfg.cert, &cfg.key, clients, &[b"dot"])
}

/// Gives the block's `tls://` ports their server configuration. In a block without a `tls://`
/// key it has nothing to do, as in CoreDNS.
pub fn setup(cfg: &config::TlsConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let server = Arc::new(
        crate::plugin::shared::blocking(|| server_config(cfg))
            .map_err(|e| PluginError::new(NAME, e).at(&cfg.pos))?,
    );
    for key in s.keys.iter().filter(|k| k.tls) {
        for bind in s.binds {
            s.process
                .tls
                .insert(crate::vocab::DnsKey::new(*bind, key.port), server.clone());
        }
    }
    Ok(())
}
