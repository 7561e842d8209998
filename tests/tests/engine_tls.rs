//! TLS on loopback: an engine beyond loopback requires it; a client without the engine's
//! certificate authority, or with another one, is refused; what crosses the wire cannot be
//! read (a tensor's bytes are looked for in a capture and not found); and a cluster trains the
//! seed program data-parallel with every channel over TLS. One test in its own process, since
//! clients read the token and the authority from the environment.

use sluice::distributed::LocalCluster;
use sluice::prelude::*;
use sluice::service::auth::TOKEN_ENV;
use sluice::service::tls::CA_ENV;
use sluice_tests::{train_and_transfer, Engine};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use tls_certs::certificates;

mod tls_certs;

/// Forwards connections from a loopback port to `target`, keeping every byte that passes.
fn wiretap(target: String) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tap = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let tap = tap.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        tap.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (addr, seen)
}

/// 4096 floats whose bytes repeat a pattern no encryption would leave in place.
fn marked_tensor() -> (Tensor, Vec<u8>) {
    let pattern: Vec<f32> = vec![1234.5, -8765.25, 0.125, 77.75];
    let values: Vec<f32> = pattern.iter().copied().cycle().take(4096).collect();
    let bytes = pattern.iter().flat_map(|v| v.to_le_bytes()).collect();
    (Tensor::new(&[4096], values).unwrap(), bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Feeds the marked tensor to the engine at `addr` and fetches it back doubled.
fn echo(addr: &str) -> Result<Tensor, sluice::SessionError> {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[4096]);
    let y = x + x;
    let mut sess = RemoteSession::create(addr, &g)?;
    Ok(sess.run(&[y], &[(x, marked_tensor().0)])?.remove(0))
}

#[test]
fn engines_beyond_loopback_speak_tls_and_a_cluster_trains_over_it() {
    let dir = std::env::temp_dir().join(format!("sluice-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir, "engine");
    let (other_ca, _, _) = certificates(&dir, "stranger");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "tls-s3cret\n").unwrap();
    let (ca, cert, key, token) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        token_file.to_str().unwrap(),
    );
    std::env::set_var(TOKEN_ENV, "tls-s3cret");

    // Beyond loopback, a token alone is not enough.
    let err = Engine::start_with(&["--listen", "0.0.0.0:0", "--token-file", token])
        .err()
        .unwrap();
    assert!(err.contains("without TLS"), "{err}");
    let engine = Engine::start_with(&[
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        token,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ])
    .unwrap();
    let port = engine.addr.rsplit_once(':').unwrap().1;
    let (tapped, seen) = wiretap(format!("127.0.0.1:{port}"));

    // Clients that do not trust the engine's authority get nowhere.
    std::env::remove_var(CA_ENV);
    let plain = echo(&tapped).unwrap_err().to_string();
    assert!(!plain.is_empty());
    std::env::set_var(CA_ENV, &other_ca);
    let stranger = echo(&tapped).unwrap_err().to_string();
    assert!(
        stranger.to_lowercase().contains("certificate"),
        "{stranger}"
    );

    // Trusting it but without the token: still refused.
    std::env::set_var(CA_ENV, ca);
    std::env::remove_var(TOKEN_ENV);
    let tokenless = echo(&tapped).unwrap_err().to_string();
    assert!(tokenless.contains("requires a token"), "{tokenless}");
    std::env::set_var(TOKEN_ENV, "tls-s3cret");

    // With both, the step runs, and its tensor is nowhere in what crossed the wire.
    let doubled = echo(&tapped).unwrap();
    let expected: Vec<f32> = (marked_tensor().0.to_vec::<f32>().unwrap().iter())
        .map(|v| v * 2.0)
        .collect();
    assert_eq!(doubled.to_vec::<f32>().unwrap(), expected);
    let (_, pattern) = marked_tensor();
    let captured = seen.lock().unwrap().clone();
    assert!(
        captured.len() > 16384,
        "only {} bytes crossed",
        captured.len()
    );
    assert!(
        !contains(&captured, &pattern),
        "the fed tensor crossed in clear text"
    );
    assert!(
        !contains(&captured, b"tls-s3cret"),
        "the token crossed in clear text"
    );

    // A cluster whose tasks serve TLS and call each other over it trains the seed program,
    // and moves a large activation over the bulk channel, in TLS too.
    let cluster = LocalCluster::start_with(
        &[("worker", 2), ("ps", 1)],
        &[
            "--token-file",
            token,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--tls-ca",
            ca,
        ],
    )
    .unwrap();
    let accuracy = train_and_transfer(cluster.spec(), 200);
    assert!(accuracy > 0.85, "accuracy {accuracy}");
    std::env::remove_var(TOKEN_ENV);
    std::env::remove_var(CA_ENV);
    let _ = std::fs::remove_dir_all(&dir);
}
