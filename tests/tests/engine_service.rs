//! The standalone engine as users meet it: a real `sluice-engine serve` process on loopback,
//! driven through remote sessions.

use sluice::data::mnist_digits;
use sluice::prelude::*;
use sluice::RemoteError;
use sluice::SessionError;
use sluice_tests::{figure, run_example_with_env, Engine};
use std::time::Instant;

/// The seed program's graph: its handles and its train op.
struct Softmax {
    graph: Graph,
    x: Output,
    y_: Output,
    loss: Output,
    train: Output,
    accuracy: Output,
}

fn softmax_regression() -> Softmax {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(xent).unwrap();
    let accuracy = reduce_mean(cast(equal(argmax(y, 1), argmax(y_, 1)), DType::F32));
    Softmax {
        graph: g,
        x,
        y_,
        loss: xent,
        train,
        accuracy,
    }
}

/// Trains the seed program for `steps` steps of 100 and returns the test accuracy.
fn train(sess: &mut dyn Runner, m: &Softmax, steps: usize) -> f64 {
    let digits = mnist_digits().unwrap();
    sess.init_variables().unwrap();
    for batch in digits.train.batches(100, 0).take(steps) {
        sess.run(&[m.train], &[(m.x, batch.inputs), (m.y_, batch.one_hot)])
            .unwrap();
    }
    test_accuracy(sess, m)
}

/// The seed program's accuracy on the digits' test split.
fn test_accuracy(sess: &mut dyn Runner, m: &Softmax) -> f64 {
    let digits = mnist_digits().unwrap();
    let test = &digits.test;
    sess.run(
        &[m.accuracy],
        &[(m.x, test.inputs_tensor()), (m.y_, test.one_hot_tensor())],
    )
    .unwrap()[0]
        .scalar_f64()
        .unwrap()
}

