//! Mutual TLS on loopback: a cluster whose engines accept only callers with a certificate of
//! the cluster's authority. Clients without one, or with one another authority signed, are
//! refused at the handshake; the engines present their own to each other (gRPC and the bulk
//! channel), and the seed program trains data-parallel across them. One test in its own
//! process, since clients read their certificate from the environment.

use sluice::distributed::{LocalCluster, TaskName};
use sluice::prelude::*;
use sluice::service::auth::TOKEN_ENV;
use sluice::service::tls::{CA_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV};
use sluice_tests::{train_and_transfer, Engine};
use std::path::Path;
use tls_certs::Authority;

mod tls_certs;

/// Doubles a small tensor on the engine at `addr`.
fn echo(addr: &str) -> Result<Tensor, sluice::SessionError> {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[4]);
    let y = x + x;
    let mut sess = RemoteSession::create(addr, &g)?;
    Ok(sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0]))])?
        .remove(0))
}

/// Clients from now on present this certificate (or none).
fn present(pair: Option<&(std::path::PathBuf, std::path::PathBuf)>) {
    match pair {
        Some((cert, key)) => {
            std::env::set_var(CLIENT_CERT_ENV, cert);
            std::env::set_var(CLIENT_KEY_ENV, key);
        }
        None => {
            std::env::remove_var(CLIENT_CERT_ENV);
            std::env::remove_var(CLIENT_KEY_ENV);
        }
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn with_mutual_tls_only_callers_with_the_clusters_certificates_get_in() {
    let dir = std::env::temp_dir().join(format!("sluice-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cluster_ca = Authority::new(&dir, "cluster");
    let (cert, key) = cluster_ca.issue(&dir, "engine");
    let alice = cluster_ca.issue(&dir, "alice");
    let stranger = Authority::new(&dir, "stranger");
    let mallory = stranger.issue(&dir, "mallory");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "mtls-s3cret\n").unwrap();
    std::env::set_var(TOKEN_ENV, "mtls-s3cret");
    std::env::set_var(CA_ENV, &cluster_ca.pem);

    // Asking callers for certificates needs TLS of the engine's own.
    let err = Engine::start_with(&["--tls-client-ca", text(&cluster_ca.pem)])
        .err()
        .unwrap();
    assert!(err.contains("--tls-cert"), "{err}");

    let cluster = LocalCluster::start_with(
        &[("worker", 2), ("ps", 1)],
        &[
            "--token-file",
            text(&token_file),
            "--tls-cert",
            text(&cert),
            "--tls-key",
            text(&key),
            "--tls-ca",
            text(&cluster_ca.pem),
            "--tls-client-ca",
            text(&cluster_ca.pem),
        ],
    )
    .unwrap();
    let worker0 = cluster
        .spec()
        .addr(&TaskName::new("worker", 0))
        .unwrap()
        .to_string();

    // Trusting the engine is not enough: the engine must trust the caller.
    present(None);
    let without = echo(&worker0).unwrap_err().to_string();
    assert!(!without.is_empty());
    present(Some(&mallory));
    let forged = echo(&worker0).unwrap_err().to_string();
    assert!(!forged.is_empty());

    present(Some(&alice));
    let doubled = echo(&worker0).unwrap();
    assert_eq!(doubled.to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);

    // The engines call each other with their own certificates: data-parallel training and
    // a large activation over the bulk channel both work.
    let accuracy = train_and_transfer(cluster.spec(), 100);
    assert!(accuracy > 0.8, "accuracy {accuracy}");

    present(None);
    std::env::remove_var(TOKEN_ENV);
    std::env::remove_var(CA_ENV);
    let _ = std::fs::remove_dir_all(&dir);
}
