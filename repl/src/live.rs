//! Training as it runs, in the terminal: a progress bar for a Fit (step, loss, examples/s,
//! ETA) fed by the engine's events, a text loss chart when it ends, and the last run's
//! curves kept for `:loss`. Lives on the output thread, which also prints the cell's own
//! lines (around the bar, so they do not tear it).

use crate::charts;
use indicatif::{ProgressBar, ProgressStyle};
use sluice::service::EngineEvent;
use sluice_visualizer::Series;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reports a fit makes by default, when the REPL cannot tell where a fit's steps begin.
const DEFAULT_REPORT_EVERY: i64 = 50;
/// A loop of runs gets a chart at the end of its cell from this many steps on.
const RUN_CHART_MIN_POINTS: usize = 10;

/// The curves of the last fit or loop of runs, for `:loss`.
#[derive(Debug, Clone, Default)]
pub struct LastRun {
    pub title: String,
    pub series: Vec<Series>,
}

pub type SharedLastRun = Arc<Mutex<LastRun>>;

struct FitBar {
    session: String,
    bar: ProgressBar,
    total: u64,
    /// The global step before the fit's first step.
    base: Option<i64>,
    last_step: i64,
    loss: Series,
    last_loss: f64,
    examples_per_second: f64,
}

#[derive(Default)]
struct RunTrace {
    spinner: Option<ProgressBar>,
    steps: usize,
    series: Vec<Series>,
}

pub struct Live {
    fit: Option<FitBar>,
    runs: RunTrace,
    /// The global step where each session's last fit ended.
    fit_ends: HashMap<String, i64>,
    last: SharedLastRun,
}

impl Live {
    pub fn new(last: SharedLastRun) -> Live {
        Live {
            fit: None,
            runs: RunTrace::default(),
            fit_ends: HashMap::new(),
            last,
        }
    }

    /// Whether a fit's bar is up (its end may still be on its way).
    pub fn fit_running(&self) -> bool {
        self.fit.is_some()
    }

    /// A line the cell printed on stdout.
    pub fn print_out(&self, line: &str) {
        self.around_bars(|| println!("{line}"));
    }

    /// A line the cell printed on stderr.
    pub fn print_err(&self, line: &str) {
        self.around_bars(|| eprintln!("{line}"));
    }

    fn around_bars(&self, print: impl FnOnce()) {
        match (&self.fit, &self.runs.spinner) {
            (Some(fit), _) => fit.bar.suspend(print),
            (None, Some(spinner)) => spinner.suspend(print),
            (None, None) => print(),
        }
    }

