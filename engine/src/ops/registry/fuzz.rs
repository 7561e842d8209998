//! Fuzzing of graph import, inference and execution, structure-aware: a graph of every op
//! (`tests::every_op_graph`) with its attributes changed to other values of their kind (or
//! of any kind) and its inputs rewired, imported and run. Each case ends in values or a clear
//! error: never a panic, never a kernel failure the engine did not foresee (a caught panic
//! is `SessionError::Internal`). More cases: `PROPTEST_CASES=10000 cargo test --release -p
//! sluice --lib fuzz`.

use super::tests::every_op_graph;
use crate::error::SessionError;
use crate::graph::{AttrValue, Graph, GraphDef, Shape};
use crate::session::Session;
use crate::tensor::{DType, MemoryBudget, Tensor};
use proptest::prelude::*;

/// One change to a node: replacements of every kind, of which the one the attribute has is
/// taken (or `any`, when `same_kind` is false).
#[derive(Debug, Clone)]
struct Mutation {
    node: usize,
    attr: usize,
    same_kind: bool,
    int: i64,
    ints: Vec<i64>,
    float: f64,
    boolean: bool,
    dtype: DType,
    tensor: Tensor,
    any: AttrValue,
    /// Rewires input `.0 % inputs` to node `.1 % nodes` output `.2`, when set.
    rewire: Option<(usize, usize, usize)>,
}

fn dim() -> impl Strategy<Value = i64> {
    prop_oneof![8 => -1i64..7, 1 => any::<i64>(), 1 => Just(1i64 << 40)]
}

fn dtype() -> impl Strategy<Value = DType> {
    proptest::sample::select(DType::ALL.to_vec())
}

fn tensor() -> impl Strategy<Value = Tensor> {
    prop_oneof![
        proptest::collection::vec(-3.0f32..3.0, 0..7).prop_map(Tensor::from_vec),
        proptest::collection::vec(-2i64..12, 0..4).prop_map(Tensor::from_vec),
        proptest::collection::vec(-2.0f64..2.0, 6)
            .prop_map(|v| Tensor::new(&[2, 3], v).unwrap_or_else(|_| Tensor::scalar(0.0f64))),
    ]
}

fn any_attr() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        dim().prop_map(AttrValue::Int),
        proptest::collection::vec(dim(), 0..5).prop_map(AttrValue::Ints),
        proptest::collection::vec(dim(), 0..5).prop_map(|d| AttrValue::Shape(Shape::from_dims(&d))),
        any::<bool>().prop_map(AttrValue::Bool),
        dtype().prop_map(AttrValue::DType),
        "[A-Za-z_]{0,6}".prop_map(AttrValue::Str),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        (any::<usize>(), any::<usize>(), prop::bool::weighted(0.8)),
        (
            dim(),
            proptest::collection::vec(dim(), 0..5),
            any::<f64>(),
            any::<bool>(),
        ),
        (dtype(), tensor(), any_attr()),
        proptest::option::weighted(0.3, (any::<usize>(), any::<usize>(), 0usize..3)),
    )
        .prop_map(
            |(
                (node, attr, same_kind),
                (int, ints, float, boolean),
                (dtype, tensor, any),
                rewire,
            )| {
                Mutation {
                    node,
                    attr,
                    same_kind,
                    int,
                    ints,
                    float,
                    boolean,
                    dtype,
                    tensor,
                    any,
                    rewire,
                }
            },
        )
}

fn replacement(old: &AttrValue, m: &Mutation) -> AttrValue {
    if !m.same_kind {
        return m.any.clone();
    }
    match old {
        AttrValue::Int(_) => AttrValue::Int(m.int),
        AttrValue::Ints(_) => AttrValue::Ints(m.ints.clone()),
        AttrValue::Float(_) => AttrValue::Float(m.float),
        AttrValue::Floats(_) => AttrValue::Floats(vec![m.float]),
        AttrValue::Bool(_) => AttrValue::Bool(m.boolean),
        AttrValue::DType(_) => AttrValue::DType(m.dtype),
        AttrValue::Shape(_) => AttrValue::Shape(Shape::from_dims(&m.ints)),
        AttrValue::Tensor(_) => AttrValue::Tensor(m.tensor.clone()),
        other => other.clone(),
    }
}

/// The graph of every op, run here: no transfers, no device constraints.
fn local_graph() -> GraphDef {
    let mut def = every_op_graph().to_graph_def(0);
    def.nodes.retain(|n| !n.op.starts_with('_'));
    for node in &mut def.nodes {
        node.device.clear();
    }
    def
}

fn mutated(mut def: GraphDef, mutations: &[Mutation]) -> GraphDef {
    let count = def.nodes.len();
    for m in mutations {
        let index = m.node % count;
        let names: Vec<String> = def.nodes[..index].iter().map(|n| n.name.clone()).collect();
        let node = &mut def.nodes[index];
        let keys: Vec<String> = node.attrs.keys().cloned().collect();
        if !keys.is_empty() {
            let key = &keys[m.attr % keys.len()];
            if let Some(old) = node.attrs.get(key) {
                let new = replacement(old, m);
                node.attrs.insert(key.clone(), new);
            }
        }
        if let (Some((slot, from, output)), false) = (m.rewire, names.is_empty()) {
            if !node.inputs.is_empty() {
                let slot = slot % node.inputs.len();
                let from = &names[from % names.len()];
                node.inputs[slot] = match output {
                    0 => from.clone(),
                    k => format!("{from}:{k}"),
                };
            }
        }
    }
    def
}

/// Values for the graph's placeholders, by name.
fn feeds(graph: &Graph) -> Vec<(crate::graph::Output, Tensor)> {
    let fixed = [
        ("images", Tensor::zeros(DType::F32, &[2, 6, 6, 2])),
        ("labels", Tensor::from_vec(vec![1i64, 3])),
        ("x", Tensor::full(&[2, 3], 0.25f64)),
    ];
    fixed
        .into_iter()
        .filter_map(|(name, value)| Some((graph.get(name).ok()?, value)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_graph_of_every_op_with_changed_attributes_runs_or_is_refused(
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let def = mutated(local_graph(), &mutations);
        let graph = Graph::new();
        if graph.import_graph_def(&def).is_err() {
            return Ok(());
        }
        let mut session = Session::new(&graph);
        session.set_memory_budget(MemoryBudget::new(1 << 22));
        if session.init_variables().is_err() {
            return Ok(());
        }
        let feeds = feeds(&graph);
        for node in &def.nodes {
            let Ok(output) = graph.get(&node.name) else { continue };
            if graph.node(output.node()).is_none_or(|n| n.outputs.is_empty()) {
                continue;
            }
            if let Err(SessionError::Internal { node, op, message }) = session.run(&[output], &feeds) {
                prop_assert!(false, "node {node} ({op}) panicked: {message}");
            }
        }
    }
}

#[test]
fn unchanged_the_graph_of_every_op_imports_and_runs() {
    // The baseline the fuzzing departs from: without changes, everything runs.
    let def = local_graph();
    let graph = Graph::new();
    graph
        .import_graph_def(&def)
        .expect("the graph of every op imports");
    let mut session = Session::new(&graph);
    session.init_variables().expect("its variables initialise");
    let loss = graph.get("loss").expect("a loss");
    let value = session.run(&[loss], &feeds(&graph)).expect("the loss runs");
    assert!(value[0].scalar_f64().is_some_and(f64::is_finite));
}
