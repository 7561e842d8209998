//! Live loss curves. While a cell runs, the engine reports steps (from a Fit, or from a loop
//! of runs that fetch a scalar); each session gets one display, drawn once with a display_id
//! and then redrawn in place, a few times a second at most, and always in its final state
//! when the fit or the cell ends.

use jupyter_protocol::{
    DisplayData, JupyterMessageContent, Media, MediaType, Transient, UpdateDisplayData,
};
use serde_json::json;
use sluice_visualizer::{render_curve_svg, CurveOptions, Series};
use std::time::{Duration, Instant};

/// At most this often a display is redrawn.
pub const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// What the engine reported, as far as curves care.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A session appeared (its work is cancelled on interrupt).
    SessionCreated {
        session: String,
    },
    FitStarted {
        session: String,
        steps: u64,
    },
    Step {
        session: String,
        step: i64,
        scalars: Vec<(String, f64)>,
        from_fit: bool,
    },
    FitEnded {
        session: String,
        steps_done: u64,
        error: Option<String>,
    },
}

struct Curve {
    session: String,
    display_id: String,
    series: Vec<Series>,
    last_step: i64,
    steps_total: Option<u64>,
    from_fit: bool,
    shown: bool,
    dirty: bool,
    updates: u64,
    last_drawn: Option<Instant>,
    ended: Option<String>,
}

/// The curves of the running cell.
#[derive(Default)]
pub struct LiveCurves {
    curves: Vec<Curve>,
    next_id: u64,
}

impl LiveCurves {
    /// Takes an event; returns the messages to send now.
    pub fn on_event(&mut self, event: LiveEvent, now: Instant) -> Vec<JupyterMessageContent> {
        let session = match &event {
            LiveEvent::SessionCreated { .. } => return Vec::new(),
            LiveEvent::FitStarted { session, .. }
            | LiveEvent::Step { session, .. }
            | LiveEvent::FitEnded { session, .. } => session.clone(),
        };
        let index = self.curve_index(&session);
        let curve = &mut self.curves[index];
        let mut force = false;
        match event {
            LiveEvent::SessionCreated { .. } => {}
            LiveEvent::FitStarted { steps, .. } => {
                curve.from_fit = true;
                curve.steps_total = Some(steps);
                curve.ended = None;
            }
            LiveEvent::Step {
                step,
                scalars,
                from_fit,
                ..
            } => {
                curve.from_fit |= from_fit;
                curve.last_step = step;
                for (name, value) in scalars {
                    if !value.is_finite() {
                        continue;
                    }
                    match curve.series.iter_mut().find(|s| s.name == name) {
                        Some(s) => s.push(step as f64, value),
                        None => {
                            let mut s = Series::new(name);
                            s.push(step as f64, value);
                            curve.series.push(s);
                        }
                    }
                }
            }
            LiveEvent::FitEnded {
                steps_done, error, ..
            } => {
                curve.ended = Some(match error {
                    Some(e) => format!("stopped after {steps_done} steps: {e}"),
                    None => format!("done: {steps_done} steps"),
                });
                force = true;
            }
        }
        curve.dirty = true;
        let due = force
            || curve
                .last_drawn
                .is_none_or(|t| now.duration_since(t) >= REDRAW_EVERY);
        if due {
            curve.draw(now).into_iter().collect()
        } else {
            Vec::new()
        }
    }

    /// Redraws what changed since its last drawing, once the interval has passed.
    pub fn tick(&mut self, now: Instant) -> Vec<JupyterMessageContent> {
        self.curves
            .iter_mut()
            .filter(|c| {
                c.dirty
                    && c.last_drawn
                        .is_none_or(|t| now.duration_since(t) >= REDRAW_EVERY)
            })
            .filter_map(|c| c.draw(now))
            .collect()
    }

    /// The cell ended: every curve in its final state; the next cell starts afresh.
    pub fn finish(&mut self, now: Instant) -> Vec<JupyterMessageContent> {
        let out = self
            .curves
            .iter_mut()
            .filter(|c| c.dirty)
            .filter_map(|c| {
                if !c.shown && c.from_fit {
                    // A fit that ended before its first drawing still gets its curve.
                    c.shown = c.points() > 0;
                    return c.shown.then(|| c.display(now));
                }
                c.draw(now)
            })
            .collect();
        self.curves.clear();
        out
    }

