//! Sessions placing nodes on a GPU (`/device:GPU:0`): the same results as on the CPU, ops
//! without a GPU kernel on the CPU under soft placement, and clear errors otherwise. Runs on
//! Mesa's software Vulkan device where there is no GPU (skips, or fails under CI, where there
//! is no Vulkan device at all).
#![cfg(feature = "engine")]

mod common;

use sluice::data::mnist_digits;
use sluice::devices::gpu::GpuOptions;
use sluice::prelude::*;
use sluice::{SessionError, SessionOptions};

fn with_software_gpu() -> Option<SessionOptions> {
    common::software_gpu_options(GpuOptions::from_env(), true)
}

/// The seed program's model, on `device` (empty: anywhere).
struct Softmax {
    graph: Graph,
    x: Output,
    y_: Output,
    loss: Output,
    train: Output,
    accuracy: Output,
}

fn softmax_model(device: &str) -> Softmax {
    let g = Graph::new();
    let _on = g.device(device);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let loss = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(loss).expect("minimize");
    let accuracy = reduce_mean(cast(equal(argmax(y, 1), argmax(y_, 1)), DType::F32));
    Softmax {
        graph: g,
        x,
        y_,
        loss,
        train,
        accuracy,
    }
}

/// Trains `steps` steps; the losses and the test accuracy.
fn train(model: &Softmax, options: SessionOptions, steps: usize) -> (Vec<f64>, f64) {
    let digits = mnist_digits().expect("embedded digits");
    let mut sess = Session::with_options(&model.graph, options);
    sess.init_variables().expect("init");
    let mut batches = digits.train.batches(100, 0);
    let mut losses = Vec::new();
    for _ in 0..steps {
        let batch = batches.next().expect("a batch");
        let out = sess
            .run(
                &[model.loss, model.train],
                &[(model.x, batch.inputs), (model.y_, batch.one_hot)],
            )
            .expect("a training step");
        losses.push(out[0].scalar_f64().expect("a scalar loss"));
    }
    let test = &digits.test;
    let acc = sess
        .run(
            &[model.accuracy],
            &[
                (model.x, test.inputs_tensor()),
                (model.y_, test.one_hot_tensor()),
            ],
        )
        .expect("accuracy");
    (losses, acc[0].scalar_f64().expect("a scalar"))
}

#[test]
fn the_seed_program_trains_on_a_gpu_as_on_the_cpu() {
    let Some(options) = with_software_gpu() else {
        return;
    };
    let (cpu_losses, cpu_accuracy) = train(&softmax_model(""), SessionOptions::from_env(), 300);
    let (gpu_losses, gpu_accuracy) = train(&softmax_model("/device:GPU:0"), options, 300);
    for (step, (c, g)) in cpu_losses.iter().zip(&gpu_losses).enumerate() {
        assert!(
            (c - g).abs() <= 1e-3 * c.abs().max(1.0),
            "step {step}: loss {g} on the GPU, {c} on the CPU"
        );
    }
    assert!(
        (cpu_accuracy - gpu_accuracy).abs() <= 0.01,
        "accuracy {gpu_accuracy} on the GPU, {cpu_accuracy} on the CPU"
    );
    assert!(gpu_accuracy > 0.8, "accuracy {gpu_accuracy}");
}

#[test]
fn asking_for_a_gpu_that_is_not_there_names_the_node() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let y = {
        let _on = g.device("/device:GPU:7");
        x * x
    };
    let mut sess = Session::with_options(
        &g,
        SessionOptions {
            gpu: GpuOptions::from_env().with_software(),
            soft_placement: true,
        },
    );
    let err = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 2.0]))])
        .expect_err("there is no eighth GPU");
    assert!(matches!(err, SessionError::NoDevice { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&y.name()) && text.contains("/device:GPU:7"),
        "{text}"
    );
}

#[test]
fn without_soft_placement_an_op_with_no_gpu_kernel_is_an_error() {
    let Some(mut options) = with_software_gpu() else {
        return;
    };
    options.soft_placement = false;
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2, 3]);
    let (sum, wide) = {
        let _on = g.device("/device:GPU:0");
        (reduce_sum(x * x), reduce_sum(argmax(x, 1)))
    };
    let mut sess = Session::with_options(&g, options);
    let value = Tensor::new(&[2, 3], vec![1.0f32, 2.0, 3.0, -1.0, 0.5, 2.0]).expect("x");
    // Multiplication and sums have GPU kernels: without soft placement they run there.
    let out = sess.run(&[sum], &[(x, value.clone())]).expect("on the GPU");
    assert_eq!(out[0].scalar_f64(), Some(19.25));
    let err = sess
        .run(&[wide], &[(x, value)])
        .expect_err("a sum of i64 (argmax's indices), which GPUs do not hold");
    assert!(
        matches!(err, SessionError::NoKernel { ref device, .. } if device == "GPU"),
        "{err:?}"
    );
    assert!(err.to_string().contains(&wide.name()), "{err}");
}

