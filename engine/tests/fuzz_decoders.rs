#![cfg(feature = "engine")]

//! Property-based fuzzing of everything that decodes input from outside: graph definitions
//! (protobuf bytes, and structured ones with any op and any attributes, then run; the
//! registry's own tests mutate a graph of every op), tensor
//! chunks, peers' tensor headers and payloads, IDX files, checkpoints and Arrow/Parquet files.
//! Each case must end in a value or a clear error: never a panic, never a kernel failure the
//! engine did not foresee. CI runs the default number of cases (a few minutes in all); to run
//! longer: `PROPTEST_CASES=100000 cargo test --release -p sluice --test fuzz_decoders`.

use proptest::prelude::*;
use prost::Message;
use sluice::data::{load_table, parse_idx, Columns, TableFormat};
use sluice::distributed::precision::Decoder;
use sluice::graph::{Shape, TypeShape};
use sluice::ops::registry::OP_TYPES;
use sluice::service::chunks::Assembler;
use sluice::service::proto::{self, WirePrecision};
use sluice::service::wire::graph_def_from_proto;
use sluice::tensor::MemoryBudget;
use sluice::{AttrValue, DType, Graph, GraphDef, NodeDef, Session, SessionError, Tensor};
use std::path::Path;

/// `default` cases, or as many as PROPTEST_CASES says; no files of failures written beside
/// the sources.
fn config_with(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn config() -> ProptestConfig {
    config_with(256)
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::F32),
        Just(DType::F64),
        Just(DType::I32),
        Just(DType::I64),
        Just(DType::U8),
        Just(DType::Bool),
    ]
}

/// Dimensions as a hostile sender picks them: mostly small, sometimes huge or negative.
fn dim() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..5,
        1 => Just(-1i64),
        1 => any::<i64>(),
        1 => Just(1i64 << 40),
    ]
}

fn small_tensor() -> impl Strategy<Value = Tensor> {
    prop_oneof![
        proptest::collection::vec(-4.0f32..4.0, 0..7).prop_map(Tensor::from_vec),
        proptest::collection::vec(-3i32..6, 0..7).prop_map(Tensor::from_vec),
        proptest::collection::vec(-3i64..6, 0..7).prop_map(Tensor::from_vec),
        (-2.0f32..2.0).prop_map(Tensor::scalar),
        proptest::collection::vec(-4.0f32..4.0, 6)
            .prop_map(|v| Tensor::new(&[2, 3], v).expect("6 values")),
        proptest::collection::vec(-4.0f32..4.0, 16)
            .prop_map(|v| Tensor::new(&[1, 4, 4, 1], v).expect("16 values")),
    ]
}

fn attr_value() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        any::<bool>().prop_map(AttrValue::Bool),
        dim().prop_map(AttrValue::Int),
        any::<f64>().prop_map(AttrValue::Float),
        proptest::collection::vec(dim(), 0..5).prop_map(AttrValue::Ints),
        proptest::collection::vec(any::<f64>(), 0..4).prop_map(AttrValue::Floats),
        "[a-z_]{0,8}".prop_map(AttrValue::Str),
        proptest::collection::vec("[a-z]{1,4}", 0..3).prop_map(AttrValue::Strs),
        dtype().prop_map(AttrValue::DType),
        proptest::collection::vec(dim(), 0..5).prop_map(|d| AttrValue::Shape(Shape::from_dims(&d))),
        small_tensor().prop_map(AttrValue::Tensor),
    ]
}

const ATTR_KEYS: &[&str] = &[
    "axes",
    "axis",
    "begin",
    "checked",
    "depth",
    "dtype",
    "keep_dims",
    "message",
    "nesterov",
    "padding",
    "perm",
    "shape",
    "size",
    "slots",
    "to",
    "transpose_a",
    "transpose_b",
    "value",
    "var",
    "ksize",
    "strides",
    "rate",
    "initializer",
    "trainable",
    "seed",
    "kind",
];

