//! TLS configurations that more than one directive builds: a server's from CERT, KEY and an
//! optional CA for client certificates (`tls`, `dnstap listen`), and a client's that checks the
//! server against the system's roots or, with `skipverify`, does not (`dnstap tls://`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;

/// Which client certificates a server asks for.
#[derive(Clone, Copy, Debug)]
pub enum ClientCerts<'a> {
    /// None.
    None,
    /// Certificates signed by the CA in this file; `optional`: a client may also send none.
    Verify { ca: &'a Path, optional: bool },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &str, p: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", p.display())
}

/// The certificates of a PEM file, at least one.
fn chain(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(what, path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read(what, path, e))?;
    if chain.is_empty() {
        return Err(read(what, path, "no certificate in it"));
    }
    Ok(chain)
}

/// A server configuration serving CERT with KEY, offering `alpn`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    clients: ClientCerts,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, String> {
    let chain = chain("CERT", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read("KEY", key, e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match clients {
        ClientCerts::None => builder.with_no_client_auth(),
        ClientCerts::Verify { ca, optional } => {
            let mut roots = rustls::RootCertStore::empty();
            for c in self::chain("CA", ca)? {
                roots.add(c).map_err(|e| read("CA", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if optional {
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
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration: the server's certificate checked against the system's roots, or
/// with `skip_verify` not checked at all (its handshake signature still is).
pub fn client_config(skip_verify: bool) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// `skipverify`: any certificate is taken for the server's.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