#[test]
fn a_gather_index_out_of_range_on_the_gpu_names_the_index_and_the_node() {
    let Some(mut options) = with_software_gpu() else {
        return;
    };
    options.soft_placement = false;
    let g = Graph::new();
    let _on = g.device("/device:GPU:0");
    let table = g.variable("table", &[5, 2], Initializer::Zeros);
    let ids = g.placeholder("ids", DType::I64, &[-1]);
    let rows = gather(table, ids);
    let mut sess = Session::with_options(&g, options);
    sess.init_variables().expect("init");
    let values = Tensor::new(&[5, 2], (0..10).map(|v| v as f32).collect::<Vec<_>>()).unwrap();
    sess.set_variable(table, values.clone())
        .expect("set the table");
    let ok = sess
        .run(&[rows], &[(ids, Tensor::from_vec(vec![4i64, 0]))])
        .expect("rows 4 and 0 on the GPU");
    assert_eq!(ok[0].to_vec::<f32>().unwrap(), vec![8.0, 9.0, 0.0, 1.0]);
    let err = sess
        .run(&[rows], &[(ids, Tensor::from_vec(vec![1i64, 5]))])
        .expect_err("there is no row 5");
    let text = err.to_string();
    assert!(
        text.contains(&rows.name()) && text.contains("index 5") && text.contains("[0, 5)"),
        "{text}"
    );
    // Nothing was lost: the table is as it was, and the next step runs.
    assert_eq!(sess.variable(table).expect("table"), values);
    let after = sess
        .run(&[rows], &[(ids, Tensor::from_vec(vec![2i64]))])
        .expect("a step after the error");
    assert_eq!(after[0].to_vec::<f32>().unwrap(), vec![4.0, 5.0]);
}

#[test]
fn a_numerics_check_on_the_gpu_fails_as_on_the_cpu() {
    let Some(mut options) = with_software_gpu() else {
        return;
    };
    options.soft_placement = false;
    let run = |device: &str, options: SessionOptions, x_value: Vec<f32>| {
        let g = Graph::new();
        let _on = g.device(device);
        let x = g.placeholder("x", DType::F32, &[2, 3]);
        let checked = check_numerics(log(x) * 2.0f32, "scaled log");
        let mut sess = Session::with_options(&g, options);
        let value = Tensor::new(&[2, 3], x_value).expect("x");
        sess.run(&[checked], &[(x, value)])
            .map(|out| out[0].to_vec::<f32>().expect("f32"))
            .map_err(|e| match e {
                // Each session dumps the checked values to a folder of its own.
                SessionError::NonFinite { dump: None, .. } => {
                    panic!("the checked values were not dumped: {e}")
                }
                SessionError::NonFinite {
                    node,
                    message,
                    index,
                    dump,
                } => {
                    let dump = dump.expect("a dump");
                    assert!(dump.join("input0.npy").is_file(), "{}", dump.display());
                    std::fs::remove_dir_all(&dump).ok();
                    SessionError::NonFinite {
                        node,
                        message,
                        index,
                        dump: None,
                    }
                    .to_string()
                }
                other => other.to_string(),
            })
    };
    let fine = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let out = run("/device:GPU:0", options.clone(), fine.clone()).expect("finite values pass");
    let want = run("", SessionOptions::from_env(), fine).expect("on the CPU");
    for (g, c) in out.iter().zip(&want) {
        assert!(
            (g - c).abs() <= 1e-5 * c.abs().max(1.0),
            "{out:?} vs {want:?}"
        );
    }
    // The first bad element is a NaN (log of -1) at 2, before the Inf (log of 0) at 4.
    let bad = vec![1.0f32, 2.0, -1.0, 4.0, 0.0, 6.0];
    let on_gpu = run("/device:GPU:0", options, bad.clone()).expect_err("a NaN");
    let on_cpu = run("", SessionOptions::from_env(), bad).expect_err("a NaN");
    assert_eq!(on_gpu, on_cpu);
    assert!(on_gpu.contains("scaled log: NaN"), "{on_gpu}");
}

