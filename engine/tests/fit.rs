//! The engine-side training loop and cancellation.

#![cfg(feature = "engine")]

use sluice::data::mnist_digits;
use sluice::prelude::*;
use sluice::SessionError;
use std::time::Duration;

struct Seed {
    sess: Session,
    config: FitConfig,
    accuracy: Output,
    w: Output,
}

fn seed_program() -> Seed {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(xent).unwrap();
    let accuracy = reduce_mean(cast(equal(argmax(y, 1), argmax(y_, 1)), DType::F32));
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    Seed {
        sess,
        config: FitConfig::new(x, y_, xent, train),
        accuracy,
        w,
    }
}

#[test]
fn fit_trains_the_seed_program_and_reports_progress() {
    let digits = mnist_digits().unwrap();
    let mut seed = seed_program();
    seed.config.report_every = 100;
    let mut reports = Vec::new();
    let summary = seed
        .sess
        .fit(&digits.train, &seed.config, &mut |p| {
            reports.push(p.clone())
        })
        .unwrap();
    assert_eq!(summary.steps_done, 1000);
    assert_eq!(summary.losses.len(), 1000);
    assert_eq!(reports.len(), 10);
    let last = reports.last().unwrap();
    assert_eq!(
        (last.steps_done, last.steps_total, last.global_step),
        (1000, 1000, 1000)
    );
    assert!(reports[0].loss > 2.0 * last.loss, "{reports:?}");
    assert!(reports.iter().all(|r| r.examples_per_second > 0.0));
    let history = seed.sess.history();
    assert_eq!(history.len(), 1000);
    assert_eq!((history[0].step, history[999].step), (1, 1000));
    assert_eq!(history[999].loss, summary.losses[999]);
    assert!(history.windows(2).all(|p| p[0].wall_time <= p[1].wall_time));
    let test = &digits.test;
    let x = seed.config.inputs;
    let y_ = seed.config.labels;
    let acc = seed
        .sess
        .run(
            &[seed.accuracy],
            &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())],
        )
        .unwrap()[0]
        .scalar_f64()
        .unwrap();
    assert!(acc >= 0.91, "accuracy {acc}");
}

#[test]
fn sparse_labels_are_fed_as_indices() {
    let digits = mnist_digits().unwrap();
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let labels = g.placeholder("labels", DType::I64, &[-1]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let logits = matmul(x, w);
    let loss = reduce_mean(sparse_softmax_cross_entropy_with_logits(logits, labels));
    let train = GradientDescent::new(0.5).minimize(loss).unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let mut config = FitConfig::new(x, labels, loss, train);
    config.label_format = LabelFormat::Indices;
    config.steps = 200;
    let summary = sess.fit(&digits.train, &config, &mut |_| {}).unwrap();
    let first: f64 = summary.losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = summary.losses[190..].iter().sum::<f64>() / 10.0;
    assert!(last < first / 3.0, "loss {first} -> {last}");
}

#[test]
fn a_cancel_stops_fit_between_steps_and_keeps_the_updates() {
    let digits = mnist_digits().unwrap();
    let mut seed = seed_program();
    seed.config.report_every = 10;
    seed.config.steps = 100_000;
    let token = seed.sess.cancel_token();
    let mut reports = 0;
    let err = seed
        .sess
        .fit(&digits.train, &seed.config, &mut |p| {
            reports += 1;
            if p.steps_done == 30 {
                token.cancel();
            }
        })
        .unwrap_err();
    assert_eq!(err, SessionError::Cancelled);
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert_eq!(reports, 3);
    // Exactly the 30 finished steps were applied: none half-way.
    let step = seed.sess.graph().global_step();
    assert_eq!(
        seed.sess.variable(step).unwrap().to_vec::<i64>().unwrap(),
        vec![30]
    );
    let trained = seed.sess.variable(seed.w).unwrap();
    assert!(trained.to_vec::<f32>().unwrap().iter().any(|&v| v != 0.0));
    // Runs fail until the token is reset; then training goes on from where it stopped.
    let err = seed.sess.run(&[seed.w], &[]).unwrap_err();
    assert_eq!(err, SessionError::Cancelled);
    token.reset();
    seed.config.steps = 5;
    seed.sess
        .fit(&digits.train, &seed.config, &mut |_| {})
        .unwrap();
    assert_eq!(
        seed.sess.variable(step).unwrap().to_vec::<i64>().unwrap(),
        vec![35]
    );
}

#[test]
fn a_cancel_from_another_thread_ends_a_long_fit() {
    let digits = mnist_digits().unwrap();
    let mut seed = seed_program();
    seed.config.steps = 10_000_000;
    let token = seed.sess.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
    });
    // Ten million steps would take hours: returning at all shows the cancel was seen.
    let result = seed.sess.fit(&digits.train, &seed.config, &mut |_| {});
    canceller.join().unwrap();
    assert_eq!(result.unwrap_err(), SessionError::Cancelled);
}
