//! Step timelines: which kernels ran on which device and when, and the tensors that crossed
//! between devices; as SVG for notebooks, summarised as text for terminals.
//!
//! The input is plain data, [`TimelineView`]; the frontends convert a step's run metadata to
//! it. Times are shown relative to the earliest span or arrow, so clocks that count from the
//! epoch and clocks that count from the start of the step draw alike.

mod frame;
mod svg;
mod text;

pub use svg::render_timeline_svg;
pub use text::render_timeline_text;

use crate::error::{Result, VisualizerError};
use std::collections::HashMap;

/// One lane of the timeline: a device of a task (e.g. group `/job:worker/task:1`, name
/// `CPU:0`). Lanes of one group are drawn together, whatever their order in the view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaneView {
    pub group: String,
    pub name: String,
}

/// One kernel (or transfer) that ran: on lane `lane` (an index into the view's lanes), from
/// `start_us` for `dur_us` microseconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanView {
    pub lane: usize,
    pub start_us: f64,
    pub dur_us: f64,
    /// The node's name.
    pub label: String,
    /// Op family, e.g. `linalg`, `math`, `transfer`: spans are coloured by it.
    pub category: String,
    /// More text for the tooltip; may be empty.
    pub detail: String,
}

/// A tensor crossing between lanes: it leaves `from_lane` at `from_us` and arrives on
/// `to_lane` at `to_us`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArrowView {
    pub from_lane: usize,
    pub from_us: f64,
    pub to_lane: usize,
    pub to_us: f64,
    pub label: String,
}

/// One step as plain data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimelineView {
    /// Shown above the picture when not empty.
    pub title: String,
    pub lanes: Vec<LaneView>,
    pub spans: Vec<SpanView>,
    pub arrows: Vec<ArrowView>,
}

/// How to draw a timeline as SVG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineOptions {
    /// Width of the picture in pixels, 320 to 100,000.
    pub width: u32,
    /// At most this many spans are drawn (at least 1): past it the shortest are left out,
    /// and the picture says how many, so that a huge step still draws quickly.
    pub max_spans: usize,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            width: 960,
            max_spans: 5000,
        }
    }
}

impl LaneView {
    /// `worker/task:1 · CPU:0`: the group without its `/job:` prefix, then the name.
    pub(crate) fn title(&self, index: usize) -> String {
        let group = self.group.trim_start_matches('/');
        let group = group.strip_prefix("job:").unwrap_or(group);
        match (group.is_empty(), self.name.is_empty()) {
            (false, false) => format!("{group} · {}", self.name),
            (false, true) => group.to_string(),
            (true, false) => self.name.clone(),
            (true, true) => format!("lane {index}"),
        }
    }
}

impl TimelineView {
    /// Checks that every span and arrow names lanes the view has and that its times are
    /// finite (and durations not negative); an error names the first bad one by its label.
    pub fn validate(&self) -> Result<()> {
        let lanes = self.lanes.len();
        let lane_error = |lane: usize| format!("lane {lane} is out of range ({lanes} lanes)");
        for (i, span) in self.spans.iter().enumerate() {
            let bad = |reason: String| {
                Err(VisualizerError::InvalidTimeline {
                    item: format!("span {i} {:?}", span.label),
                    reason,
                })
            };
            if span.lane >= lanes {
                return bad(lane_error(span.lane));
            }
            if !span.start_us.is_finite() {
                return bad(format!("start {} µs is not finite", span.start_us));
            }
            if !(span.dur_us.is_finite() && span.dur_us >= 0.0) {
                return bad(format!(
                    "duration {} µs is not a finite, non-negative number",
                    span.dur_us
                ));
            }
            if !(span.start_us + span.dur_us).is_finite() {
                return bad("its end is past the largest time a float holds".into());
            }
        }
        for (i, arrow) in self.arrows.iter().enumerate() {
            let bad = |reason: String| {
                Err(VisualizerError::InvalidTimeline {
                    item: format!("arrow {i} {:?}", arrow.label),
                    reason,
                })
            };
            for lane in [arrow.from_lane, arrow.to_lane] {
                if lane >= lanes {
                    return bad(lane_error(lane));
                }
            }
            for (what, time) in [("departure", arrow.from_us), ("arrival", arrow.to_us)] {
                if !time.is_finite() {
                    return bad(format!("{what} {time} µs is not finite"));
                }
            }
        }
        Ok(())
    }
}