#[test]
fn the_seed_program_trains_remotely_to_the_in_process_accuracy() {
    let engine = Engine::start(&[]).unwrap();
    let local = softmax_regression();
    let mut local_sess = Session::new(&local.graph);
    let local_acc = train(&mut local_sess, &local, 1000);

    let remote = softmax_regression();
    let mut sess = RemoteSession::create(&engine.addr, &remote.graph).unwrap();
    let started = Instant::now();
    let remote_acc = train(&mut sess, &remote, 1000);
    eprintln!(
        "1000 remote steps and the test: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(local_acc >= 0.91, "in-process accuracy {local_acc}");
    assert!(
        (local_acc - remote_acc).abs() <= 1e-4,
        "remote accuracy {remote_acc} differs from in-process {local_acc}"
    );
    // The trained weights are the same too.
    let w_local = local_sess.variable(local.graph.get("W").unwrap()).unwrap();
    let w_remote = sess
        .variable(remote.graph.get("W").unwrap())
        .unwrap()
        .unwrap();
    let diff = w_local.max_abs_diff(&w_remote).unwrap();
    assert!(diff <= 1e-6, "weights differ by {diff}");
}

#[test]
fn the_examples_honour_sluice_engine() {
    let engine = Engine::start(&[]).unwrap();
    let local = run_example_with_env("mnist_softmax", &[], &[]).unwrap();
    let remote =
        run_example_with_env("mnist_softmax", &[], &[("SLUICE_ENGINE", &engine.addr)]).unwrap();
    assert!(
        remote.contains(&format!("engine at {}", engine.addr)),
        "{remote}"
    );
    let (a, b) = (
        figure(&local, "test accuracy:").unwrap(),
        figure(&remote, "test accuracy:").unwrap(),
    );
    assert!((a - b).abs() <= 1e-4, "local {a}, remote {b}");
    assert!(
        engine.terminate().unwrap(),
        "the engine did not exit cleanly"
    );
}

#[test]
fn two_clients_extend_one_graph_and_both_run() {
    let engine = Engine::start(&[]).unwrap();
    let g1 = Graph::new();
    let x = g1.placeholder("x", DType::F32, &[-1]);
    let mut a = RemoteSession::create(&engine.addr, &g1).unwrap();
    let (mut b, g2) = RemoteSession::attach(&engine.addr, a.handle()).unwrap();
    assert_eq!(a.engine_graph_version(), 1);

    let double = (g1.get("x").unwrap() * 2.0f32).named("double");
    let feed = Tensor::from_vec(vec![1.0f32, 2.0]);
    let got = a.run(&[double], &[(x, feed.clone())]).unwrap();
    assert_eq!(got[0].to_vec::<f32>().unwrap(), vec![2.0, 4.0]);

    // B has not seen `double`: its delta is stale, so it catches up and then sends.
    let x2 = g2.get("x").unwrap();
    let plus = (x2 + 1.0f32).named("plus_one");
    let got = b.run(&[plus], &[(x2, feed.clone())]).unwrap();
    assert_eq!(got[0].to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
    assert!(g2.get("double").is_ok(), "B pulled A's node");

    // A in turn catches up with B's node, and finds it by name.
    let minus = (x - 3.0f32).named("minus_three");
    a.run(&[minus], &[(x, feed.clone())]).unwrap();
    let plus_in_a = g1.get("plus_one").unwrap();
    let got = a.run(&[plus_in_a], &[(x, feed.clone())]).unwrap();
    assert_eq!(got[0].to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
    assert_eq!(a.engine_graph_version(), g1.len() as u64);

    // Both make nodes of the same names (`Const`, `Mul` and an explicit `scaled`) before
    // seeing each other's: the later one's are renamed as a taken name is locally.
    let five = (x * 5.0f32).named("scaled");
    a.run(&[five], &[(x, feed.clone())]).unwrap();
    let seven = (x2 * 7.0f32).named("scaled");
    let got = b.run(&[seven], &[(x2, feed.clone())]).unwrap();
    assert_eq!(got[0].to_vec::<f32>().unwrap(), vec![7.0, 14.0]);
    assert_eq!(seven.name(), "scaled_1");
    let theirs = g2.get("scaled").unwrap();
    let got = b.run(&[theirs], &[(x2, feed)]).unwrap();
    assert_eq!(got[0].to_vec::<f32>().unwrap(), vec![5.0, 10.0]);
    a.refresh().unwrap();
    assert_eq!(g1.len(), g2.len());
    assert_eq!(a.engine_graph_version(), b.engine_graph_version());
}

#[test]
fn a_restarted_client_finds_its_trained_variables_by_name() {
    let engine = Engine::start(&[]).unwrap();
    let (handle, w_before, train_name) = {
        let m = softmax_regression();
        let mut sess = RemoteSession::create(&engine.addr, &m.graph).unwrap();
        train(&mut sess, &m, 50);
        let w = sess.variable(m.graph.get("W").unwrap()).unwrap().unwrap();
        (sess.handle().to_string(), w, m.train.name())
        // The session and its graph are dropped here, as when a kernel dies.
    };
    let (mut sess, g) = RemoteSession::attach(&engine.addr, &handle).unwrap();
    let w = g.get("W").unwrap();
    assert_eq!(sess.variable(w).unwrap().unwrap(), w_before);
    // Training goes on from where it was.
    let digits = mnist_digits().unwrap();
    let batch = digits.train.batches(100, 1).next().unwrap();
    let train = g.get(&train_name).unwrap();
    let (x, y_) = (g.get("x").unwrap(), g.get("y_").unwrap());
    sess.run(&[train], &[(x, batch.inputs), (y_, batch.one_hot)])
        .unwrap();
    let after = sess.variable(w).unwrap().unwrap();
    assert!(after.max_abs_diff(&w_before).unwrap() > 0.0);
    // A variable set by one client is what the other reads.
    sess.set_variable(w, Tensor::zeros(DType::F32, &[784, 10]))
        .unwrap();
    let (other, g3) = RemoteSession::attach(&engine.addr, &handle).unwrap();
    let zeros = other.variable(g3.get("W").unwrap()).unwrap().unwrap();
    assert_eq!(zeros, Tensor::zeros(DType::F32, &[784, 10]));
    sess.close().unwrap();
    let gone = RemoteSession::attach(&engine.addr, &handle).err().unwrap();
    assert!(
        matches!(
            &gone,
            SessionError::Remote(RemoteError::Status {
                code: tonic::Code::NotFound,
                ..
            })
        ),
        "{gone}"
    );
}

#[test]
fn remote_errors_are_the_in_process_ones() {
    let engine = Engine::start(&[]).unwrap();
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]);
    let v = g.variable("v", &[2], Initializer::Ones);
    let y = x + v;
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    assert_eq!(sess.variable(v).unwrap(), None);
    let err = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 2.0]))])
        .unwrap_err();
    assert_eq!(err, SessionError::Uninitialized("v".into()));
    assert_eq!(sess.init_variables().unwrap(), 1);
    let err = sess.run(&[y], &[]).unwrap_err();
    assert_eq!(err, SessionError::MissingFeed("x".into()));
    let err = sess
        .run(&[y], &[(x, Tensor::from_vec(vec![1i32, 2]))])
        .unwrap_err();
    assert!(err.to_string().contains("dtype i32"), "{err}");
    let (values, timings) = sess
        .run_traced(&[y], &[(x, Tensor::from_vec(vec![1.0f32, 2.0]))])
        .unwrap();
    assert_eq!(values[0].to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
    assert!(timings.iter().any(|t| t.op == "Add"), "{timings:?}");
    let devices = sess.list_devices().unwrap();
    assert_eq!(
        devices[0].name,
        "/job:localhost/replica:0/task:0/device:CPU:0"
    );
    assert_eq!(devices[0].device_type, "CPU");
}