/// Each optimizer the engine has, by name.
fn every_optimizer() -> [(&'static str, Box<dyn Optimizer>); 6] {
    let mut nesterov = Momentum::new(0.05, 0.9);
    nesterov.nesterov = true;
    [
        ("gradient descent", Box::new(GradientDescent::new(0.1))),
        ("momentum", Box::new(Momentum::new(0.05, 0.9))),
        ("nesterov", Box::new(nesterov)),
        ("adam", Box::new(Adam::new(0.01))),
        ("adagrad", Box::new(Adagrad::new(0.1))),
        // FTRL has no GPU kernel: soft placement runs it on the host.
        ("ftrl", Box::new(Ftrl::new(0.1))),
    ]
}

/// An MLP's variables after `steps` steps of `optimizer`, trained on `device`.
fn train_mlp(
    device: &str,
    options: SessionOptions,
    optimizer: &dyn Optimizer,
    steps: usize,
) -> Vec<Tensor> {
    let digits = mnist_digits().expect("embedded digits");
    let g = Graph::new();
    g.set_seed(7);
    let _on = g.device(device);
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let w1 = g.variable("w1", &[784, 32], Initializer::GlorotUniform);
    let b1 = g.variable("b1", &[32], Initializer::Zeros);
    let w2 = g.variable("w2", &[32, 10], Initializer::GlorotUniform);
    let b2 = g.variable("b2", &[10], Initializer::Zeros);
    let logits = matmul(relu(matmul(x, w1) + b1), w2) + b2;
    let loss = reduce_mean(softmax_cross_entropy_with_logits(logits, y_));
    let train = optimizer.minimize(loss).expect("minimize");
    let mut sess = Session::with_options(&g, options);
    sess.init_variables().expect("init");
    let mut batches = digits.train.batches(50, 0);
    for _ in 0..steps {
        let batch = batches.next().expect("a batch");
        sess.run(&[train], &[(x, batch.inputs), (y_, batch.one_hot)])
            .expect("a training step");
    }
    [w1, b1, w2, b2]
        .iter()
        .map(|&v| sess.variable(v).expect("a value"))
        .collect()
}

#[test]
fn variables_live_and_update_on_the_gpu_with_every_optimizer() {
    let Some(mut options) = with_software_gpu() else {
        return;
    };
    for (name, optimizer) in every_optimizer() {
        let cpu = train_mlp("", SessionOptions::from_env(), &*optimizer, 20);
        let gpu = train_mlp("/device:GPU:0", options.clone(), &*optimizer, 20);
        for (k, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
            let diff = c.max_abs_diff(g).expect("same shapes");
            assert!(diff < 1e-4, "{name}: variable {k} differs by {diff}");
        }
    }
    // Without soft placement, only the i64 step count may not run there; the update of every
    // f32 variable has a GPU kernel.
    options.soft_placement = false;
    let g = Graph::new();
    let _on = g.device("/device:GPU:0");
    let w = g.variable("w", &[3], Initializer::Zeros);
    let x = g.placeholder("x", DType::F32, &[3]);
    let grads = gradients(&[reduce_sum(w * x)], &[w]).expect("gradients");
    let update = GradientDescent::new(1.0)
        .apply_updates(&[(grads[0].expect("a gradient"), w)], g.global_step())
        .expect("updates");
    assert_eq!(update.len(), 1);
    let mut sess = Session::with_options(&g, options);
    sess.init_variables().expect("init");
    let ones = Tensor::from_vec(vec![1.0f32, 2.0, 3.0]);
    let read = sess.run(&[w], &[(x, ones)]).expect("a read on the GPU");
    assert_eq!(read[0].to_vec::<f32>().expect("f32"), vec![0.0; 3]);
}

#[test]
fn assignments_on_the_gpu_and_values_read_and_set_from_the_host() {
    let Some(mut options) = with_software_gpu() else {
        return;
    };
    options.soft_placement = false;
    let g = Graph::new();
    let _on = g.device("/device:GPU:0");
    let v = g.variable("v", &[2, 2], Initializer::Zeros);
    let x = g.placeholder("x", DType::F32, &[2, 2]);
    let set = assign(v, x).expect("assign");
    let add = assign_add(v, x * 2.0f32).expect("assign_add");
    let sub = assign_sub(v, g.constant(Tensor::scalar(1.0f32))).expect("assign_sub");
    let mut sess = Session::with_options(&g, options);
    sess.init_variables().expect("init");
    let value = Tensor::new(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).expect("x");
    let feeds = [(x, value.clone())];
    sess.run(&[set], &feeds).expect("assign on the GPU");
    let out = sess.run(&[add], &feeds).expect("assign_add on the GPU");
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![3.0, 6.0, 9.0, 12.0]);
    sess.run(&[sub], &feeds).expect("assign_sub on the GPU");
    // The host reads the GPU's value, and a value set from the host is what the GPU reads next.
    let now = sess.variable(v).expect("a value");
    assert_eq!(now.to_vec::<f32>().unwrap(), vec![2.0, 5.0, 8.0, 11.0]);
    sess.set_variable(v, value).expect("set");
    let out = sess
        .run(&[add], &feeds)
        .expect("assign_add after a host write");
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![3.0, 6.0, 9.0, 12.0]);
}

