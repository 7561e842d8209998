//! What a misbehaving or hostile client sends a real `sluice-engine serve`: each gets a clear
//! error status, and the engine stays up.

use bytes::{Buf, BufMut};
use sluice::prelude::*;
use sluice::service::proto::master_service_client::MasterServiceClient;
use sluice::service::proto::run_step_chunk::Part;
use sluice::service::proto::{self, RunStepChunk, TensorBegin};
use sluice::service::wire::graph_def_to_proto;
use sluice_tests::Engine;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Sends and receives raw bytes: what lets a test send a message that is not protobuf.
#[derive(Default)]
struct RawCodec;
struct Raw;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = buf.remaining();
        Ok(Some(buf.copy_to_bytes(n).to_vec()))
    }
}

async fn channel(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn raw_unary(addr: &str, method: &'static str, body: Vec<u8>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel(addr).await);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        PathAndQuery::from_static(method),
        RawCodec,
    )
    .await
    .unwrap_err()
}

async fn raw_stream(addr: &str, method: &'static str, body: Vec<Vec<u8>>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel(addr).await);
    grpc.ready().await.unwrap();
    let reply = grpc
        .streaming(
            tonic::Request::new(tokio_stream::iter(body)),
            PathAndQuery::from_static(method),
            RawCodec,
        )
        .await;
    match reply {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Err(status) => return status,
                    Ok(None) => panic!("{method} succeeded on garbage"),
                    Ok(Some(_)) => {}
                }
            }
        }
    }
}

/// Runs a step made of hand-written chunks; the status it ends with.
async fn run_chunks(
    client: &mut MasterServiceClient<Channel>,
    chunks: Vec<RunStepChunk>,
) -> Status {
    let reply = client.run_step(tokio_stream::iter(chunks)).await;
    match reply {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Err(status) => return status,
                    Ok(None) => panic!("the step succeeded"),
                    Ok(Some(_)) => {}
                }
            }
        }
    }
}

fn header(handle: &str, fetch: &[&str], feeds: u32) -> RunStepChunk {
    RunStepChunk {
        part: Some(Part::Header(proto::RunStepHeader {
            session_handle: handle.to_string(),
            fetch: fetch.iter().map(|s| s.to_string()).collect(),
            target: vec![],
            feed_count: feeds,
            options: None,
        })),
    }
}

fn begin(name: &str, shape: Vec<i64>, data: Vec<u8>) -> RunStepChunk {
    RunStepChunk {
        part: Some(Part::Tensor(TensorBegin {
            name: name.to_string(),
            dtype: proto::DataType::DtFloat as i32,
            shape,
            data: data.into(),
        })),
    }
}

fn data(bytes: Vec<u8>) -> RunStepChunk {
    RunStepChunk {
        part: Some(Part::Data(bytes.into())),
    }
}

