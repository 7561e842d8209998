//! The training loop every runner shares: mini-batches from a data set, one step after
//! another, progress reported as it goes. The in-process session runs it on the engine's
//! data (`Session::fit`); a distributed session runs it here, one distributed step per batch.

use crate::data::{Batch, Dataset};
use crate::error::SessionError;
use crate::fit::{FitConfig, FitProgress, FitSummary, LabelFormat};
use crate::graph::Output;
use crate::tensor::Tensor;
use std::time::Instant;

/// Runs one training step on a batch's feeds; returns the loss and the global step.
pub(crate) type StepFn<'a> =
    dyn FnMut(&[(Output, Tensor)]) -> Result<(f64, i64), SessionError> + 'a;

/// The training loop over any way of running a step: `step` runs the loss and the train op
/// on one batch's feeds and returns the loss and the global step.
pub(crate) fn fit_loop(
    data: &Dataset,
    config: &FitConfig,
    on_progress: &mut dyn FnMut(&FitProgress),
    step: &mut StepFn<'_>,
) -> Result<FitSummary, SessionError> {
    if data.is_empty() {
        return Err(SessionError::Kernel {
            node: config.inputs.name(),
            op: "Fit".into(),
            message: "the data set is empty".into(),
        });
    }
    let started = Instant::now();
    let mut batches = data.batches(config.batch_size.max(1), config.seed);
    // Capped: a huge `steps` (from a remote request) must not allocate up front.
    let mut losses = Vec::with_capacity(config.steps.min(1 << 20));
    let (mut window_loss, mut window_steps, mut window_start) = (0.0, 0usize, started);
    let report_every = config.report_every.max(1);
    for done in 1..=config.steps {
        let Some(batch) = batches.next() else { break };
        let examples = batch.inputs.shape().first().copied().unwrap_or(0);
        let feed = feed_values(batch, config.label_format);
        let (loss, global_step) = step(&[(config.inputs, feed.0), (config.labels, feed.1)])?;
        losses.push(loss);
        window_loss += loss;
        window_steps += 1;
        if done % report_every == 0 || done == config.steps {
            let seconds = window_start.elapsed().as_secs_f64().max(1e-9);
            on_progress(&FitProgress {
                steps_done: done,
                steps_total: config.steps,
                global_step,
                loss: window_loss / window_steps as f64,
                examples_per_second: (window_steps * examples) as f64 / seconds,
                elapsed: started.elapsed(),
            });
            (window_loss, window_steps, window_start) = (0.0, 0, Instant::now());
        }
    }
    Ok(FitSummary {
        steps_done: losses.len(),
        losses,
        elapsed: started.elapsed(),
    })
}

/// The training split of the data set `dataset` names (see [`crate::data::DataSource`]).
pub(crate) fn load_named(dataset: &str) -> Result<Dataset, SessionError> {
    let data_error = |message: String| SessionError::Data {
        dataset: dataset.to_string(),
        message,
    };
    let source: crate::data::DataSource =
        dataset.parse().map_err(|e| data_error(format!("{e}")))?;
    Ok(source.load().map_err(|e| data_error(format!("{e}")))?.train)
}

/// Fit through any [`crate::Runner`]: the data set loaded here, one `run` per batch.
pub(crate) fn fit_by_steps(
    runner: &mut dyn crate::Runner,
    dataset: &str,
    config: &FitConfig,
    on_progress: &mut dyn FnMut(&FitProgress),
) -> Result<Option<FitProgress>, SessionError> {
    let data = load_named(dataset)?;
    let mut last = None;
    fit_loop(
        &data,
        config,
        &mut |p| {
            last = Some(p.clone());
            on_progress(p);
        },
        &mut |feeds| {
            let values = runner.run(&[config.loss, config.train], feeds)?;
            let loss = values[0].scalar_f64().unwrap_or(f64::NAN);
            Ok((loss, values[1].scalar_f64().map_or(-1, |s| s as i64)))
        },
    )?;
    Ok(last)
}

/// The (inputs, labels) feed values of a batch.
fn feed_values(batch: Batch, format: LabelFormat) -> (Tensor, Tensor) {
    match format {
        LabelFormat::OneHot => (batch.inputs, batch.one_hot),
        LabelFormat::Indices => (batch.inputs, batch.labels),
    }
}

/// Mixes the graph seed and the variable's node id (splitmix64), so each variable draws its
/// own reproducible stream.
pub(crate) fn variable_seed(graph_seed: u64, node: usize) -> u64 {
    let mut z = graph_seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(node as u64 + 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
