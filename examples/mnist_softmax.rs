//! The seed program: softmax regression on the embedded MNIST digits, trained by gradient
//! descent on the cross-entropy, 1000 steps of 100 examples.
//!
//!     cargo run --release --example mnist_softmax [-- --seed S]

use anyhow::Context;
use sluice::data::mnist_digits;
use sluice::prelude::*;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    // The seed orders the batches (the weights start at zero, as in the seed program).
    let seed: u64 = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 0,
        [flag, value] if flag == "--seed" => value.parse().context("--seed takes a number")?,
        other => anyhow::bail!("unknown arguments {other:?} (use --seed S)"),
    };
    let digits = mnist_digits()?;
    let g = Graph::new();

    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);

    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = -reduce_sum(y_ * log(y));
    let train = GradientDescent::new(0.01).minimize(xent)?;

    let correct = equal(argmax(y, 1), argmax(y_, 1));
    let accuracy = reduce_mean(cast(correct, DType::F32));

    // In-process, or on the standalone engine that SLUICE_ENGINE names.
    let mut sess = connect_or_local(&g)?;
    println!("running {}", sess.location());
    sess.init_variables()?;
    // A step's time includes drawing its batch, as the TensorFlow peer's does.
    let mut batches = digits.train.batches(100, seed);
    let mut step_micros = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let start = Instant::now();
        let batch = batches.next().context("the training set is empty")?;
        sess.run(&[train], &[(x, batch.inputs), (y_, batch.one_hot)])?;
        step_micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let test = &digits.test;
    let acc = sess.run(
        &[accuracy],
        &[(x, test.inputs_tensor()), (y_, test.one_hot_tensor())],
    )?;
    step_micros.sort_by(f64::total_cmp);
    println!(
        "test accuracy: {:.4}",
        acc[0].scalar_f64().unwrap_or(f64::NAN)
    );
    println!("us/step: {:.1}", step_micros[step_micros.len() / 2]);
    Ok(())
}
