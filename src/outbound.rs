//! Outbound HTTPS clients: how mcr (and mcrctl) call a service — MCIAS, an
//! S3 object store, mcr's own REST API.
//!
//! Invariant: every such client offers TLS 1.3 only (ureq enables every
//! version its rustls has, so the provider keeps only TLS 1.3 cipher
//! suites) and trusts either the web PKI or exactly the CA bundle given.

use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// The TLS 1.3-only rustls provider every client uses.
pub fn tls13_provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut crypto = rustls::crypto::ring::default_provider();
    crypto.cipher_suites.retain(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)));
    Arc::new(crypto)
}

/// How long a client waits: for a whole request (`None`: no overall limit,
/// for streamed bodies) and for the connection and response head.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub global: Option<Duration>,
    pub connect: Duration,
    pub response: Duration,
}

/// A client that reports HTTP errors as responses (the caller reads the
/// status) and follows no redirect, with `ca_pem` (a PEM bundle) as its
/// only trust roots when given.
pub fn agent(ca_pem: Option<&[u8]>, timeouts: Timeouts) -> anyhow::Result<ureq::Agent> {
    let roots = match ca_pem {
        Some(pem) => {
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("not valid PEM: {e}"))?;
            anyhow::ensure!(!certs.is_empty(), "holds no certificate");
            RootCerts::Specific(Arc::new(certs))
        }
        None => RootCerts::WebPki,
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(tls13_provider())
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        // A redirect would turn a PUT or DELETE into a GET and report it done.
        .max_redirects(0)
        .timeout_global(timeouts.global)
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.response))
        .build()
        .new_agent())
}
