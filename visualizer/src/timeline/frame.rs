//! Where a timeline's parts go: lanes and their sub-rows, the time scale, axis ticks and
//! the legend, computed before anything is written.

use super::{lane_order, Extent, SpanView, TimelineOptions, TimelineView};
use crate::font::TextMeasure;
use crate::graph_svg::{LEGEND_ROW, SWATCH, TITLE_HEIGHT};
use crate::palette::{device_color, DeviceColor, UNPLACED};

pub(super) const FONT_PX: f32 = 12.0;
pub(super) const MARGIN: f64 = 12.0;
pub(super) const AXIS_HEIGHT: f64 = 26.0;
/// One sub-row of a lane; spans are a little lower so that neighbours do not touch.
pub(super) const SUBROW: f64 = 16.0;
pub(super) const LANE_PAD: f64 = 3.0;
const GROUP_GAP: f64 = 7.0;
/// Past this many overlapping levels a lane stops growing: a span then shares the level
/// that frees up first, rather than one lane taking the whole picture.
const MAX_LEVELS: usize = 24;

/// Where everything goes, computed before anything is written.
pub(super) struct Frame {
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) plot_x: f64,
    pub(super) plot_width: f64,
    pub(super) axis_top: f64,
    pub(super) lanes_top: f64,
    pub(super) lanes_bottom: f64,
    pub(super) label_width: f64,
    /// Time origin and length; the length is at least 1 µs so that scaling never divides
    /// by zero.
    pub(super) origin: f64,
    pub(super) length: f64,
    /// Lane indices from top to bottom.
    pub(super) order: Vec<usize>,
    /// Top and height of each lane, by lane index.
    pub(super) lane_rows: Vec<(f64, f64)>,
    /// Between groups, in the middle of their gap.
    pub(super) separators: Vec<f64>,
    /// The spans drawn, by index into the view's spans, with their level in their lane.
    pub(super) kept: Vec<(usize, usize)>,
    pub(super) categories: Vec<(String, DeviceColor)>,
    /// Each legend entry's x and row, below the lanes.
    pub(super) legend: Vec<(f64, usize)>,
    pub(super) legend_top: f64,
}

impl Frame {
    pub(super) fn new(
        view: &TimelineView,
        options: &TimelineOptions,
        measure: &TextMeasure,
        extent: Extent,
    ) -> Frame {
        let width = f64::from(options.width);
        let top = if view.title.is_empty() {
            0.0
        } else {
            TITLE_HEIGHT
        };
        let widest = (view.lanes.iter().enumerate())
            .map(|(i, lane)| f64::from(measure.width(&lane.title(i), FONT_PX)))
            .fold(0.0, f64::max);
        let label_width = widest.min(width * 0.35 - 2.0 * MARGIN);
        let plot_x = label_width + 2.0 * MARGIN;
        let kept = stack(&view.spans, longest(&view.spans, options.max_spans));
        let mut levels = vec![1; view.lanes.len()];
        for &(i, level) in &kept {
            levels[view.spans[i].lane] = levels[view.spans[i].lane].max(level + 1);
        }

        let lanes_top = top + AXIS_HEIGHT + 4.0;
        let mut lane_rows = vec![(0.0, 0.0); view.lanes.len()];
        let mut separators = Vec::new();
        let mut y = lanes_top;
        let mut previous_group: Option<&str> = None;
        let order = lane_order(&view.lanes);
        for &lane in &order {
            let group = view.lanes[lane].group.as_str();
            if previous_group.is_some_and(|g| g != group) {
                separators.push(y + GROUP_GAP / 2.0);
                y += GROUP_GAP;
            }
            previous_group = Some(group);
            let height = 2.0 * LANE_PAD + SUBROW * levels[lane] as f64;
            lane_rows[lane] = (y, height);
            y += height;
        }
        let lanes_bottom = y;
        let omitted_height = if kept.len() < view.spans.len() {
            26.0
        } else {
            0.0
        };

        let categories = categories(&view.spans);
        let legend_top = lanes_bottom + omitted_height + 16.0;
        let mut legend = Vec::with_capacity(categories.len());
        let first_x = MARGIN + f64::from(measure.width("Categories", FONT_PX)) * 1.1 + 14.0;
        let (mut x, mut row) = (first_x, 0);
        for (label, _) in &categories {
            let entry = SWATCH + 6.0 + f64::from(measure.width(label, FONT_PX)) + 18.0;
            if x > first_x && x + entry > width - MARGIN {
                (x, row) = (first_x, row + 1);
            }
            legend.push((x, row));
            x += entry;
        }
        let legend_rows = legend.last().map_or(0, |&(_, row)| row + 1);
        Frame {
            width,
            height: legend_top + LEGEND_ROW * legend_rows as f64 + 8.0,
            plot_x,
            plot_width: width - plot_x - MARGIN * 1.5,
            axis_top: top,
            lanes_top,
            lanes_bottom,
            label_width,
            origin: extent.origin,
            length: if extent.length > 0.0 {
                extent.length
            } else {
                1.0
            },
            order,
            lane_rows,
            separators,
            kept,
            categories,
            legend,
            legend_top,
        }
    }

