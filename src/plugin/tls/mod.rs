//! `tls`: the certificate (and, for client certificates, the CA) of a block's `tls://` ports:
//! DNS over TLS (RFC 7858), with the TCP rules the plain listener has (idle and I/O timeouts,
//! the connection cap, queries answered in order on a connection). The server configuration is
//! built when the Corefile loads, so a certificate that cannot be read is an error then, and a
//! reload with a renewed certificate serves it from the next connection on.

pub mod config;

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use config::ClientAuth;

const NAME: &str = "tls";

/// The rustls server configuration `cfg` describes.
fn server_config(cfg: &config::TlsConfig) -> Result<rustls::ServerConfig, String> {
    let read = |what: &str, p: &std::path::Path| format!("{what} {}: ", p.display());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .map_err(|e| read("CERT", &cfg.cert) + &e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| read("CERT", &cfg.cert) + &e.to_string())?;
    if chain.is_empty() {
        return Err(read("CERT", &cfg.cert) + "no certificate in it");
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .map_err(|e| read("KEY", &cfg.key) + &e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (&cfg.ca, cfg.client_auth) {
        (_, ClientAuth::NoCert) | (None, _) => builder.with_no_client_auth(),
        (Some(ca), mode) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| read("CA", ca) + &e.to_string())?
            {
                roots
                    .add(c.map_err(|e| read("CA", ca) + &e.to_string())?)
                    .map_err(|e| read("CA", ca) + &e.to_string())?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::VerifyIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("CERT and KEY: {e}"))?;
    config.alpn_protocols = vec![b"dot".to_vec()];
    Ok(config)
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
