//! Every op type of the crate survives export and import unchanged.

use super::OP_TYPES;
use crate::autodiff::{gradient_values, gradients};
use crate::graph::{Graph, Initializer, Output};
use crate::ops::pool::{MaxPoolGradGrad, PoolWindow};
use crate::ops::*;
use crate::optimizers::{Adagrad, Adam, Ftrl, GradientDescent, Momentum, Optimizer};
use crate::tensor::{DType, Tensor};
use std::collections::BTreeSet;
use std::path::Path;

/// A small conv net trained by three optimizers, plus one node of each op type that its
/// gradients and updates do not already hold.
pub(crate) fn every_op_graph() -> Graph {
    let g = Graph::new();
    g.set_seed(11);
    let images = g.placeholder("images", DType::F32, &[-1, 6, 6, 2]);
    let labels = g.placeholder("labels", DType::I64, &[-1]);
    let filter = g.variable("conv/filter", &[3, 3, 2, 4], Initializer::GlorotUniform);
    let conv = relu(conv2d(images, filter, [1, 1], Padding::Same));
    let pooled = max_pool(conv, [2, 2], [2, 2], Padding::Valid);
    let flat = reshape(pooled, &[-1, 36]);
    let part = slice(flat, &[0, 0], &[-1, 30]);
    let joined = concat(&[part, flat], 1);
    let w = g.variable("dense/w", &[66, 5], Initializer::truncated_normal(0.1));
    let b = g.variable("dense/b", &[5], Initializer::Fill(0.5));
    let table = g.variable(
        "table",
        &[10, 5],
        Initializer::RandomUniform {
            low: -0.1,
            high: 0.1,
        },
    );
    let ids = g.constant(Tensor::from_vec(vec![1i64, 3]));
    let picked = reduce_sum_axes(gather(table, ids), &[0], false);
    let logits = {
        let _device = g.device("/job:worker/task:1/device:CPU:0");
        check_numerics(matmul(joined, w) + b + picked, "logits")
    };
    let sparse = sparse_softmax_cross_entropy_with_logits(logits, labels);
    let targets = one_hot(labels, 5);
    let dense = softmax_cross_entropy_with_logits(logits, targets);
    let loss = (reduce_mean(sparse) + reduce_max(dense)).named("loss");

    // Three optimizers, each on its own variables.
    let vars = [filter, w, b, table];
    let grads = gradients(&[loss], &vars).expect("gradients");
    let pair = |i: usize| (grads[i].expect("a gradient"), vars[i]);
    let mut momentum = Momentum::new(0.1, 0.9);
    momentum.nesterov = true;
    GradientDescent::new(0.1)
        .apply_gradients(&[pair(0)])
        .expect("gd");
    momentum.apply_gradients(&[pair(1)]).expect("momentum");
    Adam::new(0.01)
        .apply_gradients(&[pair(2), pair(3)])
        .expect("adam");

    // Sparse models: lookups whose gradients are rows, applied by sparse and dense updates of
    // every rule.
    let ids = g.constant(Tensor::from_vec(vec![2i64, 0, 2]));
    let segments = g.constant(Tensor::from_vec(vec![0i32, 0, 1]));
    let hashed = hash_bucket(ids, 7);
    let rules: [&dyn Optimizer; 5] = [
        &GradientDescent::new(0.1),
        &Momentum::new(0.1, 0.9),
        &Adam::new(0.01),
        &Adagrad::new(0.1),
        &Ftrl::new(0.1),
    ];
    for (i, optimizer) in rules.iter().enumerate() {
        let emb = g.variable(&format!("emb_{i}"), &[7, 2], Initializer::Fill(0.25));
        let looked = embedding_lookup_sparse(
            emb,
            SparseIds {
                segments,
                ids: hashed,
                weights: None,
            },
            Combiner::Mean,
        );
        let dense_table = g.variable(&format!("dense_{i}"), &[7, 2], Initializer::Ones);
        let summed = unsorted_segment_sum(gather(dense_table, ids), segments, Some(3));
        let cost = reduce_sum(segment_sum(looked, segments)) + reduce_sum(summed);
        let vars = [emb, dense_table];
        let grads = gradient_values(&[cost], &vars).expect("sparse gradients");
        let sparse = grads[0].clone().expect("a sparse gradient");
        assert!(sparse.as_sparse().is_some(), "{sparse:?}");
        let dense = Gradient::Dense(grads[1].clone().expect("a gradient").to_dense());
        optimizer
            .apply_gradient_values(&[(sparse, emb), (dense, dense_table)])
            .expect("sparse update");
    }
    for strategy in [PartitionStrategy::Mod, PartitionStrategy::Div] {
        let name = format!("split_{}", strategy.name());
        let split = Partitioner::fixed(3, strategy);
        let table = PartitionedVariable::new(&g, &name, &[8, 2], Initializer::Ones, &split)
            .expect("a partitioned table");
        let loss = reduce_sum(table.lookup(ids));
        let grads = gradient_values(&[loss], &table.shards).expect("shard gradients");
        let pairs: Vec<(Gradient, Output)> = (grads.into_iter().zip(&table.shards))
            .map(|(g, &v)| (g.expect("each shard is read"), v))
            .collect();
        GradientDescent::new(0.1)
            .apply_gradient_values(&pairs)
            .expect("sparse updates of the shards");
    }
    let half = g.constant(Tensor::scalar(0.5f32));
    let rows = IndexedSlices::for_rows(table, ids, gather(table, ids)).expect("rows");
    let kept = rows.weighted(half);
    group(&[kept.indices, kept.values]);
    let (_, positions) = unique(ids);
    build(GatherGrad, &[positions_rows(&g), positions, table]);
    let counts = g.variable_with("counts", DType::I64, &[4], Initializer::Zeros, false);
    let flags = g.variable_with("flags", DType::Bool, &[4], Initializer::Zeros, false);
    let at = g.constant(Tensor::from_vec(vec![3i32, 1]));
    let two = g.constant(Tensor::from_vec(vec![5i64, 6]));
    let yes = g.constant(Tensor::from_vec(vec![true, true]));
    group(&[
        scatter_add(counts, at, two).expect("scatter_add"),
        scatter_sub(counts, at, two).expect("scatter_sub"),
        scatter_update(flags, at, yes).expect("scatter_update"),
    ]);

    // An input reader (its outputs fed or read on a worker).
    let spec = InputSpec {
        source: "mnist-digits".into(),
        features: 784,
        classes: 10,
        batch: 8,
        seed: 3,
    };
    let read = read_batches(&g, &spec, 1, 2);
    group(&[read.inputs, read.one_hot, read.labels]);

    // The rest, one node each.
    let x = g.placeholder("x", DType::F64, &[2, 3]);
    let y = g.constant(Tensor::new(&[2, 3], vec![0.5f64, 1.5, 2.0, 0.1, 0.2, 0.3]).unwrap());
    let mut outs: Vec<Output> = vec![
        x - y,
        x / y,
        pow(y, 2.0),
        maximum(x, y),
        minimum(x, y),
        -x,
        exp(x),
        log(y),
        sqrt(y),
        square(x),
        abs(x),
        sign(x),
        fill_like(x, 2.5),
        zeros_like(x),
        sigmoid(x),
        tanh(x),
        softmax(x),
        log_softmax(x),
        identity(x),
        transpose(x, &[1, 0]),
        expand_dims(x, 0),
        squeeze(expand_dims(x, -1), &[2]),
        matmul_t(x, y, true, false),
        reduce_mean_axes(x, &[1], true),
        reduce_max_axes(x, &[0], false),
        cast(argmax(x, 1), DType::F32),
    ];
    for cmp in [equal, not_equal, greater, greater_equal, less, less_equal] {
        outs.push(select(cmp(x, y), x, y));
    }
    let window = PoolWindow {
        ksize: [2, 2],
        strides: [2, 2],
        padding: Padding::Valid,
    };
    outs.push(build(MaxPoolGradGrad(window), &[conv, conv]));
    let counter = g.variable_with("counter", DType::F64, &[2, 3], Initializer::Ones, false);
    let saved = g.variable_with(
        "saved",
        DType::F64,
        &[2, 3],
        Initializer::Constant(Tensor::full(&[2, 3], 4.0f64)),
        false,
    );
    let updates = [
        assign(saved, x).expect("assign"),
        assign_add(counter, y).expect("assign_add"),
        assign_sub(counter, y).expect("assign_sub"),
    ];
    group(&updates);
    let step = g.placeholder("_step", DType::I64, &[]);
    build(
        crate::ops::transfer::Send {
            key: "/job:worker/task:0;1f;/job:worker/task:1;x".into(),
        },
        &[x, step],
    );
    build(
        crate::ops::transfer::Recv {
            key: "/job:worker/task:1;2e;/job:worker/task:0;y".into(),
            peer: "127.0.0.1:1".into(),
            dtype: DType::F32,
            shape: crate::graph::Shape(vec![None, Some(3)]),
            precision: "bf16".into(),
            timeout_ms: 1000,
        },
        &[step],
    );
    g
}

