//! A y axis for log-scale curves. Values are drawn as log10(value) on a linear axis whose
//! ticks sit at decades; plotters' own log ticks crowd near 1 and label odd values.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// A linear axis over log10 values with decade ticks.
pub(crate) struct Log10Axis {
    low: f64,
    high: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Log10Axis {
    /// `low` and `high` are already in log10 space.
    pub(crate) fn new(low: f64, high: f64) -> Log10Axis {
        let (bold, light) = log_ticks(low, high);
        Log10Axis {
            low,
            high,
            bold,
            light,
        }
    }
}

impl Ranged for Log10Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let fraction = (value - self.low) / (self.high - self.low);
        (f64::from(limit.1 - limit.0) * fraction + f64::from(limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.low..self.high
    }
}

/// Ticks for a log10 axis, in log10 space: bold at decades (with 2 and 5 when the range
/// spans little), light at the other multiples. plotters' own log ticks crowd near 1.
fn log_ticks(low: f64, high: f64) -> (Vec<f64>, Vec<f64>) {
    let span = high - low;
    let bold_multiples: &[f64] = if span >= 2.0 {
        &[1.0]
    } else if span >= 0.6 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    };
    // Past eight decades, label every few decades only.
    let decade_step = (span / 8.0).ceil().max(1.0) as i32;
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    for decade in (low.floor() as i32)..=(high.ceil() as i32) {
        for multiple in 1..10 {
            let at = f64::from(decade) + f64::from(multiple).log10();
            if at < low || at > high {
                continue;
            }
            let labelled = decade.rem_euclid(decade_step) == 0
                && bold_multiples.contains(&f64::from(multiple));
            if labelled {
                bold.push(at);
            } else if span <= 6.0 {
                light.push(at);
            }
        }
    }
    (bold, light)
}

#[cfg(test)]
mod tests {
    use super::log_ticks;

    fn labels(low: f64, high: f64) -> Vec<String> {
        let (bold, _) = log_ticks(low.log10(), high.log10());
        bold.iter()
            .map(|v| crate::number_format::compact(10f64.powf(*v)))
            .collect()
    }

    #[test]
    fn decades_or_one_two_five() {
        assert_eq!(labels(0.01, 10.0), ["0.01", "0.1", "1", "10"]);
        assert_eq!(labels(0.05, 2.5), ["0.05", "0.1", "0.2", "0.5", "1", "2"]);
    }
}
