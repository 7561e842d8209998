//! A series of (step, value) points, and the two transforms every renderer applies to it:
//! EMA smoothing and decimation to the pixel width.

/// One measurement: a training step (or any x value) and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: f64,
    pub value: f64,
}

impl Point {
    pub fn new(step: f64, value: f64) -> Point {
        Point { step, value }
    }

    fn is_finite(&self) -> bool {
        self.step.is_finite() && self.value.is_finite()
    }
}

/// A named curve, e.g. "train" or "test loss".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

impl Series {
    /// An empty series.
    pub fn new(name: impl Into<String>) -> Series {
        Series {
            name: name.into(),
            points: Vec::new(),
        }
    }

    /// A series from (step, value) pairs.
    pub fn from_pairs(
        name: impl Into<String>,
        pairs: impl IntoIterator<Item = (f64, f64)>,
    ) -> Series {
        Series {
            name: name.into(),
            points: pairs.into_iter().map(|(s, v)| Point::new(s, v)).collect(),
        }
    }

    /// Appends one point.
    pub fn push(&mut self, step: f64, value: f64) {
        self.points.push(Point::new(step, value));
    }

    /// The points worth drawing: finite ones (a NaN loss must not wreck the axes), positive
    /// ones only on a log scale, sorted by step (async workers may report out of order).
    pub(crate) fn drawable_points(&self, log_y: bool) -> Vec<Point> {
        let mut points: Vec<Point> = self
            .points
            .iter()
            .copied()
            .filter(|p| p.is_finite() && (!log_y || p.value > 0.0))
            .collect();
        if !points.is_sorted_by(|a, b| a.step <= b.step) {
            points.sort_by(|a, b| a.step.total_cmp(&b.step));
        }
        points
    }
}

/// Exponential moving average like TensorBoard's smoothing slider: `weight` in [0, 1), 0
/// means no smoothing, applied per typical step gap of `points`. Debiased, so the curve does
/// not start pulled towards zero.
pub fn ema(points: &[Point], weight: f64) -> Vec<Point> {
    ema_over_steps(points, weight, typical_gap(points))
}

/// EMA whose weight is per `base_gap` steps rather than per point, so that on one chart a
/// sparse series (test loss every 100 steps) is smoothed over the same span of steps as a
/// dense one, instead of lagging a hundred times further behind.
pub(crate) fn ema_over_steps(points: &[Point], weight: f64, base_gap: f64) -> Vec<Point> {
    let mut average = 0.0;
    let mut correction = 1.0;
    let mut previous_step: Option<f64> = None;
    points
        .iter()
        .map(|p| {
            let gaps = match previous_step {
                // Points closer than the base gap (or at the same step) still count fully.
                Some(previous) if base_gap > 0.0 => ((p.step - previous) / base_gap).max(1.0_f64),
                _ => 1.0,
            };
            previous_step = Some(p.step);
            // powf is the costly part of a long curve; most gaps are exactly one.
            let w = if gaps == 1.0 {
                weight
            } else {
                weight.powf(gaps)
            };
            average = w * average + (1.0 - w) * p.value;
            correction *= w;
            let debiased = if correction < 1.0 {
                average / (1.0 - correction)
            } else {
                p.value
            };
            Point::new(p.step, debiased)
        })
        .collect()
}

/// The median distance between consecutive steps (1 when there is none).
pub(crate) fn typical_gap(points: &[Point]) -> f64 {
    let mut gaps: Vec<f64> = points
        .windows(2)
        .map(|w| w[1].step - w[0].step)
        .filter(|g| *g > 0.0)
        .collect();
    if gaps.is_empty() {
        return 1.0;
    }
    let middle = gaps.len() / 2;
    *gaps.select_nth_unstable_by(middle, f64::total_cmp).1
}

/// Keeps, for each of `columns` pixel columns over [x_min, x_max], the first, lowest,
/// highest and last point (in step order). A line through them has the same envelope as
/// the full curve, so a million points draw as fast as a few thousand and keep their
/// spikes. `points` must be sorted by step.
pub fn decimate(points: &[Point], x_min: f64, x_max: f64, columns: usize) -> Vec<Point> {
    let columns = columns.max(1);
    if points.len() <= 4 * columns {
        return points.to_vec();
    }
    let span = x_max - x_min;
    let column_of = |x: f64| -> usize {
        if span <= 0.0 {
            return 0;
        }
        let c = ((x - x_min) / span * columns as f64).floor();
        (c.max(0.0) as usize).min(columns - 1)
    };
    let mut out = Vec::with_capacity(4 * columns);
    let mut start = 0;
    while start < points.len() {
        let column = column_of(points[start].step);
        let mut end = start + 1;
        let (mut lowest, mut highest) = (start, start);
        while end < points.len() && column_of(points[end].step) == column {
            if points[end].value < points[lowest].value {
                lowest = end;
            }
            if points[end].value > points[highest].value {
                highest = end;
            }
            end += 1;
        }
        let mut keep = [start, lowest, highest, end - 1];
        keep.sort_unstable();
        let mut previous = None;
        for index in keep {
            if previous != Some(index) {
                out.push(points[index]);
                previous = Some(index);
            }
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_of_a_constant_is_the_constant() {
        let points: Vec<Point> = (0..10).map(|i| Point::new(i as f64, 2.5)).collect();
        for p in ema(&points, 0.9) {
            assert!((p.value - 2.5).abs() < 1e-12);
        }
    }

    #[test]
    fn ema_with_zero_weight_is_the_raw_curve() {
        let points: Vec<Point> = (0..10).map(|i| Point::new(i as f64, i as f64)).collect();
        assert_eq!(ema(&points, 0.0), points);
    }

    #[test]
    fn sparse_series_smooth_over_the_same_steps() {
        let dense: Vec<Point> = (0..1000).map(|i| Point::new(i as f64, 1.0)).collect();
        let sparse: Vec<Point> = (0..10)
            .map(|i| Point::new(i as f64 * 100.0, if i < 5 { 1.0 } else { 0.0 }))
            .collect();
        // Per point, a weight of 0.9 would lag: after the drop the value stays near 0.4.
        let per_point = ema(&sparse, 0.9);
        assert!(per_point[5].value > 0.3);
        // Per dense gap, 100 steps are 100 decays: the sparse curve follows its data.
        let per_step = ema_over_steps(&sparse, 0.9, typical_gap(&dense));
        assert!(per_step[5].value < 0.01);
    }

    #[test]
    fn decimation_keeps_extremes_and_bounds_the_count() {
        let mut points: Vec<Point> = (0..100_000)
            .map(|i| Point::new(i as f64, (i as f64 * 0.01).sin()))
            .collect();
        points[54_321].value = 50.0;
        points[12_345].value = -50.0;
        let kept = decimate(&points, 0.0, 99_999.0, 500);
        assert!(kept.len() <= 2000, "{}", kept.len());
        assert!(kept.iter().any(|p| p.value == 50.0));
        assert!(kept.iter().any(|p| p.value == -50.0));
        assert_eq!(kept.first(), points.first());
        assert_eq!(kept.last(), points.last());
        assert!(kept.windows(2).all(|w| w[0].step < w[1].step));
    }

    #[test]
    fn drawable_points_drop_non_finite_and_sort() {
        let s = Series::from_pairs("s", [(2.0, 1.0), (1.0, f64::NAN), (0.0, -1.0)]);
        assert_eq!(
            s.drawable_points(false),
            vec![Point::new(0.0, -1.0), Point::new(2.0, 1.0)]
        );
        assert_eq!(s.drawable_points(true), vec![Point::new(2.0, 1.0)]);
    }
}