    pub(super) fn x(&self, time_us: f64) -> f64 {
        self.plot_x + (time_us - self.origin) / self.length * self.plot_width
    }

    pub(super) fn lane_middle(&self, lane: usize) -> f64 {
        self.lane_rows
            .get(lane)
            .map_or(self.lanes_top, |&(top, height)| top + height / 2.0)
    }

    pub(super) fn color(&self, category: &str) -> DeviceColor {
        self.categories
            .iter()
            .find(|(c, _)| c == category || (category.is_empty() && c == NO_CATEGORY))
            .map_or(UNPLACED, |(_, color)| *color)
    }
}

/// Legend label for spans without a category.
pub(super) const NO_CATEGORY: &str = "(none)";

/// The distinct categories in sorted order, so that colours do not depend on the order the
/// spans come in; spans without a category are white.
fn categories(spans: &[SpanView]) -> Vec<(String, DeviceColor)> {
    let mut names: Vec<&str> = spans.iter().map(|s| s.category.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let unnamed = names.first() == Some(&"");
    let mut entries: Vec<(String, DeviceColor)> = names
        .into_iter()
        .filter(|n| !n.is_empty())
        .enumerate()
        .map(|(i, n)| (n.to_string(), device_color(i)))
        .collect();
    if unnamed {
        entries.push((NO_CATEGORY.to_string(), UNPLACED));
    }
    entries
}

/// The indices of the `max` longest spans, in the view's order.
fn longest(spans: &[SpanView], max: usize) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..spans.len()).collect();
    if spans.len() > max {
        indices.sort_by(|&a, &b| spans[b].dur_us.total_cmp(&spans[a].dur_us).then(a.cmp(&b)));
        indices.truncate(max);
        indices.sort_unstable();
    }
    indices
}

/// Gives each span the lowest level of its lane that is free when it starts, so that
/// overlapping spans never cover each other.
fn stack(spans: &[SpanView], kept: Vec<usize>) -> Vec<(usize, usize)> {
    let mut by_start = kept;
    by_start.sort_by(|&a, &b| {
        let (a, b) = (&spans[a], &spans[b]);
        a.lane
            .cmp(&b.lane)
            .then(a.start_us.total_cmp(&b.start_us))
            .then(b.dur_us.total_cmp(&a.dur_us))
    });
    let mut placed = Vec::with_capacity(by_start.len());
    let mut level_ends: Vec<f64> = Vec::new();
    let mut lane = None;
    for i in by_start {
        let span = &spans[i];
        if lane != Some(span.lane) {
            lane = Some(span.lane);
            level_ends.clear();
        }
        let free = level_ends.iter().position(|&end| end <= span.start_us);
        let level = match free {
            Some(level) => level,
            None if level_ends.len() < MAX_LEVELS => {
                level_ends.push(f64::NEG_INFINITY);
                level_ends.len() - 1
            }
            None => (0..level_ends.len())
                .min_by(|&a, &b| level_ends[a].total_cmp(&level_ends[b]))
                .unwrap_or(0),
        };
        if let Some(end) = level_ends.get_mut(level) {
            *end = end.max(span.start_us + span.dur_us);
        }
        placed.push((i, level));
    }
    placed
}

/// Round tick times about every 80 px (at least three intervals' worth), and the unit to
/// label them in.
pub(super) fn ticks(length: f64, plot_width: f64) -> (Vec<f64>, f64, &'static str) {
    let wanted = (plot_width / 80.0).max(3.0);
    let raw = length / wanted;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let count = (length / step + 1e-9).floor() as usize;
    let (unit, name) = if step >= 1e5 {
        (1e6, "s")
    } else if step >= 100.0 {
        (1e3, "ms")
    } else {
        (1.0, "µs")
    };
    ((0..=count).map(|i| i as f64 * step).collect(), unit, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        let (times, unit, name) = ticks(10_000.0, 800.0);
        assert_eq!((unit, name), (1e3, "ms"));
        assert_eq!(times.first(), Some(&0.0));
        assert!(times
            .windows(2)
            .all(|w| (w[1] - w[0] - 1000.0).abs() < 1e-6));
        let (times, _, name) = ticks(37.0, 800.0);
        assert_eq!(name, "µs");
        assert_eq!(times.last(), Some(&35.0));
    }

    #[test]
    fn overlapping_spans_stack_and_others_share() {
        let span = |lane, start_us, dur_us| SpanView {
            lane,
            start_us,
            dur_us,
            ..SpanView::default()
        };
        let spans = [
            span(0, 0.0, 10.0),
            span(0, 5.0, 10.0),
            span(0, 10.0, 2.0),
            span(1, 5.0, 1.0),
        ];
        let mut placed = stack(&spans, vec![0, 1, 2, 3]);
        placed.sort_unstable();
        assert_eq!(placed, [(0, 0), (1, 1), (2, 0), (3, 0)]);
    }
}