/// Ops that reach other processes (a `_Recv` waits for a peer) are left out: the rest can
/// run here.
fn local_op() -> impl Strategy<Value = &'static str> {
    let ops: Vec<&'static str> = OP_TYPES
        .iter()
        .copied()
        .filter(|op| !op.starts_with('_'))
        .collect();
    proptest::sample::select(ops)
}

fn node(index: usize) -> impl Strategy<Value = NodeDef> {
    let inputs = proptest::collection::vec((0..index.max(1), 0usize..3, any::<bool>()), 0..4);
    let attrs = proptest::collection::btree_map(
        proptest::sample::select(ATTR_KEYS).prop_map(str::to_string),
        attr_value(),
        0..5,
    );
    (local_op(), inputs, attrs).prop_map(move |(op, inputs, attrs)| NodeDef {
        name: format!("n{index}"),
        op: op.to_string(),
        inputs: (inputs.into_iter())
            .filter(|_| index > 0)
            .map(|(i, output, control)| match (control, output) {
                (true, _) => format!("^n{i}"),
                (false, 0) => format!("n{i}"),
                (false, k) => format!("n{i}:{k}"),
            })
            .collect(),
        device: String::new(),
        attrs,
    })
}

/// Graphs of up to 8 nodes, each any op with any attributes, inputs from earlier nodes;
/// constants and placeholders are common, so that most ops have inputs to work on.
fn graph_def() -> impl Strategy<Value = GraphDef> {
    (1usize..9)
        .prop_flat_map(|n| {
            (0..n)
                .map(|i| {
                    prop_oneof![
                        2 => small_tensor().prop_map(move |t| NodeDef {
                            name: format!("n{i}"),
                            op: "Const".into(),
                            inputs: vec![],
                            device: String::new(),
                            attrs: [
                                ("dtype".to_string(), AttrValue::DType(t.dtype())),
                                ("value".to_string(), AttrValue::Tensor(t)),
                            ]
                            .into(),
                        }),
                        3 => node(i),
                    ]
                })
                .collect::<Vec<_>>()
        })
        .prop_map(|nodes| GraphDef { nodes, seed: 1 })
}

