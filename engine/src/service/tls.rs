//! TLS on the engine's gRPC channels (rustls, through tonic's `tls-ring` feature; no
//! OpenSSL). An engine given a certificate and its key (`--tls-cert`, `--tls-key`, or
//! `SLUICE_TLS_CERT` / `SLUICE_TLS_KEY`) serves only TLS; clients, and engines calling each
//! other, trust the certificate authority in `SLUICE_TLS_CA` (or the engine's `--tls-ca`) and
//! then connect over TLS, checking the engine's certificate against it.
//!
//! Mutual TLS is optional: an engine given `--tls-client-ca` (or `SLUICE_TLS_CLIENT_CA`)
//! accepts only callers with a certificate that authority signed. Engines present their own
//! certificate on their calls to each other; clients present the one in
//! `SLUICE_TLS_CLIENT_CERT` / `SLUICE_TLS_CLIENT_KEY`.

use std::path::Path;
#[cfg(feature = "engine")]
use std::sync::Arc;
use tonic::transport::Endpoint;

/// The engine's certificate chain (PEM).
pub const CERT_ENV: &str = "SLUICE_TLS_CERT";
/// The engine certificate's private key (PEM).
pub const KEY_ENV: &str = "SLUICE_TLS_KEY";
/// The certificate authority (PEM) clients and engines check an engine's certificate against.
pub const CA_ENV: &str = "SLUICE_TLS_CA";
/// A client's certificate chain (PEM), for engines that ask callers for one.
pub const CLIENT_CERT_ENV: &str = "SLUICE_TLS_CLIENT_CERT";
/// The private key of the client's certificate (PEM).
pub const CLIENT_KEY_ENV: &str = "SLUICE_TLS_CLIENT_KEY";
/// The authority (PEM) an engine checks its callers' certificates against (mutual TLS).
pub const CLIENT_CA_ENV: &str = "SLUICE_TLS_CLIENT_CA";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {message}")]
    Unreadable {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("the {what} {path} holds no PEM '{label}' block")]
    NotPem {
        what: &'static str,
        path: String,
        label: &'static str,
    },
    #[error("{addr}: {message}")]
    Endpoint { addr: String, message: String },
}

fn read_pem(path: &Path, what: &'static str, labels: &[&'static str]) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Unreadable {
        what,
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let has = |label: &str| text.contains(&format!("-----BEGIN {label}-----"));
    if !labels.iter().any(|l| has(l)) {
        return Err(TlsError::NotPem {
            what,
            path: path.display().to_string(),
            label: labels.first().copied().unwrap_or("CERTIFICATE"),
        });
    }
    Ok(bytes)
}

/// A certificate chain and its private key (PEM): an engine's, or a client's for engines
/// that ask callers for one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertAndKey {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CertAndKey")
            .field("cert_bytes", &self.cert.len())
            .finish_non_exhaustive()
    }
}

impl CertAndKey {
    pub fn read(cert: &Path, key: &Path) -> Result<CertAndKey, TlsError> {
        Ok(CertAndKey {
            cert: read_pem(cert, "certificate", &["CERTIFICATE"])?,
            key: read_pem(
                key,
                "private key",
                &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"],
            )?,
        })
    }

    /// The pair the environment variables `cert_env` and `key_env` name, if both are set.
    fn from_env(cert_env: &str, key_env: &str) -> Result<Option<CertAndKey>, TlsError> {
        let cert = std::env::var_os(cert_env).filter(|p| !p.is_empty());
        let key = std::env::var_os(key_env).filter(|p| !p.is_empty());
        match (cert, key) {
            (Some(c), Some(k)) => CertAndKey::read(Path::new(&c), Path::new(&k)).map(Some),
            _ => Ok(None),
        }
    }

    /// The chain and key as rustls takes them.
    #[cfg(feature = "engine")]
    fn rustls_parts(
        &self,
    ) -> Result<
        (
            Vec<rustls::pki_types::CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        ),
        String,
    > {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|e| format!("the private key: {e}"))?;
        Ok((certs, key))
    }
}

/// A certificate authority a client trusts (PEM certificates), with the certificate the
/// client presents to engines that ask for one (mutual TLS), if it has one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrustedCa {
    pem: Vec<u8>,
    identity: Option<CertAndKey>,
}

impl TrustedCa {
    pub fn read(path: &Path) -> Result<TrustedCa, TlsError> {
        let pem = read_pem(path, "certificate authority", &["CERTIFICATE"])?;
        Ok(TrustedCa {
            pem,
            identity: None,
        })
    }

    /// The authority `SLUICE_TLS_CA` names, if set, with the client certificate of
    /// `SLUICE_TLS_CLIENT_CERT` and `SLUICE_TLS_CLIENT_KEY` if both are set.
    pub fn from_env() -> Result<Option<TrustedCa>, TlsError> {
        let Some(ca) = TrustedCa::from_env_var(CA_ENV)? else {
            return Ok(None);
        };
        Ok(Some(
            match CertAndKey::from_env(CLIENT_CERT_ENV, CLIENT_KEY_ENV)? {
                Some(identity) => ca.presenting(identity),
                None => ca,
            },
        ))
    }

    /// The authority the environment variable `var` names, if set (no client certificate).
    pub fn from_env_var(var: &str) -> Result<Option<TrustedCa>, TlsError> {
        match std::env::var_os(var).filter(|p| !p.is_empty()) {
            Some(path) => TrustedCa::read(Path::new(&path)).map(Some),
            None => Ok(None),
        }
    }

    /// The same authority, presenting `identity` to engines that ask callers for one.
    pub fn presenting(self, identity: CertAndKey) -> TrustedCa {
        TrustedCa {
            identity: Some(identity),
            ..self
        }
    }

