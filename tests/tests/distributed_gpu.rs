//! GPUs on distributed workers, with real worker processes on loopback: a layer that asks for
//! `/job:worker/task:1/device:GPU:0` runs on that worker's GPU (Mesa's software Vulkan device
//! where there is no GPU), its activations and gradients cross to the other worker through
//! the host, and training matches one CPU process; a GPU the worker lacks is soft-placed on
//! its CPU and the placement says why.

use sluice::data::mnist_digits;
use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster};
use sluice::prelude::*;

/// MLP 784-32-10: the first layer on worker 0's CPU, the second on `second` (empty: anywhere).
struct Mlp {
    g: Graph,
    x: Output,
    y_: Output,
    loss: Output,
    train: Output,
    w2: Output,
}

fn mlp(first: &str, second: &str) -> Mlp {
    let g = Graph::new();
    g.set_seed(11);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let h = {
        let _d = (!first.is_empty()).then(|| g.device(first));
        let _s = g.name_scope("layer1");
        let w = g.variable("W", &[784, 32], Initializer::GlorotUniform);
        let b = g.variable("b", &[32], Initializer::Zeros);
        relu(matmul(x, w) + b)
    };
    let (logits, w2) = {
        let _d = (!second.is_empty()).then(|| g.device(second));
        let _s = g.name_scope("layer2");
        let w = g.variable("W", &[32, 10], Initializer::GlorotUniform);
        let b = g.variable("b", &[10], Initializer::Zeros);
        (matmul(h, w) + b, w)
    };
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, y_));
    let train = GradientDescent::new(0.1).minimize(loss).expect("minimize");
    Mlp {
        g,
        x,
        y_,
        loss,
        train,
        w2,
    }
}

#[test]
fn a_layer_on_a_workers_gpu_trains_as_one_cpu_process_does() {
    if !sluice_tests::require_vulkan() {
        return;
    }
    // The workers inherit this: their engines may use the software GPU. (The only test in
    // this binary, so no other test reads the environment meanwhile.)
    std::env::set_var("SLUICE_GPU_ALLOW_SOFTWARE", "1");
    std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    let cluster = LocalCluster::start(&[("worker", 2)]).expect("two workers");
    let split = mlp("/job:worker/task:0", "/job:worker/task:1/device:GPU:0");
    let mut dist = DistributedSession::new(&split.g, cluster.spec(), DistributedOptions::default())
        .expect("session");
    let single = mlp("", "");
    let mut local = Session::new(&single.g);
    dist.init_variables().expect("init");
    local.init_variables().expect("init");

    let table = dist.placement_table().expect("placement");
    let placed = dist.placement().expect("placement");
    let device_of = |name: &str| placed.iter().find(|p| p.0 == name).map(|p| p.1.clone());
    let gpu = "/job:worker/replica:0/task:1/device:GPU:0";
    assert_eq!(device_of("layer2/MatMul").as_deref(), Some(gpu), "{table}");
    assert_eq!(
        device_of("layer1/MatMul").as_deref(),
        Some("/job:worker/replica:0/task:0/device:CPU:0"),
        "{table}"
    );
    // The second layer's variable is updated where it lives: on the GPU.
    let updates_on_gpu = placed
        .iter()
        .filter(|p| p.0.contains("ApplyGradientDescent") && p.1 == gpu)
        .count();
    assert_eq!(updates_on_gpu, 2, "{table}");

    let digits = mnist_digits().expect("digits");
    for batch in digits.train.batches(100, 5).take(30) {
        let feeds = |m: &Mlp| [(m.x, batch.inputs.clone()), (m.y_, batch.one_hot.clone())];
        let a = dist.run_with_targets(&[split.loss], &feeds(&split), &[split.train]);
        let b = local.run_with_targets(&[single.loss], &feeds(&single), &[single.train]);
        let (a, b) = (
            a.expect("distributed step")[0].scalar_f64().expect("loss"),
            b.expect("local step")[0].scalar_f64().expect("loss"),
        );
        assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "loss {a} vs {b}");
    }
    // The GPU's variable comes back to the client through the worker's host.
    let d = dist.variable(split.w2).expect("fetch").expect("a value");
    let l = local.variable(single.w2).expect("fetch");
    let worst = d.max_abs_diff(&l).expect("comparable");
    assert!(worst < 1e-3, "weights differ by {worst}");

    // A GPU the worker does not have: its CPU, and the placement says why.
    let g = Graph::new();
    let c = {
        let _d = g.device("/job:worker/task:0/device:GPU:3");
        g.constant(Tensor::from_vec(vec![2.0f32])) * 3.0f32
    };
    let mut dist = DistributedSession::new(&g, cluster.spec(), DistributedOptions::default())
        .expect("session");
    assert_eq!(dist.run(&[c], &[]).expect("run")[0].get_f64(0), 6.0);
    let placed = dist.placement().expect("placement");
    let mul = placed.iter().find(|p| p.0 == c.name()).expect("placed");
    assert!(mul.1.ends_with("device:CPU:0"), "{mul:?}");
    assert!(mul.2.contains("no GPU:3 there"), "{mul:?}");
}
