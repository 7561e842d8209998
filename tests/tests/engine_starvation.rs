//! One session's long work never stalls the engine: a step stops at its deadline inside its
//! kernels, calls queue per session without holding threads (and past the queue's bound are
//! refused), a window far larger than its image costs only the image, and RecvTensor calls
//! for keys nobody publishes leave nothing behind. Against a real `sluice-engine`.

use sluice::prelude::*;
use sluice::service::proto::master_service_client::MasterServiceClient;
use sluice::service::proto::run_step_chunk::Part;
use sluice::service::proto::worker_service_client::WorkerServiceClient;
use sluice::service::proto::{self, RunStepChunk};
use sluice::service::wire::graph_def_to_proto;
use sluice_tests::Engine;
use std::time::{Duration, Instant};
use tonic::Code;

/// A step of many seconds on two cores (sixty 9x9 convolutions of 64 images, 8 channels),
/// and a quick one.
fn long_graph() -> (Graph, Output, Output) {
    let g = Graph::new();
    let two = (g.scalar(1.0) + g.scalar(1.0)).named("two");
    let x = g.constant(Tensor::full(&[64, 64, 64, 8], 0.01f32));
    let f = g.constant(Tensor::full(&[9, 9, 8, 8], 0.01f32));
    let mut y = x;
    for _ in 0..60 {
        y = conv2d(y, f, [1, 1], Padding::Same);
    }
    (g, reduce_sum(y).named("long"), two)
}

fn header(handle: &str, fetch: &str, timeout_ms: u64) -> RunStepChunk {
    RunStepChunk {
        part: Some(Part::Header(proto::RunStepHeader {
            session_handle: handle.into(),
            fetch: vec![fetch.into()],
            target: vec![],
            feed_count: 0,
            options: Some(proto::RunOptions {
                timeout_ms,
                ..Default::default()
            }),
        })),
    }
}

async fn run(
    client: &mut MasterServiceClient<tonic::transport::Channel>,
    handle: &str,
    fetch: &str,
    timeout_ms: u64,
) -> Result<(), tonic::Status> {
    let mut answer = client
        .run_step(tokio_stream::iter(vec![header(handle, fetch, timeout_ms)]))
        .await?
        .into_inner();
    while answer.message().await?.is_some() {}
    Ok(())
}

async fn create(client: &mut MasterServiceClient<tonic::transport::Channel>, g: &Graph) -> String {
    let request = proto::CreateSessionRequest {
        graph_def: Some(graph_def_to_proto(&g.to_graph_def(0))),
    };
    client
        .create_session(request)
        .await
        .unwrap()
        .into_inner()
        .session_handle
}

#[test]
fn a_busy_session_with_600_queued_steps_starves_no_other_session() {
    let mut engine = Engine::start(&[]).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let addr = format!("http://{}", engine.addr);
        let mut client = MasterServiceClient::connect(addr.clone()).await.unwrap();
        let (long, _, two) = long_graph();
        let busy = create(&mut client, &long).await;
        let quick = Graph::new();
        let five = quick.scalar(2.0) + quick.scalar(3.0);
        let other = create(&mut client, &quick).await;

        // A deadline stops the step inside its kernels: the session is free again at once.
        let started = Instant::now();
        let err = run(&mut client, &busy, "long", 300).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        run(&mut client, &busy, &two.name(), 0).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the session was held {:?} after a 300 ms deadline",
            started.elapsed()
        );

        // The long step, and 600 more behind it on the same session, over several
        // connections (a connection carries at most a few hundred streams at once).
        let mut calls = Vec::new();
        for _ in 0..7 {
            let c = MasterServiceClient::connect(addr.clone()).await.unwrap();
            for _ in 0..(601 - calls.len()).min(100) {
                let (mut c, handle) = (c.clone(), busy.clone());
                calls.push(tokio::spawn(async move {
                    run(&mut c, &handle, "long", 0).await
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Everyone else is served at once.
        let mut client = MasterServiceClient::connect(addr.clone()).await.unwrap();
        let asked = Instant::now();
        run(&mut client, &other, &five.name(), 0).await.unwrap();
        client
            .list_devices(proto::ListDevicesRequest {})
            .await
            .unwrap();
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "another session waited {:?}",
            asked.elapsed()
        );
        // Cancel the busy session: the running step and the queued ones end.
        client
            .cancel(proto::CancelRequest {
                session_handle: busy.clone(),
                reset: false,
            })
            .await
            .unwrap();
        let (mut refused, mut cancelled) = (0, 0);
        for call in calls {
            let result = tokio::time::timeout(Duration::from_secs(20), call)
                .await
                .expect("every queued call ends once the session is cancelled")
                .unwrap();
            match result.map_err(|s| s.code()) {
                Err(Code::ResourceExhausted) => refused += 1,
                Err(Code::Cancelled) => cancelled += 1,
                other => panic!("a queued step ended with {other:?}"),
            }
        }
        assert!(
            refused >= 600 - 64,
            "{refused} refused, {cancelled} cancelled"
        );
        assert_eq!(refused + cancelled, 601);
    });
    assert!(engine.is_running());
}

#[test]
fn a_huge_matrix_product_stops_at_its_deadline_within_a_block() {
    let engine = Engine::start(&[]).unwrap();
    // [16384, 4096] @ [4096, 4096] five times over: 275 billion multiply-adds each, seconds
    // per product on two cores; the operands are broadcast from small constants so that the
    // graph itself stays small.
    let g = Graph::new();
    let x = g.constant(Tensor::full(&[16384, 1], 0.002f32))
        + g.constant(Tensor::full(&[1, 4096], 0.0f32));
    let w = g.constant(Tensor::full(&[4096, 1], 0.002f32))
        + g.constant(Tensor::full(&[1, 4096], 0.0f32));
    let mut y = x;
    for _ in 0..5 {
        y = matmul(y, w);
    }
    let y = reduce_sum(y).named("products");
    let two = (g.scalar(1.0) + g.scalar(1.0)).named("two");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = MasterServiceClient::connect(format!("http://{}", engine.addr))
            .await
            .unwrap();
        let session = create(&mut client, &g).await;
        let started = Instant::now();
        let err = run(&mut client, &session, &y.name(), 300)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        // The session is free again at once: checked between kernels only, the first
        // product alone would hold it for seconds.
        run(&mut client, &session, &two.name(), 0).await.unwrap();
        let free = started.elapsed();
        assert!(
            free < Duration::from_millis(1500),
            "the session was held {free:?} after a 300 ms deadline"
        );
    });
}