    pub fn on_event(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::FitStarted { session, steps, .. } => self.fit_started(session, steps),
            EngineEvent::Step {
                session,
                step,
                scalars,
                examples_per_second,
                from_fit: true,
                steps_done,
            } => self.fit_step(&session, step, steps_done, &scalars, examples_per_second),
            EngineEvent::Step {
                step,
                scalars,
                from_fit: false,
                ..
            } => self.run_step(step, scalars),
            EngineEvent::FitEnded {
                session,
                steps_done,
                error,
            } => self.fit_ended(&session, steps_done, error),
            _ => {}
        }
    }

    fn fit_started(&mut self, session: String, steps: u64) {
        if let Some(old) = self.fit.take() {
            old.bar.abandon();
        }
        let bar = ProgressBar::new(steps);
        let template = "{spinner:.green} step {pos}/{len} [{bar:30.cyan/blue}] {msg} ETA {eta}";
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message("loss -");
        bar.enable_steady_tick(Duration::from_millis(120));
        self.fit = Some(FitBar {
            session,
            bar,
            total: steps,
            base: None,
            last_step: 0,
            loss: Series::new("loss"),
            last_loss: f64::NAN,
            examples_per_second: 0.0,
        });
    }

    fn fit_step(
        &mut self,
        session: &str,
        step: i64,
        steps_done: Option<u64>,
        scalars: &[(String, f64)],
        eps: Option<f64>,
    ) {
        let previous_end = self.fit_ends.get(session).copied().unwrap_or(0);
        let Some(fit) = self.fit.as_mut().filter(|f| f.session == session) else {
            return;
        };
        let total = i64::try_from(fit.total).unwrap_or(i64::MAX);
        let base = *fit.base.get_or_insert_with(|| {
            // Events carry the global step: the fit began where the last one ended, unless
            // other steps ran since; then guess from the default report interval.
            if (1..=total).contains(&(step - previous_end)) {
                previous_end
            } else {
                step - total.min(DEFAULT_REPORT_EVERY)
            }
        });
        // The engine says how far the fit is; the guess from the global step is for engines
        // that do not.
        let done = steps_done
            .and_then(|d| i64::try_from(d).ok())
            .unwrap_or(step - base)
            .clamp(0, total);
        fit.last_step = step;
        if let Some((_, loss)) = scalars.iter().find(|(name, _)| name == "loss") {
            fit.loss.push(done as f64, *loss);
            fit.last_loss = *loss;
        }
        if let Some(eps) = eps {
            fit.examples_per_second = eps;
        }
        fit.bar.set_position(u64::try_from(done).unwrap_or(0));
        fit.bar.set_message(format!(
            "loss {:.4} · {} ex/s",
            fit.last_loss,
            thousands(fit.examples_per_second)
        ));
    }

    fn fit_ended(&mut self, session: &str, steps_done: u64, error: Option<String>) {
        let Some(fit) = self.fit.take_if(|f| f.session == session) else {
            return;
        };
        fit.bar.set_position(steps_done.min(fit.total));
        let end = fit.base.map_or(fit.last_step, |b| {
            b + i64::try_from(steps_done).unwrap_or(0)
        });
        self.fit_ends.insert(session.to_string(), end);
        match &error {
            None => fit.bar.finish(),
            Some(why) => fit.bar.abandon_with_message(format!("stopped: {why}")),
        }
        println!(
            "fit: {steps_done}/{} steps, final loss {:.4}, {} examples/s{}",
            fit.total,
            fit.last_loss,
            thousands(fit.examples_per_second),
            error.map(|e| format!(" ({e})")).unwrap_or_default()
        );
        let title = format!("loss, fit of {steps_done} steps");
        print!(
            "{}",
            charts::loss_chart(std::slice::from_ref(&fit.loss), &title)
        );
        self.remember(title, vec![fit.loss]);
    }

    /// Points a cell plotted itself (`sluice_notebook::plot`): shown as a loop of runs is,
    /// a spinner while they come and a chart when the cell ends.
    pub fn chart_point(&mut self, step: i64, points: Vec<(String, f64)>) {
        self.run_step(step, points);
    }

    fn run_step(&mut self, step: i64, scalars: Vec<(String, f64)>) {
        if scalars.is_empty() {
            return;
        }
        let runs = &mut self.runs;
        runs.steps += 1;
        for (name, value) in &scalars {
            match runs.series.iter_mut().find(|s| &s.name == name) {
                Some(series) => series.push(step as f64, *value),
                None => {
                    let mut series = Series::new(name.clone());
                    series.push(step as f64, *value);
                    runs.series.push(series);
                }
            }
        }
        if runs.steps >= 2 && runs.spinner.is_none() {
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(Duration::from_millis(120));
            runs.spinner = Some(spinner);
        }
        if let Some(spinner) = &runs.spinner {
            let shown: Vec<String> = scalars
                .iter()
                .take(3)
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect();
            spinner.set_message(format!("run {step} · {}", shown.join(" · ")));
        }
    }

    /// The cell ended: close what is still open.
    pub fn finish_cell(&mut self) {
        if let Some(fit) = self.fit.take() {
            fit.bar.abandon_with_message("no end reported");
            let title = "loss, last fit".to_string();
            self.remember(title, vec![fit.loss]);
        }
        let runs = std::mem::take(&mut self.runs);
        if let Some(spinner) = runs.spinner {
            spinner.finish_and_clear();
        }
        let points = runs
            .series
            .iter()
            .map(|s| s.points.len())
            .max()
            .unwrap_or(0);
        if points >= RUN_CHART_MIN_POINTS {
            let title = format!("scalars of the last {} runs", runs.steps);
            print!("{}", charts::loss_chart(&runs.series, &title));
            self.remember(title, runs.series);
        }
    }

    fn remember(&self, title: String, series: Vec<Series>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = LastRun { title, series };
    }
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() || value < 0.0 {
        return "-".into();
    }
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(12345.6), "12,346");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
        assert_eq!(thousands(f64::NAN), "-");
    }

    #[test]
    fn a_fit_fills_the_last_run() {
        let last = SharedLastRun::default();
        let mut live = Live::new(last.clone());
        live.on_event(EngineEvent::FitStarted {
            session: "s".into(),
            steps: 100,
            dataset: "d".into(),
        });
        for step in [50, 100] {
            live.on_event(EngineEvent::Step {
                session: "s".into(),
                step,
                scalars: vec![("loss".into(), 1.0 / step as f64)],
                examples_per_second: Some(1000.0),
                from_fit: true,
                steps_done: Some(step as u64),
            });
        }
        live.on_event(EngineEvent::FitEnded {
            session: "s".into(),
            steps_done: 100,
            error: None,
        });
        assert!(!live.fit_running());
        let last = last.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(last.series.len(), 1);
        let steps: Vec<f64> = last.series[0].points.iter().map(|p| p.step).collect();
        assert_eq!(steps, vec![50.0, 100.0]);
    }
}
