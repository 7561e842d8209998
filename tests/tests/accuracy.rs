//! Accuracy on real data, through the example programs users run.

use sluice_tests::{fashion_mnist_dir, figure, run_example};

#[test]
fn seed_program_reaches_91_percent_on_the_embedded_digits() {
    let out = run_example("mnist_softmax", &[]).unwrap();
    let accuracy = figure(&out, "test accuracy:").expect("an accuracy line");
    assert!(accuracy >= 0.91, "test accuracy {accuracy} < 0.91\n{out}");
    assert!(figure(&out, "us/step:").is_some(), "{out}");
}

#[test]
fn fashion_mlp_reaches_87_percent_after_10_epochs() {
    if fashion_mnist_dir().is_none() {
        return;
    }
    let out = run_example("fashion_mlp", &[]).unwrap();
    let accuracy = figure(&out, "test accuracy:").expect("an accuracy line");
    assert!(accuracy >= 0.87, "test accuracy {accuracy} < 0.87\n{out}");
}

#[test]
fn fashion_mlp_names_a_bad_argument() {
    // Refused before any data is read, so this needs no Fashion-MNIST.
    let err = run_example("fashion_mlp", &["--steps", "many"]).unwrap_err();
    assert!(err.contains("exit status: 2"), "{err}");
    assert!(
        err.contains("invalid value 'many' for '--steps <N>'"),
        "{err}"
    );
}
