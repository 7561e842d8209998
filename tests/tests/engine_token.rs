//! An engine beyond loopback: it refuses to start without a token, and with one it refuses
//! every call that does not carry it. One test in its own process, since the client reads
//! the token from the environment.

use sluice::prelude::*;
use sluice::service::auth::{TOKEN_ENV, TOKEN_FILE_ENV};
use sluice::service::watch_events;
use sluice_tests::Engine;

fn two_plus_two(addr: &str) -> Result<f64, sluice::SessionError> {
    let g = Graph::new();
    let four = g.scalar(2.0) + g.scalar(2.0);
    let mut sess = RemoteSession::create(addr, &g)?;
    Ok(sess.run(&[four], &[])?[0].scalar_f64().unwrap_or(f64::NAN))
}

#[test]
fn a_token_guards_an_engine_on_every_interface() {
    let dir = std::env::temp_dir().join(format!("sluice-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret-token-42\n").unwrap();

    // Without a token, an address other machines can reach is refused.
    let err = Engine::start_with(&["--listen", "0.0.0.0:0"])
        .err()
        .unwrap();
    assert!(err.contains("without a token"), "{err}");
    // (Plain text: TLS is engine_tls.rs's subject.)
    let engine = Engine::start_with(&[
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        token_file.to_str().unwrap(),
        "--insecure-plaintext",
    ])
    .unwrap();
    let port = engine.addr.rsplit_once(':').unwrap().1;
    let addr = format!("127.0.0.1:{port}");

    std::env::remove_var(TOKEN_ENV);
    std::env::remove_var(TOKEN_FILE_ENV);
    let err = two_plus_two(&addr).unwrap_err().to_string();
    assert!(
        err.contains("requires a token") && err.contains(TOKEN_ENV),
        "{err}"
    );
    let err = watch_events(&addr, None).err().unwrap().to_string();
    assert!(err.contains("requires a token"), "{err}");

    std::env::set_var(TOKEN_ENV, "s3cret-token-41");
    let err = two_plus_two(&addr).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");

    std::env::set_var(TOKEN_ENV, "s3cret-token-42");
    assert_eq!(two_plus_two(&addr).unwrap(), 4.0);
    let mut events = watch_events(&addr, None).unwrap();
    assert_eq!(two_plus_two(&addr).unwrap(), 4.0);
    assert!(matches!(
        events.next(),
        Some(Ok(sluice::service::EngineEvent::SessionCreated { .. }))
    ));

    // The token from a file, as the engine takes it.
    std::env::remove_var(TOKEN_ENV);
    std::env::set_var(TOKEN_FILE_ENV, &token_file);
    assert_eq!(two_plus_two(&addr).unwrap(), 4.0);
    std::env::set_var(TOKEN_FILE_ENV, dir.join("missing"));
    let err = two_plus_two(&addr).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    std::env::remove_var(TOKEN_FILE_ENV);

    // One token per user: each one's sessions are unknown to the other, to use or to watch.
    let users = dir.join("users");
    std::fs::write(&users, "# one per user\nalice-t0ken\n\nbob-t0ken\n").unwrap();
    let engine = Engine::start(&["--token-file", users.to_str().unwrap()]).unwrap();
    std::env::set_var(TOKEN_ENV, "bob-t0ken");
    let mut bobs_events = watch_events(&engine.addr, None).unwrap();
    std::env::set_var(TOKEN_ENV, "alice-t0ken");
    let g = Graph::new();
    let four = g.scalar(2.0) + g.scalar(2.0);
    let mut alices = RemoteSession::create(&engine.addr, &g).unwrap();
    assert_eq!(alices.run(&[four], &[]).unwrap()[0].scalar_f64(), Some(4.0));
    let handle = alices.handle().to_string();
    std::env::set_var(TOKEN_ENV, "bob-t0ken");
    let err = RemoteSession::attach(&engine.addr, &handle)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no session"), "{err}");
    let err = watch_events(&engine.addr, Some(&handle))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no session"), "{err}");
    // Bob's own session is the first thing Bob sees: none of Alice's events.
    let mut bobs = RemoteSession::create(&engine.addr, &g).unwrap();
    assert_eq!(bobs.run(&[four], &[]).unwrap()[0].scalar_f64(), Some(4.0));
    match bobs_events.next() {
        Some(Ok(sluice::service::EngineEvent::SessionCreated { session, .. })) => {
            assert_eq!(session, bobs.handle())
        }
        other => panic!("Bob's watch saw {other:?} first"),
    }
    std::env::remove_var(TOKEN_ENV);
    let _ = std::fs::remove_dir_all(&dir);
}