    fn curve_index(&mut self, session: &str) -> usize {
        if let Some(i) = self.curves.iter().position(|c| c.session == session) {
            return i;
        }
        self.next_id += 1;
        self.curves.push(Curve {
            session: session.to_string(),
            display_id: format!("sluice-curve-{}-{}", std::process::id(), self.next_id),
            series: Vec::new(),
            last_step: 0,
            steps_total: None,
            from_fit: false,
            shown: false,
            dirty: false,
            updates: 0,
            last_drawn: None,
            ended: None,
        });
        self.curves.len() - 1
    }
}

impl Curve {
    fn points(&self) -> usize {
        self.series
            .iter()
            .map(|s| s.points.len())
            .max()
            .unwrap_or(0)
    }

    /// The first drawing or an update, if there is something worth drawing.
    fn draw(&mut self, now: Instant) -> Option<JupyterMessageContent> {
        if !self.shown {
            // A fit shows from its first point; runs in a loop from their second.
            let wanted = if self.from_fit { 1 } else { 2 };
            if self.points() < wanted {
                return None;
            }
            self.shown = true;
            return Some(self.display(now));
        }
        self.updates += 1;
        self.dirty = false;
        self.last_drawn = Some(now);
        Some(JupyterMessageContent::UpdateDisplayData(
            UpdateDisplayData {
                data: self.media(),
                metadata: self.metadata(),
                transient: Transient {
                    display_id: Some(self.display_id.clone()),
                },
            },
        ))
    }

    fn display(&mut self, now: Instant) -> JupyterMessageContent {
        self.dirty = false;
        self.last_drawn = Some(now);
        JupyterMessageContent::DisplayData(DisplayData {
            data: self.media(),
            metadata: self.metadata(),
            transient: Some(Transient {
                display_id: Some(self.display_id.clone()),
            }),
        })
    }

    fn metadata(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "sluice".into(),
            json!({ "updates": self.updates, "last_step": self.last_step, "session": self.session }),
        );
        m
    }

    fn summary(&self) -> String {
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
        let of = self
            .steps_total
            .map(|t| format!(" of {t}"))
            .unwrap_or_default();
        let ended = self
            .ended
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        format!("step {}{of}: {values}{ended}", self.last_step)
    }

    fn media(&self) -> Media {
        let summary = self.summary();
        let options = CurveOptions {
            title: Some(summary.clone()),
            width: 640,
            height: 320,
            ..CurveOptions::default()
        };
        let mut content = vec![MediaType::Plain(summary)];
        match render_curve_svg(&self.series, &options) {
            Ok(svg) => content.push(MediaType::Svg(svg)),
            Err(e) => eprintln!("sluice-kernel: loss curve: {e}"),
        }
        Media::new(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: i64, loss: f64) -> LiveEvent {
        LiveEvent::Step {
            session: "s".into(),
            step,
            scalars: vec![("loss".into(), loss)],
            from_fit: true,
        }
    }

    #[test]
    fn one_display_then_throttled_updates_then_final_state() {
        let mut live = LiveCurves::default();
        let t0 = Instant::now();
        let first = live.on_event(step(1, 2.0), t0);
        assert!(matches!(
            &first[..],
            [JupyterMessageContent::DisplayData(_)]
        ));
        assert!(live
            .on_event(step(2, 1.5), t0 + Duration::from_millis(10))
            .is_empty());
        let later = live.tick(t0 + REDRAW_EVERY);
        assert!(matches!(
            &later[..],
            [JupyterMessageContent::UpdateDisplayData(_)]
        ));
        assert!(live.on_event(step(3, 1.0), t0 + REDRAW_EVERY).is_empty());
        let last = live.finish(t0 + REDRAW_EVERY);
        match &last[..] {
            [JupyterMessageContent::UpdateDisplayData(u)] => {
                assert!(crate::outputs::plain_text(&u.data).starts_with("step 3"));
            }
            other => panic!("expected a final update, got {other:?}"),
        }
    }

    #[test]
    fn a_single_run_shows_nothing() {
        let mut live = LiveCurves::default();
        let now = Instant::now();
        let event = LiveEvent::Step {
            session: "s".into(),
            step: 1,
            scalars: vec![("acc".into(), 0.9)],
            from_fit: false,
        };
        assert!(live.on_event(event, now).is_empty());
        assert!(live.finish(now).is_empty());
    }
}
