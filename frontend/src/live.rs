//! Training as it runs, as both frontends draw it: the engine's events for the cells'
//! sessions, and the charts cells plot themselves, gathered into curves.
//!
//! - A fit is a curve of its own, over the fit's own steps (`steps_done` of `steps`), not the
//!   session's global step, which earlier fits and runs moved on.
//! - Runs of a loop (`sess.run` fetching scalars) make one curve per set of scalars fetched
//!   together, over the session's run counter: a loop that fetches the loss, and an accuracy
//!   run now and then, draw two curves, and a single evaluation draws none.
//! - A chart a cell plots (`sluice_cell::plot`) is a curve by its name.

use sluice::service::EngineEvent;
use sluice_visualizer::Series;

/// What the frontend hears about training.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// An engine event about one of the cells' sessions.
    Engine(EngineEvent),
    /// Points a cell plotted for the chart `name`.
    Chart {
        name: String,
        step: i64,
        points: Vec<(String, f64)>,
    },
}

/// What a curve follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurveKind {
    /// The `nth` fit of a session (in this cell).
    Fit { session: String, nth: usize },
    /// Runs of a session that fetched these scalars.
    Runs {
        session: String,
        scalars: Vec<String>,
    },
    /// A chart a cell plots.
    Chart { name: String },
}

/// One curve: its series and where it stands.
#[derive(Debug, Clone)]
pub struct Curve {
    pub kind: CurveKind,
    pub series: Vec<Series>,
    /// The last point's x: the fit's steps done, the run number, or the chart's step.
    pub last_x: i64,
    /// A fit's planned steps.
    pub total: Option<u64>,
    pub examples_per_second: Option<f64>,
    /// How a fit ended (`done: 1000 steps`, `stopped after 230 steps: cancelled`).
    pub ended: Option<String>,
    /// A fit still running.
    pub running: bool,
}

impl Curve {
    fn new(kind: CurveKind) -> Curve {
        Curve {
            kind,
            series: Vec::new(),
            last_x: 0,
            total: None,
            examples_per_second: None,
            ended: None,
            running: false,
        }
    }

    /// Points of the longest series.
    pub fn points(&self) -> usize {
        self.series
            .iter()
            .map(|s| s.points.len())
            .max()
            .unwrap_or(0)
    }

    /// Whether it is worth drawing: a fit or a chart from its first point, runs from their
    /// second (one evaluation is a number, not a curve).
    pub fn drawable(&self) -> bool {
        let wanted = match self.kind {
            CurveKind::Runs { .. } => 2,
            _ => 1,
        };
        self.points() >= wanted
    }