/// Rows of the gradient of `table` (10 x 5) at three positions.
fn positions_rows(g: &Graph) -> Output {
    g.constant(Tensor::full(&[3, 5], 0.5f32))
}

#[test]
fn every_op_type_round_trips() {
    let g = every_op_graph();
    assert!(g.errors().is_empty(), "{:?}", g.errors());
    let def = g.to_graph_def(0);
    assert_eq!(def.nodes.len(), g.len(), "no node is skipped");
    assert_eq!(def.seed, 11);

    let present: BTreeSet<&str> = def.nodes.iter().map(|n| n.op.as_str()).collect();
    let known: BTreeSet<&str> = OP_TYPES.iter().copied().collect();
    let missing: Vec<_> = known.difference(&present).collect();
    assert!(missing.is_empty(), "the test graph lacks {missing:?}");
    let unknown: Vec<_> = present.difference(&known).collect();
    assert!(unknown.is_empty(), "OP_TYPES lacks {unknown:?}");

    let copy = Graph::new();
    let outputs = copy.import_graph_def(&def).expect("import");
    assert_eq!(outputs.len(), def.nodes.len());
    let again = copy.to_graph_def(0);
    assert_eq!(again.seed, def.seed);
    assert_eq!(again.nodes.len(), def.nodes.len());
    for (a, b) in def.nodes.iter().zip(&again.nodes) {
        assert_eq!(a, b, "node '{}' changed", a.name);
    }
    // The same ids, types, variables and initialisers.
    let (original, imported) = (g.read(), copy.read());
    for (a, b) in original.nodes.iter().zip(&imported.nodes) {
        assert_eq!(a.outputs, b.outputs, "types of '{}'", a.name);
        assert_eq!(a.inputs.len(), b.inputs.len());
        assert_eq!(a.control_inputs, b.control_inputs);
    }
    assert_eq!(original.variables, imported.variables);
    assert_eq!(original.trainable, imported.trainable);
    assert_eq!(original.initializers, imported.initializers);
    assert_eq!(original.global_step, imported.global_step);
    assert!(original.global_step.is_some());
}

