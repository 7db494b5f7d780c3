//! TLS for the public listener: rustls with the ring provider, TLS 1.3 only,
//! ALPN `http/1.1` (offering `h2` would make clients speak HTTP/2 to a
//! server that speaks HTTP/1.1 only).  A `TlsHolder` lets SIGHUP swap the
//! certificate: new connections take the new one, open ones keep theirs.

use anyhow::{bail, Context as _, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The server configuration new connections use; replaced on reload.
#[derive(Clone)]
pub struct TlsHolder(Arc<parking_lot::RwLock<Arc<rustls::ServerConfig>>>);

impl TlsHolder {
    pub fn new(config: Arc<rustls::ServerConfig>) -> TlsHolder {
        TlsHolder(Arc::new(parking_lot::RwLock::new(config)))
    }

    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.read().clone()
    }

    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *self.0.write() = config;
    }
}

pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    with_alpn(cert, key, b"http/1.1")
}

/// The same certificate for the gRPC listener: ALPN `h2`.
pub fn grpc_server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    with_alpn(cert, key, b"h2")
}

fn with_alpn(cert: &Path, key: &Path, alpn: &[u8]) -> Result<Arc<rustls::ServerConfig>> {
    let cert_pem =
        std::fs::read(cert).with_context(|| format!("cannot read TLS certificate {}", cert.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("TLS certificate {} is not valid PEM", cert.display()))?;
    if certs.is_empty() {
        bail!("TLS certificate file {} holds no certificate", cert.display());
    }
    let key_pem = std::fs::read(key).with_context(|| format!("cannot read TLS key {}", key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .with_context(|| format!("TLS key {} is not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 is not available")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}
