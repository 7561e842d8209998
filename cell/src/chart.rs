//! Live charts a cell draws itself: points arrive as the cell runs, the chart is redrawn in
//! place (in the REPL, drawn when the cell ends).

use crate::directive;
use crate::protocol::CURVE;
use sluice::distributed::TrainEvent;

/// Adds a point to each series of the live chart `name` under the running cell.
pub fn plot(name: &str, step: u64, points: &[(&str, f64)]) {
    let values: Vec<String> = points.iter().map(|(_, v)| v.to_string()).collect();
    let step = step.to_string();
    let mut words = vec![name, step.as_str()];
    for ((series, value), text) in points.iter().zip(&values) {
        if value.is_finite() {
            words.push(series);
            words.push(text);
        }
    }
    if words.len() > 2 {
        directive(CURVE, &words);
    }
}

/// Shows a data-parallel trainer's progress as it goes: each step's loss as the series
/// `series` of the live chart `name`; lost tasks, restores and stalls as lines of text.
pub fn plot_training(name: &str, series: &str, event: &TrainEvent) {
    match event {
        TrainEvent::Step { step, loss } => plot(name, *step, &[(series, *loss)]),
        TrainEvent::Lost { tasks, message } => {
            println!("{series}: lost {} ({message})", tasks.join(", "))
        }
        TrainEvent::Stalled { missing, seconds } => {
            println!(
                "{series}: no answer from {} for {seconds:.1} s",
                missing.join(", ")
            )
        }
        TrainEvent::Restored { step, checkpoint } => match checkpoint {
            Some(path) => println!("{series}: going on from step {step} ({})", path.display()),
            None => println!("{series}: going on from step {step}"),
        },
        TrainEvent::Worker { .. } | TrainEvent::Checkpoint { .. } => {}
    }
}