    pub fn pem(&self) -> &[u8] {
        &self.pem
    }
}

/// An engine's certificate chain and private key (PEM).
#[cfg(feature = "engine")]
#[derive(Clone, Debug)]
pub struct ServerIdentity(CertAndKey);

#[cfg(feature = "engine")]
impl ServerIdentity {
    pub fn read(cert: &Path, key: &Path) -> Result<ServerIdentity, TlsError> {
        CertAndKey::read(cert, key).map(ServerIdentity)
    }

    /// The identity `SLUICE_TLS_CERT` and `SLUICE_TLS_KEY` name, if both are set.
    pub fn from_env() -> Result<Option<ServerIdentity>, TlsError> {
        Ok(CertAndKey::from_env(CERT_ENV, KEY_ENV)?.map(ServerIdentity))
    }

    /// The certificate and key, for the engine's own calls to engines that check callers.
    pub fn as_client(&self) -> CertAndKey {
        self.0.clone()
    }

    /// The gRPC server's TLS; with `clients`, only callers whose certificate that
    /// authority signed are let in.
    pub(crate) fn server_config(
        &self,
        clients: Option<&TrustedCa>,
    ) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.0.cert, &self.0.key);
        let config = tonic::transport::ServerTlsConfig::new().identity(identity);
        match clients {
            Some(ca) => config.client_ca_root(tonic::transport::Certificate::from_pem(ca.pem())),
            None => config,
        }
    }

    /// The same identity for a TLS server of our own (the bulk channel), checking callers
    /// against `clients` when given.
    pub fn rustls_server(
        &self,
        clients: Option<&TrustedCa>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let bad = |message: String| TlsError::Endpoint {
            addr: "the bulk channel".into(),
            message,
        };
        let (certs, key) = self.0.rustls_parts().map_err(bad)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?;
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let roots = ca.root_store().map_err(bad)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|e| bad(format!("the client authority: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| bad(e.to_string()))?;
        Ok(Arc::new(config))
    }
}

/// ring's provider, as tonic's `tls-ring` uses for the gRPC channels. (rustls now prefers
/// aws-lc-rs for post-quantum key exchange; it needs cmake and a C toolchain of its own to
/// build, which the machines we build on lack.)
#[cfg(feature = "engine")]
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(feature = "engine")]
impl TrustedCa {
    /// A TLS client of our own (the bulk channel's receiver) that trusts this authority: one
    /// per authority and process, so connections opened with it can be pooled and reused.
    pub fn rustls_client(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        type Clients = std::collections::HashMap<TrustedCa, Arc<rustls::ClientConfig>>;
        static CLIENTS: std::sync::OnceLock<std::sync::Mutex<Clients>> = std::sync::OnceLock::new();
        let mut clients = CLIENTS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(config) = clients.get(self) {
            return Ok(config.clone());
        }
        let config = self.new_rustls_client()?;
        clients.insert(self.clone(), config.clone());
        Ok(config)
    }

    /// The authority's certificates as rustls trusts them.
    fn root_store(&self) -> Result<rustls::RootCertStore, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.pem) {
            let cert = cert.map_err(|e| format!("the certificate authority: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the certificate authority: {e}"))?;
        }
        Ok(roots)
    }

    fn new_rustls_client(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let bad = |message: String| TlsError::Endpoint {
            addr: "the bulk channel".into(),
            message,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(self.root_store().map_err(bad)?);
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let (certs, key) = identity.rustls_parts().map_err(bad)?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| bad(format!("the client certificate: {e}")))?
            }
        };
        Ok(Arc::new(config))
    }
}

/// The name a peer's certificate must hold: the host of its address.
#[cfg(feature = "engine")]
pub(crate) fn server_name(addr: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    let host = host_of(addr.split_once("://").map_or(addr, |(_, rest)| rest));
    rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("'{host}' is not a name a certificate can hold: {e}"))
}

/// The host of `host:port` (`[::1]:7070` gives `::1`): the name the certificate must hold.
fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => addr,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The endpoint of the engine at `addr` (`host:port`, or a URI): over TLS, checked against
/// `ca`, when one is given; in clear text otherwise.
pub(crate) fn endpoint(addr: &str, ca: Option<&TrustedCa>) -> Result<Endpoint, TlsError> {
    let failed = |message: String| TlsError::Endpoint {
        addr: addr.to_string(),
        message,
    };
    let rest = addr.split_once("://").map_or(addr, |(_, rest)| rest);
    let scheme = if ca.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{rest}"))
        .map_err(|e| failed(format!("not an address: {e}")))?;
    let Some(ca) = ca else {
        if addr.starts_with("https://") {
            return Err(failed(format!(
                "https needs the certificate authority to check the engine against: set {CA_ENV}"
            )));
        }
        return Ok(endpoint);
    };
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca.pem()))
        .domain_name(host_of(rest));
    if let Some(id) = &ca.identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(&id.cert, &id.key));
    }
    endpoint
        .tls_config(tls)
        .map_err(|e| failed(format!("TLS: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_without_their_port() {
        assert_eq!(host_of("127.0.0.1:7070"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7070"), "::1");
        assert_eq!(host_of("engine.example:443"), "engine.example");
        assert_eq!(host_of("engine.example"), "engine.example");
    }

    #[test]
    fn files_that_hold_no_pem_are_named() {
        let path = std::env::temp_dir().join(format!("sluice-not-pem-{}", std::process::id()));
        std::fs::write(&path, b"hello").unwrap();
        let err = TrustedCa::read(&path).unwrap_err();
        assert!(
            err.to_string().contains("no PEM 'CERTIFICATE' block"),
            "{err}"
        );
        let _ = std::fs::remove_file(&path);
    }
}