fn node(name: &str, op: &str, inputs: &[&str]) -> proto::NodeDef {
    proto::NodeDef {
        name: name.to_string(),
        op: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn expect(status: &Status, code: Code, words: &[&str]) {
    assert_eq!(status.code(), code, "{status:?}");
    for w in words {
        assert!(status.message().contains(w), "{w:?} not in {status:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_requests_get_clear_statuses_and_the_engine_stays_up() {
    let mut engine = Engine::start(&["--max-message-mib", "2"]).unwrap();
    let addr = engine.addr.clone();
    let mut client = MasterServiceClient::new(channel(&addr).await);

    // A graph with x: f32[2], i: i32[2] and y = identity(x).
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    g.placeholder("i", DType::I32, &[2]);
    let _ = identity(x).named("y");
    let base = graph_def_to_proto(&g.to_graph_def(0));
    let created = client
        .create_session(proto::CreateSessionRequest {
            graph_def: Some(base.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let handle = created.session_handle.clone();
    assert_eq!(created.graph_version, 3);
    let extend = |nodes: Vec<proto::NodeDef>, version: u64| proto::ExtendSessionRequest {
        session_handle: handle.clone(),
        graph_def: Some(proto::GraphDef {
            node: nodes,
            seed: 0,
        }),
        current_graph_version: version,
    };

    // Bytes that are not protobuf, unary and streamed.
    let s = raw_unary(
        &addr,
        "/sluice.v1.MasterService/CreateSession",
        vec![0x0f, 0x00],
    )
    .await;
    expect(
        &s,
        Code::InvalidArgument,
        &["malformed protobuf", "CreateSessionRequest"],
    );
    let s = raw_stream(
        &addr,
        "/sluice.v1.MasterService/RunStep",
        vec![vec![0xff; 3]],
    )
    .await;
    expect(
        &s,
        Code::InvalidArgument,
        &["malformed protobuf", "RunStepChunk"],
    );

    // Graph changes the engine refuses, all or nothing.
    let unknown = extend(vec![node("f", "Frobnicate", &["x"])], 3);
    let s = client.extend_session(unknown).await.unwrap_err();
    expect(&s, Code::InvalidArgument, &["unknown op type 'Frobnicate'"]);
    let cycle = extend(
        vec![node("a", "Identity", &["b"]), node("b", "Identity", &["a"])],
        3,
    );
    let s = client.extend_session(cycle).await.unwrap_err();
    expect(&s, Code::InvalidArgument, &["cycle"]);
    let dangling = extend(vec![node("d", "Identity", &["nowhere:1"])], 3);
    let s = client.extend_session(dangling).await.unwrap_err();
    expect(&s, Code::InvalidArgument, &["dangling input 'nowhere:1'"]);
    let mixed = extend(vec![node("sum", "Add", &["x", "i"])], 3);
    let s = client.extend_session(mixed).await.unwrap_err();
    expect(&s, Code::InvalidArgument, &["'sum'", "i32"]);
    let redefined = extend(vec![node("x", "Identity", &["y"])], 3);
    let s = client.extend_session(redefined).await.unwrap_err();
    expect(&s, Code::InvalidArgument, &["'x' is redefined"]);
    let stale = extend(vec![node("z", "Identity", &["x"])], 1);
    let s = client.extend_session(stale).await.unwrap_err();
    expect(&s, Code::FailedPrecondition, &["version 1", "version 3"]);
    let s = client
        .create_session(proto::CreateSessionRequest {
            graph_def: Some(proto::GraphDef {
                node: vec![node("c", "Identity", &["c"])],
                seed: 0,
            }),
        })
        .await
        .unwrap_err();
    expect(&s, Code::InvalidArgument, &["cycle"]);

    // Feed streams that disagree with what they declare.
    let short = vec![header(&handle, &["y"], 1), begin("x", vec![2], vec![0; 4])];
    let s = run_chunks(&mut client, short).await;
    expect(&s, Code::InvalidArgument, &["ended after 4 of the 8 bytes"]);
    let long = vec![
        header(&handle, &["y"], 1),
        begin("x", vec![2], vec![0; 4]),
        data(vec![0; 8]),
    ];
    let s = run_chunks(&mut client, long).await;
    expect(&s, Code::InvalidArgument, &["more than the 8 bytes"]);
    let huge = vec![
        header(&handle, &["y"], 1),
        begin("x", vec![1 << 31, 2], vec![]),
    ];
    let s = run_chunks(&mut client, huge).await;
    expect(&s, Code::ResourceExhausted, &["4 GiB"]);
    let fat = vec![
        header(&handle, &["y"], 1),
        begin("x", vec![1 << 20], vec![]),
        data(vec![0; (1 << 20) + 4]),
    ];
    let s = run_chunks(&mut client, fat).await;
    expect(&s, Code::InvalidArgument, &["1 MiB"]);
    let headless = vec![begin("x", vec![2], vec![0; 8])];
    let s = run_chunks(&mut client, headless).await;
    expect(&s, Code::InvalidArgument, &["must be the header"]);
    let wrong_shape = vec![header(&handle, &["y"], 1), begin("x", vec![3], vec![0; 12])];
    let s = run_chunks(&mut client, wrong_shape).await;
    expect(&s, Code::InvalidArgument, &["shape [3]"]);
    let no_such_fetch = vec![header(&handle, &["ghost"], 0)];
    let s = run_chunks(&mut client, no_such_fetch).await;
    expect(&s, Code::InvalidArgument, &["'ghost'"]);
    let s = run_chunks(&mut client, vec![header("nope", &["y"], 0)]).await;
    expect(&s, Code::NotFound, &["'nope'"]);

    // A graph message over the engine's limit (2 MiB here): a 3 MiB constant.
    let big = Graph::new();
    big.constant(Tensor::zeros(DType::F32, &[3 << 18]));
    let request = proto::CreateSessionRequest {
        graph_def: Some(graph_def_to_proto(&big.to_graph_def(0))),
    };
    let s = client.create_session(request).await.unwrap_err();
    assert!(
        matches!(s.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{s:?}"
    );
    assert!(s.message().contains("too large"), "{s:?}");

    // Still up, and still right.
    assert!(engine.is_running());
    let fine = vec![
        header(&handle, &["y"], 1),
        begin(
            "x",
            vec![2],
            [1.5f32, -2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
    ];
    let mut answer = client
        .run_step(tokio_stream::iter(fine))
        .await
        .unwrap()
        .into_inner();
    match answer.message().await.unwrap().and_then(|c| c.part) {
        Some(Part::Tensor(t)) => {
            assert_eq!(t.shape, vec![2]);
            assert_eq!(
                t.data,
                [1.5f32, -2.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>()
            );
        }
        other => panic!("expected the fetched tensor, got {other:?}"),
    }
    let devices = client
        .list_devices(proto::ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(devices.device.len(), 1);
}

#[test]
fn the_engine_refuses_non_loopback_addresses_without_a_token() {
    let err = Engine::start_with(&["--listen", "0.0.0.0:0"])
        .err()
        .unwrap();
    assert!(err.contains("token"), "{err}");
}

#[test]
fn a_one_hot_whose_size_overflows_is_an_error_not_a_crash() {
    // A one_hot of depth 2^62 + 1 over four indices claims 4 x 4.6e18 elements: the count
    // overflows, and once wrapped it used to pass for 4, so a product of it with itself read
    // far outside its 16 bytes (SIGSEGV). Now the step fails, naming the node.
    let mut engine = Engine::start(&[]).unwrap();
    let g = Graph::new();
    let i = g.placeholder("i", DType::I32, &[4]);
    let hot = one_hot(i, (1usize << 62) + 1).named("hot");
    let product = matmul_t(hot, hot, false, true).named("product");
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let feed = Tensor::from_vec(vec![-1i32; 4]);
    let err = sess
        .run(&[product], &[(i, feed)])
        .expect_err("no tensor holds 2^64 elements");
    let text = err.to_string();
    assert!(
        text.contains("'hot'") && text.contains("more elements than a tensor can hold"),
        "{text}"
    );
    // Still up, and still right.
    assert!(engine.is_running());
    let small = one_hot(i, 3).named("small");
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let out = sess
        .run(&[small], &[(i, Tensor::from_vec(vec![0i32, 2, -1, 1]))])
        .unwrap();
    assert_eq!(out[0].shape(), &[4, 3]);
    assert_eq!(out[0].to_vec::<f32>().unwrap()[..3], [1.0, 0.0, 0.0]);
}