#[test]
fn list_devices_shows_the_engines_gpus_with_their_backend_and_memory() {
    // Mesa's software Vulkan device stands in for a GPU where there is none.
    let engine = Engine::start_env(
        &[],
        &[
            ("SLUICE_GPU_ALLOW_SOFTWARE", "1"),
            ("XDG_RUNTIME_DIR", "/tmp"),
        ],
    )
    .unwrap();
    let sess = RemoteSession::create(&engine.addr, &Graph::new()).unwrap();
    let devices = sess.list_devices().unwrap();
    assert_eq!(devices[0].device_type, "CPU");
    assert!(devices[0].memory_limit > 0, "{devices:?}");
    let gpu = devices.iter().find(|d| d.device_type == "GPU");
    let Some(gpu) = gpu else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no GPU listed, not even the software one: {devices:?}"
        );
        return;
    };
    assert_eq!(gpu.name, "/job:localhost/replica:0/task:0/device:GPU:0");
    assert_eq!(gpu.backend, "vulkan");
    assert!(
        gpu.memory_limit > 0 && !gpu.description.is_empty(),
        "{gpu:?}"
    );
}

#[test]
fn a_256_mib_tensor_goes_there_and_back_intact() {
    let engine = Engine::start(&[]).unwrap();
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1]);
    let y = identity(x);
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let n = 64 << 20; // 256 MiB of f32
    let data: Vec<f32> = (0..n).map(|i| (i % 1_000_003) as f32 * 0.25).collect();
    let input = Tensor::from_vec(data);
    let started = Instant::now();
    let got = sess.run(&[y], &[(x, input.clone())]).unwrap();
    eprintln!(
        "256 MiB fed and fetched back in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(got[0] == input, "the tensor came back changed");
}