/// A session error the engine foresaw: anything but a caught panic.
fn foreseen(result: Result<Vec<Tensor>, SessionError>) -> Result<(), TestCaseError> {
    match result {
        Err(SessionError::Internal { node, op, message }) => Err(TestCaseError::fail(format!(
            "node {node} ({op}) panicked: {message}"
        ))),
        _ => Ok(()),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn graph_protobufs_of_any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(message) = proto::GraphDef::decode(bytes.as_slice()) {
            if let Ok(def) = graph_def_from_proto(&message, "graph_def") {
                let _ = Graph::new().import_graph_def(&def);
            }
        }
    }

    #[test]
    fn graphs_of_any_ops_and_attributes_import_and_run_or_are_refused(def in graph_def()) {
        let graph = Graph::new();
        if graph.import_graph_def(&def).is_err() {
            return Ok(());
        }
        let mut session = Session::new(&graph);
        session.set_memory_budget(MemoryBudget::new(1 << 20));
        if session.init_variables().is_err() {
            return Ok(());
        }
        for name in def.nodes.iter().map(|n| &n.name) {
            let Ok(output) = graph.get(name) else { continue };
            foreseen(session.run(&[output], &[]))?;
        }
    }

    #[test]
    fn every_op_infers_shapes_for_any_inputs_without_panicking(
        def in node(3),
        inputs in proptest::collection::vec((dtype(), proptest::collection::vec(dim(), 0..5)), 0..4),
    ) {
        let graph = Graph::new();
        let def = NodeDef { inputs: vec![], ..def };
        let Ok(op) = sluice::ops::registry::op_from_def(&def, &|_| Err("no variables".into())) else {
            return Ok(());
        };
        let inputs: Vec<TypeShape> = (inputs.into_iter())
            .map(|(dtype, dims)| TypeShape::new(dtype, Shape::from_dims(&dims)))
            .collect();
        let _ = op.infer(&inputs);
        drop(graph);
    }

    #[test]
    fn tensor_chunks_of_any_shape_and_bytes_assemble_or_are_refused(
        parts in proptest::collection::vec(
            prop_oneof![
                (0i32..12, proptest::collection::vec(dim(), 0..4), proptest::collection::vec(any::<u8>(), 0..64))
                    .prop_map(|(dtype, shape, data)| proto::run_step_chunk::Part::Tensor(proto::TensorBegin {
                        name: "t".into(),
                        dtype,
                        shape,
                        data: data.into(),
                    })),
                proptest::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|d| proto::run_step_chunk::Part::Data(d.into())),
            ],
            0..6,
        ),
    ) {
        let mut assembler = Assembler::default();
        for part in parts {
            let step = match part {
                proto::run_step_chunk::Part::Tensor(begin) => assembler.begin(begin),
                proto::run_step_chunk::Part::Data(data) => assembler.data(&data),
                _ => Ok(None),
            };
            if step.is_err() {
                break;
            }
        }
        let _ = assembler.finish();
    }

    #[test]
    fn peers_tensor_headers_and_payloads_decode_or_are_refused(
        dtype in dtype(),
        dims in proptest::collection::vec(0usize..1 << 20, 0..4),
        precision in 0i32..4,
        scale in any::<f32>(),
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
    ) {
        let precision = WirePrecision::try_from(precision).unwrap_or(WirePrecision::WireF32);
        let budget = MemoryBudget::new(1 << 20);
        let Ok(mut decoder) = Decoder::new(dtype, &dims, precision, scale, budget) else {
            return Ok(());
        };
        for piece in &pieces {
            if decoder.push(piece).is_err() {
                return Ok(());
            }
        }
        let _ = decoder.finish();
    }

    #[test]
    fn idx_files_of_any_bytes_parse_or_are_refused(
        header in proptest::collection::vec(any::<u8>(), 0..24),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut raw = header;
        raw.extend(body);
        let _ = parse_idx(&raw, Path::new("fuzz.idx"));
        // As if gzip: the magic number, then anything.
        let mut gz = vec![0x1f, 0x8b];
        gz.extend(&raw);
        let _ = parse_idx(&gz, Path::new("fuzz.idx.gz"));
    }
}

/// A scratch file per test and case.
fn scratch(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("a scratch file");
    path
}

proptest! {
    #![proptest_config(config_with(64))]

    #[test]
    fn checkpoints_of_any_bytes_restore_or_are_refused(
        header_len in prop_oneof![0u64..200, any::<u64>()],
        header in "[ -~]{0,120}",
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = header_len.to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend(tail);
        let path = scratch(&format!("ckpt-{}.safetensors", std::process::id()), &bytes);
        let graph = Graph::new();
        let _w = graph.variable("W", &[2, 2], sluice::Initializer::Zeros);
        let mut session = Session::new(&graph);
        session.init_variables().expect("a 2x2 variable");
        let _ = sluice::checkpoint::restore(&mut session, &graph, &path);
    }

    #[test]
    fn table_files_of_any_bytes_load_or_are_refused(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        arrow_magic in any::<bool>(),
    ) {
        let mut content = if arrow_magic { b"ARROW1\0\0".to_vec() } else { b"PAR1".to_vec() };
        content.extend(bytes);
        let columns = Columns { label: "y", features: None };
        let arrow = scratch("fuzz.arrow", &content);
        let _ = load_table(&arrow, TableFormat::ArrowIpc, columns);
        let parquet = scratch("fuzz.parquet", &content);
        let _ = load_table(&parquet, TableFormat::Parquet, Columns { label: "y", features: None });
    }
}
