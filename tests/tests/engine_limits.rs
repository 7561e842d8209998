//! Sizes from outside meet the engine's memory budget before any memory is set aside, a
//! panicking kernel costs its step only, and graph messages get the same limit on the worker
//! service as on the master: each against a real `sluice-engine`, which stays up and right.

use sluice::error::{RemoteError, SessionError};
use sluice::graph::{AttrValue, GraphDef, NodeDef, Shape};
use sluice::prelude::*;
use sluice::service::proto::worker_service_client::WorkerServiceClient;
use sluice::service::proto::worker_service_server::{WorkerService, WorkerServiceServer};
use sluice::service::proto::{self, recv_tensor_chunk::Part};
use sluice::service::wire::graph_def_to_proto;
use sluice_tests::Engine;
use std::pin::Pin;
use tonic::{Code, Request, Response, Status, Streaming};

/// 2 + 3 in a fresh session: the engine still answers, and right.
fn still_right(engine: &mut Engine) {
    assert!(engine.is_running());
    let g = Graph::new();
    let five = g.scalar(2.0) + g.scalar(3.0);
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    assert_eq!(sess.run(&[five], &[]).unwrap()[0].scalar_f64(), Some(5.0));
}

fn status_of(err: &SessionError) -> (Code, String) {
    match err {
        SessionError::Remote(RemoteError::Status { code, message }) => (*code, message.clone()),
        other => panic!("expected the engine's status, got {other:?}"),
    }
}

#[test]
fn tensors_past_the_memory_budget_are_refused_by_name_and_the_engine_stays_up() {
    // The default budget (three quarters of this machine) against the 1 TiB asks.
    let mut engine = Engine::start(&[]).unwrap();
    let g = Graph::new();
    let i = g.placeholder("i", DType::I32, &[4]);
    let hot = one_hot(i, 1 << 38).named("hot");
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let err = sess
        .run(&[hot], &[(i, Tensor::from_vec(vec![0i32, 1, 2, 3]))])
        .unwrap_err();
    let (code, text) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{text}");
    assert!(
        text.contains("'hot'") && text.contains("memory budget"),
        "{text}"
    );

    let _huge = g.variable("huge", &[1 << 37], Initializer::Zeros);
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let err = sess.init_variables().unwrap_err();
    let (code, text) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{text}");
    assert!(
        text.contains("huge") && text.contains("549755813888 bytes"),
        "{text}"
    );
    still_right(&mut engine);

    // A small budget of its own: an outer product past 1 MiB fails, one within it runs.
    let mut engine = Engine::start(&["--max-memory", "1MiB"]).unwrap();
    let g = Graph::new();
    let a = g.placeholder("a", DType::F32, &[-1, 1]);
    let outer = matmul_t(a, a, false, true).named("outer");
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let column = |n: usize| Tensor::new(&[n, 1], vec![1.0f32; n]).unwrap();
    let err = sess.run(&[outer], &[(a, column(1024))]).unwrap_err();
    let (code, text) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{text}");
    assert!(
        text.contains("'outer'") && text.contains("4194304 bytes"),
        "{text}"
    );
    let fits = sess.run(&[outer], &[(a, column(500))]).unwrap();
    assert_eq!(fits[0].shape(), &[500, 500]);
    still_right(&mut engine);
}

/// A worker that answers every RecvTensor with a header claiming a [2^38] f32 tensor (1 TiB),
/// as a hostile or broken peer might.
struct BoastingPeer;

