//! Training as it runs, in the terminal: a progress bar for a fit (step, loss, examples/s,
//! ETA), a spinner while a loop of runs or a cell's own chart gets points, and text charts
//! when they end; the last one kept for `:loss`. The curves come from the frontends' shared
//! model (`sluice_frontend::live`); this module only draws them. Lives on the output thread,
//! which also prints the cell's own lines (around the bars, so they do not tear them).

use crate::charts;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_frontend::live::{Curve, CurveKind, LiveEvent, Progress};
use sluice_visualizer::Series;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A loop of runs gets a chart at the end of its cell from this many points on.
const RUN_CHART_MIN_POINTS: usize = 10;

/// The curves of the last fit or loop of runs, for `:loss`.
#[derive(Debug, Clone, Default)]
pub struct LastRun {
    pub title: String,
    pub series: Vec<Series>,
}

pub type SharedLastRun = Arc<Mutex<LastRun>>;

pub struct Live {
    progress: Progress,
    /// The bar of the running fit: (its curve, the bar).
    fit: Option<(usize, ProgressBar)>,
    spinner: Option<ProgressBar>,
    last: SharedLastRun,
}

impl Live {
    pub fn new(last: SharedLastRun) -> Live {
        Live {
            progress: Progress::default(),
            fit: None,
            spinner: None,
            last,
        }
    }

    /// Whether a fit has not reported its end yet.
    pub fn fit_running(&self) -> bool {
        self.progress.fit_running()
    }

    /// A line the cell printed on stdout.
    pub fn print_out(&self, line: &str) {
        self.around_bars(|| println!("{line}"));
    }

    /// A line the cell printed on stderr.
    pub fn print_err(&self, line: &str) {
        self.around_bars(|| eprintln!("{line}"));
    }

    /// Prints without tearing a bar or spinner.
    pub fn around_bars(&self, print: impl FnOnce()) {
        match (&self.fit, &self.spinner) {
            (Some((_, bar)), _) => bar.suspend(print),
            (None, Some(spinner)) => spinner.suspend(print),
            (None, None) => print(),
        }
    }

    pub fn on_event(&mut self, event: LiveEvent) {
        let Some(index) = self.progress.on_event(event) else {
            return;
        };
        let Some(curve) = self.progress.curve(index).cloned() else {
            return;
        };
        if curve.is_fit() {
            self.fit_progress(index, &curve);
        } else if curve.points() >= 2 {
            let spinner = self.spinner.get_or_insert_with(|| {
                let spinner = ProgressBar::new_spinner();
                spinner.enable_steady_tick(Duration::from_millis(120));
                spinner
            });
            spinner.set_message(curve.summary());
        }
    }

    fn fit_progress(&mut self, index: usize, curve: &Curve) {
        if self.fit.as_ref().is_none_or(|(i, _)| *i != index) {
            if let Some((_, old)) = self.fit.take() {
                old.abandon();
            }
            if !curve.running {
                return;
            }
            self.fit = Some((index, fit_bar(curve.total.unwrap_or(0))));
        }
        let Some((_, bar)) = &self.fit else { return };
        let done = u64::try_from(curve.last_x).unwrap_or(0);
        bar.set_position(done);
        let loss = curve
            .series
            .iter()
            .find(|s| s.name == "loss")
            .and_then(|s| s.points.last())
            .map_or("-".into(), |p| format!("{:.4}", p.value));
        let speed = curve.examples_per_second.map_or("-".into(), thousands);
        bar.set_message(format!("loss {loss} · {speed} ex/s"));
        if curve.running {
            return;
        }
        // The fit ended: its line and its chart.
        let stopped = curve.ended.as_deref().filter(|e| e.starts_with("stopped"));
        match stopped {
            None => bar.finish(),
            Some(why) => bar.abandon_with_message(why.to_string()),
        }
        self.fit = None;
        let total = curve.total.map(|t| t.to_string()).unwrap_or("?".into());
        let why = stopped.map(|s| format!(" ({s})")).unwrap_or_default();
        println!(
            "fit: {}/{total} steps, final loss {loss}, {speed} examples/s{why}",
            curve.last_x
        );
        let title = format!("loss, fit of {} steps", curve.last_x);
        print!("{}", charts::loss_chart(&curve.series, &title));
        self.remember(title, curve.series.clone());
    }

    /// The cell ended: close what is still open, draw the loops' and charts' curves.
    pub fn finish_cell(&mut self) {
        if let Some((_, bar)) = self.fit.take() {
            bar.abandon_with_message("no end reported");
        }
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
        for curve in self.progress.take() {
            let wanted = match curve.kind {
                CurveKind::Runs { .. } => RUN_CHART_MIN_POINTS,
                CurveKind::Chart { .. } => 2,
                CurveKind::Fit { .. } => {
                    if curve.running {
                        let title = "loss, last fit".to_string();
                        self.remember(title, curve.series);
                    }
                    continue;
                }
            };
            if curve.points() >= wanted {
                let title = match &curve.kind {
                    CurveKind::Chart { name } => name.clone(),
                    _ => format!("the last {} runs", curve.points()),
                };
                print!("{}", charts::loss_chart(&curve.series, &title));
                self.remember(title, curve.series);
            }
        }
    }

    fn remember(&self, title: String, series: Vec<Series>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = LastRun { title, series };
    }
}

fn fit_bar(steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    let template = "{spinner:.green} step {pos}/{len} [{bar:30.cyan/blue}] {msg} ETA {eta}";
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message("loss -");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() || value < 0.0 {
        return "-".into();
    }
    sluice::graph::thousands(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::service::EngineEvent;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(12345.6), "12,346");
        assert_eq!(thousands(f64::NAN), "-");
    }

    #[test]
    fn a_fit_fills_the_last_run() {
        let last = SharedLastRun::default();
        let mut live = Live::new(last.clone());
        live.on_event(LiveEvent::Engine(EngineEvent::FitStarted {
            session: "s".into(),
            steps: 100,
            dataset: "d".into(),
        }));
        for step in [50, 100] {
            live.on_event(LiveEvent::Engine(EngineEvent::Step {
                session: "s".into(),
                step: step + 7000,
                scalars: vec![("loss".into(), 1.0 / step as f64)],
                examples_per_second: Some(1000.0),
                from_fit: true,
                steps_done: Some(step as u64),
            }));
        }
        live.on_event(LiveEvent::Engine(EngineEvent::FitEnded {
            session: "s".into(),
            steps_done: 100,
            error: None,
        }));
        assert!(!live.fit_running());
        let last = last.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(last.series.len(), 1);
        let steps: Vec<f64> = last.series[0].points.iter().map(|p| p.step).collect();
        assert_eq!(
            steps,
            vec![50.0, 100.0],
            "the fit's own steps, not the global step"
        );
    }
}
