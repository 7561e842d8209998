//! Writes loss curves as SVG and PNG: train and test loss of a run with a smoothed line,
//! and synchronous against asynchronous training on a log scale.
//!
//! `cargo run --release -p sluice-visualizer --example loss_curve [OUT_DIR]`
//! (default: `visualizer/docs/`).

use sluice_visualizer::curve::{save_curve, CurveOptions};
use sluice_visualizer::series::Series;
use std::path::PathBuf;

/// A small deterministic noise source, so that the pictures in the README do not change.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// A loss that decays from `start` towards `floor`, with noise.
fn loss_curve(name: &str, steps: usize, every: usize, rate: f64, floor: f64, seed: u64) -> Series {
    let mut noise = Noise(seed);
    let mut series = Series::new(name);
    for step in (0..steps).step_by(every) {
        let clean = floor + 2.3 * (-(step as f64) * rate).exp();
        series.push(step as f64, clean * (1.0 + 0.35 * noise.next()));
    }
    series
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs"));
    std::fs::create_dir_all(&out_dir)?;

    let train = loss_curve("train", 3000, 1, 0.002, 0.28, 7);
    let test = loss_curve("test", 3000, 100, 0.002, 0.33, 11);
    let options = CurveOptions {
        title: Some("Softmax regression on MNIST".into()),
        y_label: "cross-entropy".into(),
        smoothing: Some(0.9),
        ..CurveOptions::default()
    };
    save_curve(
        out_dir.join("loss_curve.svg"),
        &[train.clone(), test.clone()],
        &options,
    )?;
    save_curve(out_dir.join("loss_curve.png"), &[train, test], &options)?;

    let sync = loss_curve("synchronous", 5000, 5, 0.0015, 0.05, 3);
    let asynchronous = loss_curve("asynchronous", 5000, 5, 0.0011, 0.09, 5);
    let log_options = CurveOptions {
        title: Some("Data parallel: sync vs async".into()),
        log_y: true,
        smoothing: Some(0.95),
        ..CurveOptions::default()
    };
    save_curve(
        out_dir.join("sync_async_log.png"),
        &[sync, asynchronous],
        &log_options,
    )?;

    println!(
        "wrote loss_curve.svg, loss_curve.png, sync_async_log.png to {}",
        out_dir.display()
    );
    Ok(())
}