#[test]
fn every_op_has_the_family_of_its_file() {
    use crate::ops::OpFamily;
    let g = every_op_graph();
    let data = g.read();
    let family = |op: &str| {
        let node = data.nodes.iter().find(|n| n.op.type_name() == op);
        node.map(|n| n.op.family())
    };
    for node in &data.nodes {
        assert_ne!(
            node.op.family(),
            OpFamily::Other,
            "'{}' ({})",
            node.name,
            node.op_name()
        );
    }
    assert_eq!(family("MatMul"), Some(OpFamily::Linalg));
    assert_eq!(family("Conv2D"), Some(OpFamily::Conv));
    assert_eq!(family("_Recv"), Some(OpFamily::Transfer));
    assert_eq!(family("CheckNumerics"), Some(OpFamily::Debug));
    for f in OpFamily::ALL {
        assert_eq!(OpFamily::from_name(f.name()), f);
    }
}

/// The string literals of every `type_name` in the op files: the crate's op type names.
fn type_names_in(dir: &Path, names: &mut BTreeSet<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("ops directory")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            type_names_in(&path, names);
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("op source");
        for (start, _) in text.match_indices("fn type_name(&self) -> &'static str {") {
            let body = &text[start..];
            let end = body.find("\n    }\n").unwrap_or(body.len());
            for (i, literal) in body[..end].split('"').enumerate() {
                if i % 2 == 1
                    && literal
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    names.insert(literal.to_string());
                }
            }
        }
    }
}

#[test]
fn op_types_lists_every_type_name_in_the_sources() {
    let mut names = BTreeSet::new();
    type_names_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ops"),
        &mut names,
    );
    let listed: BTreeSet<String> = OP_TYPES.iter().map(|s| s.to_string()).collect();
    assert_eq!(names, listed);
}
