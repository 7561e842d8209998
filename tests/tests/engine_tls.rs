//! TLS on loopback: an engine beyond loopback requires it; a client without the engine's
//! certificate authority, or with another one, is refused; what crosses the wire cannot be
//! read (a tensor's bytes are looked for in a capture and not found); and a cluster trains the
//! seed program data-parallel with every channel over TLS. One test in its own process, since
//! clients read the token and the authority from the environment.

use sluice::data::mnist_digits;
use sluice::distributed::replicas::DataParallel;
use sluice::distributed::{
    DistributedOptions, DistributedSession, LocalCluster, Trainer, TrainerOptions,
};
use sluice::prelude::*;
use sluice::service::auth::TOKEN_ENV;
use sluice::service::tls::CA_ENV;
use sluice_tests::{softmax_tower, Engine};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A certificate authority and an engine certificate it signed, for 127.0.0.1 and localhost,
/// written as PEM files into `dir`: (ca, cert, key).
fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test authority"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

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

    // A cluster whose tasks serve TLS and call each other over it trains the seed program.
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
    let model = DataParallel::parameter_servers(2, 1)
        .build(&Graph::new(), &GradientDescent::new(0.01), softmax_tower)
        .unwrap();
    let options = TrainerOptions {
        steps: 200,
        report_every: 50,
        session: DistributedOptions::default(),
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(model, cluster.spec(), options).unwrap();
    let digits = mnist_digits().unwrap();
    let mut streams: Vec<_> = (0..2).map(|r| digits.train.batches(100, r)).collect();
    let reached = trainer
        .fit(
            &mut |r| {
                let b = streams[r].next().unwrap();
                vec![b.inputs, b.one_hot]
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(reached, 200);
    let test = &digits.test;
    let metrics = trainer
        .evaluate(&[test.inputs_tensor(), test.one_hot_tensor()])
        .unwrap();
    assert!(metrics[0].1 > 0.85, "accuracy {}", metrics[0].1);

    // A large activation between two tasks takes the bulk channel, in TLS too.
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[256, 1024]);
    let h = {
        let _d = g.device("/job:worker/task:0");
        x * g.scalar(2.0)
    };
    let y = {
        let _d = g.device("/job:worker/task:1");
        reduce_sum(h)
    };
    let mut dist =
        DistributedSession::new(&g, cluster.spec(), DistributedOptions::default()).unwrap();
    let ones = Tensor::full(&[256, 1024], 1.0f32);
    let out = dist.run(&[y], &[(x, ones)]).unwrap();
    assert_eq!(out[0].scalar_f64(), Some(2.0 * 256.0 * 1024.0));
    assert!(dist.last_step_transfers().wire_bytes >= 1 << 20);
    std::env::remove_var(TOKEN_ENV);
    std::env::remove_var(CA_ENV);
    let _ = std::fs::remove_dir_all(&dir);
}