#[test]
fn traced_steps_give_each_gpu_kernels_time_on_the_gpu() {
    let Some(options) = with_software_gpu() else {
        return;
    };
    let g = Graph::new();
    let _on = g.device("gpu");
    let ones = |n: usize| Tensor::new(&[n, n], vec![0.5f32; n * n]).expect("tensor");
    let (a, b) = (g.constant(ones(192)), g.constant(ones(192)));
    let flat = reshape(matmul(a, b), &[-1]);
    let total = reduce_sum(relu(flat - 1.0f32));
    let mut sess = Session::with_options(&g, options);
    sess.run(&[total], &[]).expect("warm-up: kernels compiled");
    let started = std::time::Instant::now();
    let (out, trace) = sess.run_traced(&[total], &[]).expect("traced run");
    let wall = started.elapsed().as_secs_f64() * 1e6;
    assert_eq!(out[0].get_f64(0), 192.0 * 192.0 * (0.25 * 192.0 - 1.0));
    let of = |op: &str| trace.iter().find(|t| t.op == op).map(|t| t.micros);
    let product = of("MatMul").expect("the product is traced");
    assert!(product > 0.0, "{trace:?}");
    let sum: f64 = trace.iter().map(|t| t.micros).sum();
    assert!(
        sum <= wall,
        "the kernels' {sum} us exceed the step's {wall} us"
    );
    let timed = sess.devices().gpus()[0].times_kernels();
    if timed {
        // A reshape shares its input's buffer: no kernel, no GPU time.
        assert_eq!(of("Reshape"), Some(0.0), "{trace:?}");
    }
    eprintln!("GPU timestamps: {timed}; {trace:?}");
    // Tracing stops with the step: an untraced step after it is not timed.
    sess.run(&[total], &[]).expect("untraced run");
}

#[test]
fn repeated_training_steps_compile_no_new_gpu_programs() {
    let Some(options) = with_software_gpu() else {
        return;
    };
    // A GPU of this test's own, so that other tests' programs are not counted.
    let devices = std::sync::Arc::new(sluice::devices::DeviceSet::new(options.gpu));
    let batch = Tensor::new(&[2, 4], vec![0.5f32, -1.0, 2.0, 0.25, 1.0, 0.0, -0.5, 3.0]).unwrap();
    for (name, optimizer) in every_optimizer() {
        let g = Graph::new();
        g.set_seed(3);
        let _on = g.device("/device:GPU:0");
        let x = g.placeholder("x", DType::F32, &[-1, 4]);
        let w = g.variable("w", &[4, 3], Initializer::GlorotUniform);
        let loss = reduce_mean(square(matmul(x, w)));
        let train = optimizer.minimize(loss).expect("minimize");
        let mut sess = Session::with_devices(&g, devices.clone(), true);
        sess.init_variables().expect("init");
        let mut step = || {
            sess.run(&[loss, train], &[(x, batch.clone())])
                .expect("a training step");
        };
        step();
        step();
        let compiled = || devices.gpus()[0].programs().len();
        let before = compiled();
        for _ in 0..5 {
            step();
        }
        assert_eq!(
            compiled(),
            before,
            "{name}: steps after the second compiled new GPU programs"
        );
    }
    // The optimizers' programs in their CUDA form.
    common::cuda::check_cuda(&devices.gpus()[0].programs());
}