#[test]
fn a_connection_carries_at_most_max_streams_calls_at_once() {
    let engine = Engine::start(&["--max-streams", "2"]).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let addr = format!("http://{}", engine.addr);
        let mut client = MasterServiceClient::connect(addr.clone()).await.unwrap();
        let watch = || proto::WatchEventsRequest {
            session_handle: String::new(),
        };
        let first = client.watch_events(watch()).await.unwrap().into_inner();
        let _second = client.watch_events(watch()).await.unwrap().into_inner();
        // Two streams stay open: a third call on the connection waits for one of them.
        let devices = proto::ListDevicesRequest {};
        let third = tokio::time::timeout(
            Duration::from_millis(500),
            client.clone().list_devices(devices),
        )
        .await;
        assert!(third.is_err(), "a third call ran beside two open streams");
        // Another connection is served at once.
        let mut other = MasterServiceClient::connect(addr).await.unwrap();
        other.list_devices(devices).await.unwrap();
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), client.list_devices(devices))
            .await
            .expect("the call runs once a stream has ended")
            .unwrap();
    });
}

#[test]
fn a_window_far_larger_than_its_image_costs_only_the_image() {
    let engine = Engine::start(&[]).unwrap();
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[1, 8, 8, 1]);
    let pooled = max_pool(x, [1 << 40, 1 << 40], [1, 1], Padding::Same).named("pooled");
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let values: Vec<f32> = (0..64).map(|i| ((i * 37) % 64) as f32).collect();
    let started = Instant::now();
    let out = sess
        .run(
            &[pooled],
            &[(x, Tensor::new(&[1, 8, 8, 1], values).unwrap())],
        )
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Every window holds the whole image.
    assert!(out[0].to_vec::<f32>().unwrap().iter().all(|&v| v == 63.0));
}

/// The engine's resident memory in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn recv_tensor_calls_for_keys_never_published_leave_nothing_behind() {
    let engine = Engine::start(&[]).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut worker = WorkerServiceClient::connect(format!("http://{}", engine.addr))
            .await
            .unwrap();
        let status = worker
            .get_status(proto::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        // Keys of this incarnation, which wait for a value until their timeout.
        let ask = |i: usize| {
            let mut w = worker.clone();
            let key = format!(
                "a;{:x};b;graph;tensor-{i}-{}",
                status.incarnation,
                "x".repeat(4000)
            );
            async move {
                let request = proto::RecvTensorRequest {
                    key,
                    step_id: 1,
                    timeout_ms: 5,
                    precision: 0,
                    accept_bulk: false,
                };
                w.recv_tensor(request).await.map(|_| ())
            }
        };
        let batch = |from: usize| {
            let calls: Vec<_> = (from..from + 100).map(|i| tokio::spawn(ask(i))).collect();
            async move {
                for call in calls {
                    let err = call.await.unwrap().unwrap_err();
                    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
                }
            }
        };
        // Warm up the connection and the engine's allocator first.
        batch(0).await;
        let start = resident_kib(engine.pid());
        for round in 1..=30 {
            batch(round * 100).await;
        }
        let end = resident_kib(engine.pid());
        assert!(
            end <= start + 10 * 1024,
            "3,000 unpublished keys grew the engine from {start} KiB to {end} KiB"
        );
    });
}
