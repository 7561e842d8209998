//! Certificates for the TLS tests, made on the spot with rcgen and written as PEM files.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

/// A certificate authority: its PEM file, and what it signs with.
pub struct Authority {
    pub pem: PathBuf,
    params: CertificateParams,
    key: KeyPair,
}

impl Authority {
    /// A new authority, written to `dir/{name}-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test authority"));
        let ca = params.self_signed(&key).unwrap();
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, ca.pem()).unwrap();
        Authority { pem, params, key }
    }

    /// A certificate for 127.0.0.1 and localhost signed by this authority, written to
    /// `dir/{name}-cert.pem` with its key in `dir/{name}-key.pem`: (cert, key).
    pub fn issue(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let paths = (
            dir.join(format!("{name}-cert.pem")),
            dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&paths.0, cert.pem()).unwrap();
        std::fs::write(&paths.1, key.serialize_pem()).unwrap();
        paths
    }
}

/// An authority and an engine certificate it signed: (ca, cert, key).
#[allow(dead_code)]
pub fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let authority = Authority::new(dir, name);
    let (cert, key) = authority.issue(dir, name);
    (authority.pem, cert, key)
}
