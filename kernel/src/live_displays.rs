//! Live curves in the notebook. While a cell runs, each curve (see
//! `sluice_frontend::live`: a fit, a loop of runs, a chart the cell plots) gets one display,
//! drawn once with a display_id and then redrawn in place, a few times a second at most, and
//! always in its final state when the fit or the cell ends.

use crate::outputs::plain_text;
use jupyter_protocol::{
    DisplayData, JupyterMessageContent, Media, MediaType, Transient, UpdateDisplayData,
};
use serde_json::json;
use sluice_frontend::live::{Curve, LiveEvent, Progress};
use sluice_visualizer::{render_curve_svg, CurveOptions};
use std::time::{Duration, Instant};

/// At most this often a display is redrawn.
pub const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// A curve's display.
#[derive(Default)]
struct Display {
    id: String,
    shown: bool,
    dirty: bool,
    updates: u64,
    last_drawn: Option<Instant>,
}

/// The displays of the running cell's curves.
#[derive(Default)]
pub struct LiveDisplays {
    progress: Progress,
    displays: Vec<Display>,
    next_id: u64,
}

impl LiveDisplays {
    /// Takes an event; returns the messages to send now.
    pub fn on_event(&mut self, event: LiveEvent, now: Instant) -> Vec<JupyterMessageContent> {
        let force = matches!(
            &event,
            LiveEvent::Engine(sluice::service::EngineEvent::FitEnded { .. })
        );
        let Some(index) = self.progress.on_event(event) else {
            return Vec::new();
        };
        while self.displays.len() <= index {
            self.next_id += 1;
            self.displays.push(Display {
                id: format!("sluice-curve-{}-{}", std::process::id(), self.next_id),
                ..Display::default()
            });
        }
        self.displays[index].dirty = true;
        let due = force || self.displays[index].due(now);
        if due {
            self.draw(index, now).into_iter().collect()
        } else {
            Vec::new()
        }
    }

    /// Redraws what changed since its last drawing, once the interval has passed.
    pub fn tick(&mut self, now: Instant) -> Vec<JupyterMessageContent> {
        let due: Vec<usize> = (0..self.displays.len())
            .filter(|&i| self.displays[i].dirty && self.displays[i].due(now))
            .collect();
        due.into_iter().filter_map(|i| self.draw(i, now)).collect()
    }

    /// Whether a fit has not reported its end yet.
    pub fn fit_running(&self) -> bool {
        self.progress.fit_running()
    }

    /// The cell ended: every curve in its final state; the next cell starts afresh.
    pub fn finish(&mut self, now: Instant) -> Vec<JupyterMessageContent> {
        let dirty: Vec<usize> = (0..self.displays.len())
            .filter(|&i| self.displays[i].dirty)
            .collect();
        let out = dirty
            .into_iter()
            .filter_map(|i| self.draw(i, now))
            .collect();
        self.progress.take();
        self.displays.clear();
        out
    }

    /// The first drawing or an update, if there is something worth drawing.
    fn draw(&mut self, index: usize, now: Instant) -> Option<JupyterMessageContent> {
        let curve = self.progress.curve(index)?;
        let display = self.displays.get_mut(index)?;
        if !display.shown && !curve.drawable() {
            return None;
        }
        display.dirty = false;
        display.last_drawn = Some(now);
        let data = media(curve);
        if !display.shown {
            display.shown = true;
            return Some(JupyterMessageContent::DisplayData(DisplayData {
                data,
                metadata: metadata(curve, display.updates),
                transient: Some(Transient {
                    display_id: Some(display.id.clone()),
                }),
            }));
        }
        display.updates += 1;
        Some(JupyterMessageContent::UpdateDisplayData(
            UpdateDisplayData {
                data,
                metadata: metadata(curve, display.updates),
                transient: Transient {
                    display_id: Some(display.id.clone()),
                },
            },
        ))
    }
}

impl Display {
    fn due(&self, now: Instant) -> bool {
        self.last_drawn
            .is_none_or(|t| now.duration_since(t) >= REDRAW_EVERY)
    }
}

fn metadata(curve: &Curve, updates: u64) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "sluice".into(),
        json!({ "updates": updates, "last_step": curve.last_x, "session": curve.source() }),
    );
    m
}

/// The curve's summary as text, and its chart as SVG.
fn media(curve: &Curve) -> Media {
    let summary = curve.summary();
    let y_label = match curve.series.as_slice() {
        [only] => only.name.clone(),
        _ => "value".into(),
    };
    let options = CurveOptions {
        title: Some(summary.clone()),
        width: 640,
        height: 320,
        x_label: curve.x_label().into(),
        y_label,
        ..CurveOptions::default()
    };
    let mut content = vec![MediaType::Plain(summary)];
    match render_curve_svg(&curve.series, &options) {
        Ok(svg) => content.push(MediaType::Svg(svg)),
        Err(e) => tracing::warn!("drawing a live curve: {e}"),
    }
    Media::new(content)
}

/// The plain text of a live display (for tests).
pub fn summary_of(content: &JupyterMessageContent) -> Option<String> {
    match content {
        JupyterMessageContent::DisplayData(d) => Some(plain_text(&d.data)),
        JupyterMessageContent::UpdateDisplayData(u) => Some(plain_text(&u.data)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::service::EngineEvent;

    fn step(step: i64, loss: f64) -> LiveEvent {
        LiveEvent::Engine(EngineEvent::Step {
            session: "s".into(),
            step: step + 5000,
            scalars: vec![("loss".into(), loss)],
            examples_per_second: None,
            from_fit: true,
            steps_done: Some(step as u64),
        })
    }

    #[test]
    fn one_display_then_throttled_updates_then_final_state() {
        let mut live = LiveDisplays::default();
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
        let text = last.first().and_then(summary_of).unwrap_or_default();
        assert!(text.starts_with("step 3"), "{text}");
    }

    #[test]
    fn a_single_run_shows_nothing() {
        let mut live = LiveDisplays::default();
        let now = Instant::now();
        let event = LiveEvent::Engine(EngineEvent::Step {
            session: "s".into(),
            step: 1,
            scalars: vec![("acc".into(), 0.9)],
            examples_per_second: None,
            from_fit: false,
            steps_done: None,
        });
        assert!(live.on_event(event, now).is_empty());
        assert!(live.finish(now).is_empty());
    }
}