type Chunks =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<proto::RecvTensorChunk, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for BoastingPeer {
    type RecvTensorStream = Chunks;
    type RunGraphStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<proto::RunStepChunk, Status>> + Send>>;

    async fn register_graph(
        &self,
        _: Request<proto::CreateSessionRequest>,
    ) -> Result<Response<proto::CreateSessionResponse>, Status> {
        Err(Status::unimplemented("a peer that only boasts"))
    }

    async fn run_graph(
        &self,
        _: Request<Streaming<proto::RunStepChunk>>,
    ) -> Result<Response<Self::RunGraphStream>, Status> {
        Err(Status::unimplemented("a peer that only boasts"))
    }

    async fn cleanup_graph(
        &self,
        _: Request<proto::CloseSessionRequest>,
    ) -> Result<Response<proto::CloseSessionResponse>, Status> {
        Err(Status::unimplemented("a peer that only boasts"))
    }

    async fn recv_tensor(
        &self,
        _: Request<proto::RecvTensorRequest>,
    ) -> Result<Response<Chunks>, Status> {
        let header = proto::RecvTensorHeader {
            dtype: sluice::service::wire::dtype_to_proto(DType::F32) as i32,
            dims: vec![1 << 38],
            precision: proto::WirePrecision::WireF32 as i32,
            scale: 1.0,
            wire_bytes: 1 << 40,
            bulk_port: 0,
            bulk_ticket: Default::default(),
        };
        let chunk = proto::RecvTensorChunk {
            part: Some(Part::Header(header)),
        };
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(chunk)))))
    }

    async fn abort_step(
        &self,
        _: Request<proto::AbortStepRequest>,
    ) -> Result<Response<proto::AbortStepResponse>, Status> {
        Ok(Response::new(proto::AbortStepResponse {}))
    }

    async fn get_status(
        &self,
        _: Request<proto::GetStatusRequest>,
    ) -> Result<Response<proto::GetStatusResponse>, Status> {
        Err(Status::unimplemented("a peer that only boasts"))
    }
}

#[test]
fn a_peer_that_declares_a_huge_tensor_is_refused_before_memory_is_set_aside() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let peer = listener.local_addr().unwrap().to_string();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(WorkerServiceServer::new(BoastingPeer))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let mut engine = Engine::start(&[]).unwrap();
    // What any client may send: a `_Recv` pointed at any peer.
    let node = |name: &str, op: &str, inputs: &[&str], attrs: Vec<(&str, AttrValue)>| NodeDef {
        name: name.into(),
        op: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        device: String::new(),
        attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    let def = GraphDef {
        nodes: vec![
            node(
                "step",
                "Placeholder",
                &[],
                vec![
                    ("dtype", AttrValue::DType(DType::I64)),
                    ("shape", AttrValue::Shape(Shape::known(&[]))),
                ],
            ),
            node(
                "recv",
                "_Recv",
                &["step"],
                vec![
                    ("key", AttrValue::Str("a;1;b;g;t".into())),
                    ("peer", AttrValue::Str(peer)),
                    ("dtype", AttrValue::DType(DType::F32)),
                    ("shape", AttrValue::Shape(Shape::from_dims(&[-1]))),
                    ("precision", AttrValue::Str("f32".into())),
                    ("timeout_ms", AttrValue::Int(10_000)),
                ],
            ),
        ],
        seed: 0,
    };
    let g = Graph::new();
    g.import_graph_def(&def).unwrap();
    let (step, recv) = (g.get("step").unwrap(), g.get("recv").unwrap());
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let err = sess
        .run(&[recv], &[(step, Tensor::scalar(1i64))])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'recv'") && err.contains("[274877906944]") && err.contains("memory budget"),
        "{err}"
    );
    still_right(&mut engine);
}

#[test]
fn a_panicking_kernel_fails_its_step_with_internal_and_the_session_goes_on() {
    let mut engine = Engine::start_env(&[], &[("SLUICE_PANIC_IN_NODE", "boom")]).unwrap();
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let boom = (x * g.scalar(2.0)).named("boom");
    let fine = (x + g.scalar(1.0)).named("fine");
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let feed = || vec![(x, Tensor::from_vec(vec![1.0f32, 2.0]))];
    let err = sess.run(&[boom], &feed()).unwrap_err();
    let (code, text) = status_of(&err);
    assert_eq!(code, Code::Internal, "{text}");
    assert!(
        text.contains("'boom'") && text.contains("injected"),
        "{text}"
    );
    // The same session runs on.
    let out = sess.run(&[fine], &feed()).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
    still_right(&mut engine);
}