#[test]
fn cancel_ends_a_long_step_and_reset_lets_steps_run_again() {
    let engine = Engine::start(&[]).unwrap();
    let g = Graph::new();
    // 2000 products of 384x384 matrices: seconds of work, stopped between two of them.
    let a = g.constant(Tensor::full(&[384, 384], 1.0f32 / 384.0));
    let mut h = a;
    for _ in 0..2000 {
        h = matmul(h, a);
    }
    let two = g.scalar(1.0) + g.scalar(1.0);
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    let token = sess.cancel_token();
    let runner = std::thread::spawn(move || {
        let result = sess.run(&[h], &[]);
        (result, sess)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cancelled = Instant::now();
    token.cancel().unwrap();
    let (result, mut sess) = runner.join().unwrap();
    let waited = cancelled.elapsed();
    assert_eq!(result.unwrap_err(), SessionError::Cancelled);
    assert!(
        waited.as_secs_f64() < 1.0,
        "the step ended {waited:?} after Cancel"
    );
    // Cancelled stays set, as in-process, until reset.
    assert_eq!(sess.run(&[two], &[]).unwrap_err(), SessionError::Cancelled);
    token.reset().unwrap();
    assert_eq!(sess.run(&[two], &[]).unwrap()[0].scalar_f64(), Some(2.0));
}

/// The seed program's fit: 1000 steps of 100 one-hot examples.
fn fit_config(m: &Softmax, steps: usize, report_every: usize) -> FitConfig {
    FitConfig {
        steps,
        report_every,
        ..FitConfig::new(m.x, m.y_, m.loss, m.train)
    }
}

#[test]
fn the_seed_program_fits_engine_side_and_streams_its_progress() {
    let engine = Engine::start(&[]).unwrap();
    let m = softmax_regression();
    let mut sess = RemoteSession::create(&engine.addr, &m.graph).unwrap();
    sess.init_variables().unwrap();
    let config = fit_config(&m, 1000, 50);
    let mut reports = Vec::new();
    let last = sess
        .fit("mnist-digits", &config, &mut |p| reports.push(p.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(reports.len(), 1000 / 50);
    assert_eq!(reports.last(), Some(&last));
    assert_eq!(last.steps_done, 1000);
    assert_eq!(last.steps_total, 1000);
    assert_eq!(last.global_step, 1000);
    assert!(reports.iter().all(|p| p.loss.is_finite()), "{reports:?}");
    assert!(reports
        .windows(2)
        .all(|w| w[0].steps_done < w[1].steps_done));
    let acc = test_accuracy(&mut sess, &m);
    assert!(acc >= 0.91, "test accuracy {acc} after a remote fit");
    // A second fit (the data set now cached by the engine) goes on from step 1000.
    let last = sess
        .fit("mnist-digits", &fit_config(&m, 10, 5), &mut |_| {})
        .unwrap()
        .unwrap();
    assert_eq!(last.global_step, 1010);
    // Unknown data sets and nodes end the fit with a clear error.
    let err = sess.fit("no-such-data", &config, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("no-such-data"), "{err}");
}

#[test]
fn cancel_from_another_client_ends_a_long_fit() {
    let engine = Engine::start(&[]).unwrap();
    let m = softmax_regression();
    let mut sess = RemoteSession::create(&engine.addr, &m.graph).unwrap();
    sess.init_variables().unwrap();
    let (other, g2) = RemoteSession::attach(&engine.addr, sess.handle()).unwrap();
    let config = fit_config(&m, 10_000_000, 10);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let result = sess.fit("mnist-digits", &config, &mut |p| {
            let _ = started_tx.send(p.steps_done);
        });
        (result, sess)
    });
    // Once the fit has reported, the other client cancels it.
    started_rx.recv().unwrap();
    let cancelled = Instant::now();
    other.cancel_token().cancel().unwrap();
    let (result, mut sess) = runner.join().unwrap();
    let waited = cancelled.elapsed();
    assert_eq!(result.unwrap_err(), SessionError::Cancelled);
    assert!(
        waited.as_secs_f64() < 1.0,
        "the fit ended {waited:?} after Cancel"
    );
    other.cancel_token().reset().unwrap();
    // The variables are intact and trained, and steps run again.
    let w = other.variable(g2.get("W").unwrap()).unwrap().unwrap();
    let values = w.to_vec::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
    assert!(values.iter().any(|&v| v != 0.0), "W was not trained");
    let acc = test_accuracy(&mut sess, &m);
    assert!(acc > 0.3, "test accuracy {acc} after a cancelled fit");
    let last = sess
        .fit("mnist-digits", &fit_config(&m, 5, 5), &mut |_| {})
        .unwrap()
        .unwrap();
    assert_eq!(last.steps_done, 5);
}

#[test]
fn fit_through_the_runner_trait_is_the_same_in_process_and_on_an_engine() {
    let engine = Engine::start(&[]).unwrap();
    let mut last = Vec::new();
    for remote in [false, true] {
        let m = softmax_regression();
        let mut sess: Box<dyn Runner> = if remote {
            Box::new(Session::connect(&engine.addr, &m.graph).unwrap())
        } else {
            Box::new(Session::new(&m.graph))
        };
        sess.init_variables().unwrap();
        let mut reports = 0;
        let report = sess
            .fit("mnist-digits", &fit_config(&m, 60, 20), &mut |_| {
                reports += 1
            })
            .unwrap()
            .unwrap();
        assert_eq!((reports, report.steps_done), (3, 60));
        last.push(report.loss);
        let err = sess
            .fit("no-such-data", &fit_config(&m, 1, 1), &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("no-such-data"), "{err}");
    }
    // Same seed, same batches, same kernels: the same losses.
    assert_eq!(last[0], last[1]);
}

#[test]
fn a_repeated_step_runs_that_many_times_with_its_step_feed_advanced() {
    let engine = Engine::start(&[]).unwrap();
    let g = Graph::new();
    let step = g.placeholder("step", DType::I64, &[]);
    let total = g.variable_with("total", DType::I64, &[], Initializer::Zeros, false);
    let add = assign_add(total, step).unwrap();
    let scale = g.placeholder("scale", DType::F32, &[]);
    let mut sess = RemoteSession::create(&engine.addr, &g).unwrap();
    sess.init_variables().unwrap();
    let ten = Tensor::scalar(10i64);
    let last = sess
        .run_repeated(&[add], &[(step, ten.clone())], &[], 5, Some(step))
        .unwrap();
    // 10 + 11 + 12 + 13 + 14; the value returned is the last run's.
    assert_eq!(last[0].to_vec::<i64>().unwrap(), vec![60]);
    // Without an advanced feed, every run gets the same value.
    sess.run_repeated(&[], &[(step, ten.clone())], &[add], 3, None)
        .unwrap();
    assert_eq!(
        sess.run(&[total], &[]).unwrap()[0].to_vec::<i64>().unwrap(),
        vec![90]
    );

    let refused = |sess: &mut RemoteSession, feeds: &[(Output, Tensor)], times, advance| {
        let e = sess
            .run_repeated(&[add], feeds, &[], times, advance)
            .unwrap_err();
        e.to_string()
    };
    let both = [(step, ten.clone()), (scale, Tensor::scalar(1.0f32))];
    let e = refused(&mut sess, &[(step, ten.clone())], 2, Some(scale));
    assert!(
        e.contains("advance_feed 'scale' is not among the feeds"),
        "{e}"
    );
    let e = refused(&mut sess, &both, 2, Some(scale));
    assert!(
        e.contains("advance_feed 'scale' must be fed a scalar i64"),
        "{e}"
    );
    let e = refused(&mut sess, &[(step, ten.clone())], 2_000_000, Some(step));
    assert!(e.contains("repeat is 2000000"), "{e}");
    // Nothing ran for the refused calls.
    assert_eq!(
        sess.run(&[total], &[]).unwrap()[0].to_vec::<i64>().unwrap(),
        vec![90]
    );
}
