//! WatchEvents as a frontend meets it: a watcher on a real `sluice-engine serve` process sees
//! sessions open and close, graphs grow, steps with their scalar fetches, and fits start,
//! report and end — including a fit ended by Cancel.

use sluice::prelude::*;
use sluice::service::{watch_events, EngineEvent, EventStream, RemoteCancelToken};
use sluice_tests::Engine;
use std::time::Duration;

/// Events until one matches `last` (or the watcher waits 30 s for one).
fn events_until(
    watcher: &mut EventStream,
    last: impl Fn(&EngineEvent) -> bool,
) -> Vec<EngineEvent> {
    let mut seen = Vec::new();
    loop {
        match watcher.next_timeout(Duration::from_secs(30)).unwrap() {
            Some(event) => {
                let done = last(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
            None => panic!("no more events; saw {seen:#?}"),
        }
    }
}

fn seed_graph() -> (Graph, Output, Output, Output, Output) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let y = softmax(matmul(x, w));
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let loss = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(loss).unwrap();
    (g, x, y_, loss, train)
}

#[test]
fn a_watcher_sees_sessions_graph_changes_steps_and_fits() {
    let engine = Engine::start(&[]).unwrap();
    let mut all = watch_events(&engine.addr, None).unwrap();
    let (g, x, y_, loss, train) = seed_graph();
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let handle = sess.handle().to_string();
    let mut mine = sess.watch_events().unwrap();

    // A node added after the session opened travels before the next run: a graph change.
    let half = g.scalar(0.5);
    let scaled = loss * half;
    sess.init_variables().unwrap();
    let digits = sluice::data::mnist_digits().unwrap();
    let batch = digits.train.batches(100, 0).next().unwrap();
    for _ in 0..3 {
        sess.run_with_targets(
            &[scaled],
            &[(x, batch.inputs.clone()), (y_, batch.one_hot.clone())],
            &[train],
        )
        .unwrap();
    }
    let events = events_until(&mut all, |e| matches!(e, EngineEvent::Step { step: 3, .. }));
    assert!(matches!(
        &events[0],
        EngineEvent::SessionCreated { session, .. } if *session == handle
    ));
    let added = events.iter().find_map(|e| match e {
        EngineEvent::GraphChanged { added, .. } => Some(*added),
        _ => None,
    });
    assert_eq!(added, Some(2), "{events:#?}");
    let losses: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Step {
                scalars, from_fit, ..
            } => {
                assert!(!from_fit);
                assert_eq!(scalars.len(), 1);
                assert_eq!(scalars[0].0, scaled.name());
                Some(scalars[0].1)
            }
            _ => None,
        })
        .collect();
    assert_eq!(losses.len(), 3);
    // Half the seed's first loss, 100 * ln 10 / 2, then falling as W trains.
    assert!((losses[0] - 115.129).abs() < 0.01, "{losses:?}");
    assert!(losses[1] < losses[0], "{losses:?}");

    // A fit: started, a report every 10 steps with the loss, ended without error.
    let config = FitConfig {
        steps: 30,
        report_every: 10,
        ..FitConfig::new(x, y_, loss, train)
    };
    sess.fit("mnist-digits", &config, &mut |_| {}).unwrap();
    let events = events_until(&mut mine, |e| matches!(e, EngineEvent::FitEnded { .. }));
    assert!(events.iter().all(|e| e.session() == Some(handle.as_str())));
    let fit: Vec<&EngineEvent> = events
        .iter()
        .skip_while(|e| !matches!(e, EngineEvent::FitStarted { .. }))
        .collect();
    assert!(
        matches!(fit[0], EngineEvent::FitStarted { steps: 30, dataset, .. } if dataset == "mnist-digits"),
        "{events:#?}"
    );
    let reports: Vec<(i64, f64)> = fit
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Step {
                step,
                scalars,
                from_fit: true,
                examples_per_second: Some(rate),
                ..
            } if scalars[0].0 == "loss" && *rate > 0.0 => Some((*step, scalars[0].1)),
            _ => None,
        })
        .collect();
    // The global step continues from the three steps run before; the fit's own count
    // starts at zero.
    assert_eq!(
        reports.iter().map(|r| r.0).collect::<Vec<_>>(),
        [13, 23, 33],
        "{events:#?}"
    );
    let done: Vec<Option<u64>> = fit
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Step { steps_done, .. } => Some(*steps_done),
            _ => None,
        })
        .collect();
    assert_eq!(done, [Some(10), Some(20), Some(30)]);
    assert!(matches!(
        fit.last(),
        Some(EngineEvent::FitEnded {
            steps_done: 30,
            error: None,
            ..
        })
    ));

    sess.close().unwrap();
    let events = events_until(&mut all, |e| matches!(e, EngineEvent::SessionClosed { .. }));
    assert_eq!(
        events.last().and_then(EngineEvent::session),
        Some(handle.as_str())
    );
}

#[test]
fn a_cancelled_fit_ends_with_cancelled_and_a_watcher_of_another_session_sees_nothing_of_it() {
    let engine = Engine::start(&[]).unwrap();
    let (g, x, y_, loss, train) = seed_graph();
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    sess.init_variables().unwrap();
    let other = RemoteSession::create(&engine.addr, &Graph::new()).unwrap();
    let mut quiet = other.watch_events().unwrap();
    // A frontend that did not open the session learns its handle from the events and
    // interrupts it with that.
    let mut watcher = watch_events(&engine.addr, None).unwrap();
    let addr = engine.addr.clone();
    let config = FitConfig {
        steps: 10_000_000,
        report_every: 5,
        ..FitConfig::new(x, y_, loss, train)
    };
    let runner = std::thread::spawn(move || sess.fit("mnist-digits", &config, &mut |_| {}));
    let started = events_until(&mut watcher, |e| matches!(e, EngineEvent::Step { .. }));
    let session = started.last().and_then(EngineEvent::session).unwrap();
    RemoteCancelToken::new(&addr, session).cancel().unwrap();
    assert_eq!(
        runner.join().unwrap().unwrap_err(),
        sluice::SessionError::Cancelled
    );
    let ended = events_until(&mut watcher, |e| matches!(e, EngineEvent::FitEnded { .. }));
    match ended.last() {
        Some(EngineEvent::FitEnded {
            steps_done, error, ..
        }) => {
            assert_eq!(error.as_deref(), Some("cancelled"));
            assert!(*steps_done >= 5);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        quiet.next_timeout(Duration::from_millis(300)).unwrap(),
        None
    );
    // Watching a session that does not exist is refused with its name.
    let err = watch_events(&engine.addr, Some("no-such-session"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no-such-session"), "{err}");
}