    /// What its x axis counts.
    pub fn x_label(&self) -> &'static str {
        match self.kind {
            CurveKind::Runs { .. } => "run",
            _ => "step",
        }
    }

    /// A fit's curve.
    pub fn is_fit(&self) -> bool {
        matches!(self.kind, CurveKind::Fit { .. })
    }

    /// Which session it follows, or `chart NAME` for a chart.
    pub fn source(&self) -> String {
        match &self.kind {
            CurveKind::Fit { session, .. } | CurveKind::Runs { session, .. } => session.clone(),
            CurveKind::Chart { name } => format!("chart {name}"),
        }
    }

    /// One line: where it stands and the last values (`step 300 of 1000: loss 0.31`).
    pub fn summary(&self) -> String {
        let values = self
            .series
            .iter()
            .filter_map(|s| {
                s.points
                    .last()
                    .map(|p| format!("{} {:.6}", s.name, p.value))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
        let ended = self
            .ended
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        format!("{} {}{of}: {values}{ended}", self.x_label(), self.last_x)
    }

    fn push(&mut self, x: i64, scalars: &[(String, f64)]) {
        self.last_x = x;
        for (name, value) in scalars {
            if !value.is_finite() {
                continue;
            }
            match self.series.iter_mut().find(|s| &s.name == name) {
                Some(s) => s.push(x as f64, *value),
                None => {
                    let mut s = Series::new(name.clone());
                    s.push(x as f64, *value);
                    self.series.push(s);
                }
            }
        }
    }
}

/// The curves of the running cell.
#[derive(Debug, Default)]
pub struct Progress {
    curves: Vec<Curve>,
}

impl Progress {
    /// Takes an event; returns the index of the curve it changed.
    pub fn on_event(&mut self, event: LiveEvent) -> Option<usize> {
        match event {
            LiveEvent::Chart { name, step, points } => {
                let i = self.find_or_add(CurveKind::Chart { name });
                self.curves[i].push(step, &points);
                Some(i)
            }
            LiveEvent::Engine(EngineEvent::FitStarted { session, steps, .. }) => {
                let nth = self.fits_of(&session);
                let i = self.find_or_add(CurveKind::Fit { session, nth });
                let curve = &mut self.curves[i];
                curve.total = Some(steps);
                curve.running = true;
                Some(i)
            }
            LiveEvent::Engine(EngineEvent::Step {
                session,
                step,
                scalars,
                examples_per_second,
                from_fit: true,
                steps_done,
            }) => {
                let i = self.open_fit(&session);
                let curve = &mut self.curves[i];
                // Engines that do not count a fit's steps report the global step.
                let x = steps_done
                    .and_then(|d| i64::try_from(d).ok())
                    .unwrap_or(step);
                curve.push(x, &scalars);
                if examples_per_second.is_some() {
                    curve.examples_per_second = examples_per_second;
                }
                Some(i)
            }
            LiveEvent::Engine(EngineEvent::Step {
                session,
                step,
                scalars,
                from_fit: false,
                ..
            }) => {
                if scalars.is_empty() {
                    return None;
                }
                let mut names: Vec<String> = scalars.iter().map(|(n, _)| n.clone()).collect();
                names.sort();
                let i = self.find_or_add(CurveKind::Runs {
                    session,
                    scalars: names,
                });
                self.curves[i].push(step, &scalars);
                Some(i)
            }
            LiveEvent::Engine(EngineEvent::FitEnded {
                session,
                steps_done,
                error,
            }) => {
                let i = self.open_fit(&session);
                let curve = &mut self.curves[i];
                curve.running = false;
                curve.ended = Some(match error {
                    Some(e) => format!("stopped after {steps_done} steps: {e}"),
                    None => format!("done: {steps_done} steps"),
                });
                if let Ok(done) = i64::try_from(steps_done) {
                    curve.last_x = curve.last_x.max(done);
                }
                Some(i)
            }
            LiveEvent::Engine(_) => None,
        }
    }

    pub fn curves(&self) -> &[Curve] {
        &self.curves
    }

    pub fn curve(&self, index: usize) -> Option<&Curve> {
        self.curves.get(index)
    }

    /// Whether a fit has not reported its end yet.
    pub fn fit_running(&self) -> bool {
        self.curves.iter().any(|c| c.running)
    }

    /// The cell ended: the next one starts afresh; returns this cell's curves.
    pub fn take(&mut self) -> Vec<Curve> {
        std::mem::take(&mut self.curves)
    }

    fn fits_of(&self, session: &str) -> usize {
        self.curves
            .iter()
            .filter(|c| matches!(&c.kind, CurveKind::Fit { session: s, .. } if s == session))
            .count()
    }

    /// The session's running fit, or its last one, or a new one (a fit that started before
    /// the cell's first event was seen).
    fn open_fit(&mut self, session: &str) -> usize {
        let of_session =
            |c: &Curve| matches!(&c.kind, CurveKind::Fit { session: s, .. } if s == session);
        if let Some(i) = self.curves.iter().rposition(|c| of_session(c) && c.running) {
            return i;
        }
        if let Some(i) = self.curves.iter().rposition(of_session) {
            return i;
        }
        let mut curve = Curve::new(CurveKind::Fit {
            session: session.to_string(),
            nth: 0,
        });
        curve.running = true;
        self.curves.push(curve);
        self.curves.len() - 1
    }

    fn find_or_add(&mut self, kind: CurveKind) -> usize {
        if let Some(i) = self.curves.iter().position(|c| c.kind == kind) {
            return i;
        }
        self.curves.push(Curve::new(kind));
        self.curves.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit_step(step: i64, done: u64, loss: f64) -> LiveEvent {
        LiveEvent::Engine(EngineEvent::Step {
            session: "s".into(),
            step,
            scalars: vec![("loss".into(), loss)],
            examples_per_second: Some(1000.0),
            from_fit: true,
            steps_done: Some(done),
        })
    }

    fn run(step: i64, scalars: &[(&str, f64)]) -> LiveEvent {
        LiveEvent::Engine(EngineEvent::Step {
            session: "s".into(),
            step,
            scalars: scalars.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            examples_per_second: None,
            from_fit: false,
            steps_done: None,
        })
    }

    #[test]
    fn a_fit_counts_its_own_steps() {
        let mut p = Progress::default();
        p.on_event(LiveEvent::Engine(EngineEvent::FitStarted {
            session: "s".into(),
            steps: 1000,
            dataset: "d".into(),
        }));
        // The global step runs ahead after earlier training.
        p.on_event(fit_step(29_500, 100, 0.5));
        p.on_event(fit_step(30_400, 1000, 0.3));
        p.on_event(LiveEvent::Engine(EngineEvent::FitEnded {
            session: "s".into(),
            steps_done: 1000,
            error: None,
        }));
        let fit = &p.curves()[0];
        assert_eq!(
            fit.summary(),
            "step 1000 of 1000: loss 0.300000 (done: 1000 steps)"
        );
        assert!(!p.fit_running());
    }

    #[test]
    fn runs_group_by_what_they_fetch() {
        let mut p = Progress::default();
        for step in 1..=5 {
            p.on_event(run(step, &[("xent", 1.0 / step as f64)]));
        }
        p.on_event(run(6, &[("accuracy", 0.9)]));
        p.on_event(run(7, &[]));
        let curves = p.curves();
        assert_eq!(curves.len(), 2);
        assert!(curves[0].drawable());
        assert_eq!(curves[0].x_label(), "run");
        assert!(!curves[1].drawable(), "one evaluation is not a curve");
    }

    #[test]
    fn charts_are_curves_by_name() {
        let mut p = Progress::default();
        let point = |step, v| LiveEvent::Chart {
            name: "sync vs async".into(),
            step,
            points: vec![("sync".into(), v)],
        };
        p.on_event(point(1, 2.0));
        p.on_event(point(2, 1.0));
        assert_eq!(p.curves().len(), 1);
        assert_eq!(p.curves()[0].source(), "chart sync vs async");
        assert!(p.curves()[0].summary().starts_with("step 2:"));
    }
}