#[test]
fn the_worker_service_takes_graphs_up_to_the_engines_message_limit() {
    // A 5 MiB constant: over tonic's default of 4 MiB, within the engine's 256 MiB.
    let big = Graph::new();
    big.constant(Tensor::zeros(DType::F32, &[5 << 18]));
    let request = || proto::CreateSessionRequest {
        graph_def: Some(graph_def_to_proto(&big.to_graph_def(0))),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let register = |addr: String| {
        runtime.block_on(async move {
            let mut worker = WorkerServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            worker.register_graph(request()).await
        })
    };
    let mut engine = Engine::start(&[]).unwrap();
    let reply = register(engine.addr.clone()).unwrap().into_inner();
    assert!(reply.session_handle.starts_with('s'), "{reply:?}");
    still_right(&mut engine);
    // And the limit given applies to it too.
    let mut small = Engine::start(&["--max-message-mib", "2"]).unwrap();
    let refused = register(small.addr.clone()).unwrap_err();
    assert!(
        matches!(refused.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{refused:?}"
    );
    still_right(&mut small);
}

/// Copies the embedded digits' four IDX files into `dir`; returns their own folder.
fn copy_digits(dir: &std::path::Path) -> std::path::PathBuf {
    let embedded =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/data/mnist-digits-10k");
    for file in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(embedded.join(file), dir.join(file)).unwrap();
    }
    embedded
}

/// A session on `engine` of a softmax regression, and a fit of `steps` steps for it.
fn softmax_fit(engine: &Engine, steps: usize) -> (RemoteSession, FitConfig) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let loss = -reduce_sum(y_ * log(softmax(matmul(x, w))));
    let train = GradientDescent::new(0.01).minimize(loss).unwrap();
    let config = FitConfig {
        steps,
        report_every: 10,
        ..FitConfig::new(x, y_, loss, train)
    };
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    sess.init_variables().unwrap();
    (sess, config)
}

#[test]
fn a_fit_reads_data_sets_only_under_the_engines_data_roots() {
    let dir = std::env::temp_dir().join(format!("sluice-data-roots-{}", std::process::id()));
    let digits = dir.join("root/digits");
    std::fs::create_dir_all(&digits).unwrap();
    let embedded = copy_digits(&digits);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&embedded, dir.join("root/linked")).unwrap();
    let root = dir.join("root");
    let mut engine = Engine::start(&["--data-root", root.to_str().unwrap()]).unwrap();

    let (mut sess, config) = softmax_fit(&engine, 20);
    let mut fit = |name: &str| {
        sess.fit(name, &config, &mut |_| {})
            .map(|last| last.is_some())
    };

    // Under the root: read.
    let inside = format!("idx:{}", digits.display());
    assert!(fit(&inside).unwrap());
    assert!(fit("mnist-digits").unwrap());
    // Anywhere else, existing or not, by a link or by `..`: refused in the same words.
    let mut refused = |name: &str| status_of(&fit(name).unwrap_err());
    let (code, passwd) = refused("arrow:/etc/passwd?label=y");
    assert_eq!(code, Code::PermissionDenied, "{passwd}");
    assert!(
        passwd.contains("not under the engine's data roots"),
        "{passwd}"
    );
    let (_, missing) = refused("arrow:/etc/no-such-file?label=y");
    assert_eq!(
        passwd.replace("/etc/passwd", "X"),
        missing.replace("/etc/no-such-file", "X")
    );
    let outside = format!("idx:{}", embedded.display());
    assert_eq!(refused(&outside).0, Code::PermissionDenied);
    let up = format!("idx:{}/../../..", digits.display());
    assert_eq!(refused(&up).0, Code::PermissionDenied);
    #[cfg(unix)]
    {
        let linked = format!("idx:{}", root.join("linked").display());
        assert_eq!(refused(&linked).0, Code::PermissionDenied);
    }
    still_right(&mut engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_data_file_that_inflates_past_the_budget_is_refused_by_name() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("sluice-gzip-bomb-{}", std::process::id()));
    let bomb = dir.join("bomb");
    std::fs::create_dir_all(&bomb).unwrap();
    copy_digits(&bomb);
    // In place of the training images, 100,000 images of 28x28 zeros: 78 MB inflated from
    // well under a megabyte.
    let mut images = vec![0u8, 0, 8, 3];
    for d in [100_000u32, 28, 28] {
        images.extend(d.to_be_bytes());
    }
    images.resize(images.len() + 100_000 * 784, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&images).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1 << 20);
    std::fs::write(bomb.join("train-images-idx3-ubyte.gz"), gz).unwrap();

    let mut engine = Engine::start(&[
        "--max-memory",
        "64MiB",
        "--data-root",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    let (mut sess, config) = softmax_fit(&engine, 10);
    let err = sess
        .fit(&format!("idx:{}", bomb.display()), &config, &mut |_| {})
        .unwrap_err();
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(
        message.contains("train-images-idx3-ubyte.gz") && message.contains("--max-memory"),
        "{message}"
    );
    // The session and the engine go on.
    assert!(sess
        .fit("mnist-digits", &config, &mut |_| {})
        .unwrap()
        .is_some());
    still_right(&mut engine);
    let _ = std::fs::remove_dir_all(&dir);
}