/// The time range of a (validated) view: its earliest time and how long after it the
/// latest ends.
pub(crate) struct Extent {
    pub origin: f64,
    pub length: f64,
}

pub(crate) fn extent(view: &TimelineView) -> Result<Extent> {
    let times = view
        .spans
        .iter()
        .flat_map(|s| [s.start_us, s.start_us + s.dur_us])
        .chain(view.arrows.iter().flat_map(|a| [a.from_us, a.to_us]));
    let (low, high) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
        (lo.min(t), hi.max(t))
    });
    if !(low.is_finite() && high.is_finite()) {
        return Ok(Extent {
            origin: 0.0,
            length: 0.0,
        });
    }
    let length = high - low;
    if !length.is_finite() {
        return Err(VisualizerError::InvalidTimeline {
            item: "view".into(),
            reason: "its times lie further apart than a float holds".into(),
        });
    }
    Ok(Extent {
        origin: low,
        length,
    })
}

/// Lane indices in drawing order: the lanes of one group together, groups in the order
/// they first appear, lanes in their own order within a group.
pub(crate) fn lane_order(lanes: &[LaneView]) -> Vec<usize> {
    let mut rank: HashMap<&str, usize> = HashMap::new();
    for lane in lanes {
        let next = rank.len();
        rank.entry(lane.group.as_str()).or_insert(next);
    }
    let mut order: Vec<usize> = (0..lanes.len()).collect();
    order.sort_by_key(|&i| (rank.get(lanes[i].group.as_str()).copied(), i));
    order
}

/// `text` with its middle cut out (`worker/re…sk:1 · GPU:0`) until `fits` accepts it:
/// lane titles differ mostly at their ends, in the task and the device. A third of what is
/// kept comes from the start, the rest from the end.
pub(crate) fn cut_middle(text: &str, fits: impl Fn(&str) -> bool) -> String {
    if fits(text) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (0..chars.len()).rev() {
        let head = keep / 3;
        let tail = keep - head;
        let candidate: String = chars[..head]
            .iter()
            .chain(std::iter::once(&'…'))
            .chain(&chars[chars.len() - tail..])
            .collect();
        if fits(&candidate) {
            return candidate;
        }
    }
    "…".to_string()
}

/// The busy time of one lane: the length of the union of its spans, so that kernels
/// running side by side on a GPU are not counted twice.
pub(crate) fn busy_us(spans: &[&SpanView]) -> f64 {
    let mut intervals: Vec<(f64, f64)> = spans
        .iter()
        .map(|s| (s.start_us, s.start_us + s.dur_us))
        .collect();
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut busy = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in intervals {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                busy += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    busy + current.map_or(0.0, |(s, e)| e - s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(group: &str, name: &str) -> LaneView {
        LaneView {
            group: group.into(),
            name: name.into(),
        }
    }

    #[test]
    fn lane_titles_drop_the_job_prefix() {
        assert_eq!(
            lane("/job:worker/task:1", "CPU:0").title(0),
            "worker/task:1 · CPU:0"
        );
        assert_eq!(lane("", "GPU:0").title(0), "GPU:0");
        assert_eq!(lane("", "").title(3), "lane 3");
    }

    #[test]
    fn long_titles_lose_their_middle() {
        let cut = cut_middle("worker/replica:0/task:1 · GPU:0", |t| {
            t.chars().count() <= 20
        });
        assert_eq!(cut, "worker…ask:1 · GPU:0");
        assert_eq!(cut_middle("short", |t| t.len() <= 20), "short");
        assert_eq!(cut_middle("short", |_| false), "…");
    }

    #[test]
    fn lanes_of_a_group_stay_together() {
        let lanes = [lane("a", "0"), lane("b", "0"), lane("a", "1")];
        assert_eq!(lane_order(&lanes), [0, 2, 1]);
    }

    #[test]
    fn busy_time_counts_overlaps_once() {
        let span = |start_us, dur_us| SpanView {
            start_us,
            dur_us,
            ..SpanView::default()
        };
        let spans = [span(0.0, 10.0), span(5.0, 10.0), span(20.0, 5.0)];
        let refs: Vec<&SpanView> = spans.iter().collect();
        assert_eq!(busy_us(&refs), 20.0);
    }
}
