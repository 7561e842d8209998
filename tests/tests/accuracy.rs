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
fn seed_program_reaches_91_percent_on_a_gpu() {
    // Mesa's software Vulkan device stands in for a GPU where there is none.
    if !sluice_tests::require_vulkan() {
        return;
    }
    let out = sluice_tests::run_example_with_env(
        "mnist_softmax",
        &["--device", "gpu"],
        &[("SLUICE_GPU_ALLOW_SOFTWARE", "1")],
    )
    .unwrap();
    let accuracy = figure(&out, "test accuracy:").expect("an accuracy line");
    assert!(accuracy >= 0.91, "test accuracy {accuracy} < 0.91\n{out}");
}

#[test]
fn seed_program_names_a_missing_gpu() {
    // Without software GPUs allowed, a machine with no GPU has none to give.
    let out = sluice_tests::run_example_with_env(
        "mnist_softmax",
        &["--device", "/device:GPU:9"],
        &[("SLUICE_GPU_ALLOW_SOFTWARE", "0")],
    );
    let err = out.expect_err("there is no tenth GPU");
    assert!(err.contains("asks for /device:GPU:9"), "{err}");
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
