//! Histograms as TensorFlow's summary writer makes them: fixed buckets whose width grows by
//! 10% from 1e-12 to 1e20 on each side of zero (so any tensor, from tiny gradients to large
//! weights, gets fine buckets where its values are), written sparsely (runs of empty buckets
//! collapse into one). TensorBoard re-buckets them for its Histograms and Distributions tabs.

use super::proto::HistogramProto;
use crate::tensor::Tensor;
use std::sync::OnceLock;

/// TensorFlow's default bucket limits: bucket `i` holds values below `limits[i]` and at or
/// above `limits[i - 1]`.
fn default_limits() -> &'static [f64] {
    static LIMITS: OnceLock<Vec<f64>> = OnceLock::new();
    LIMITS.get_or_init(|| {
        let mut positive = Vec::new();
        let mut v = 1.0e-12;
        while v < 1.0e20 {
            positive.push(v);
            v *= 1.1;
        }
        positive.push(f64::MAX);
        let mut limits: Vec<f64> = positive.iter().rev().map(|v| -v).collect();
        limits.push(0.0);
        limits.extend(positive);
        limits
    })
}

/// The histogram of `values`' finite elements (NaN and infinities are left out, as a sum of
/// them would say nothing). None when it has no finite element.
pub fn histogram(values: &Tensor) -> Option<HistogramProto> {
    let limits = default_limits();
    let mut counts = vec![0.0f64; limits.len()];
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut num, mut sum, mut sum_squares) = (0.0, 0.0, 0.0);
    for i in 0..values.len() {
        let v = values.get_f64(i);
        if !v.is_finite() {
            continue;
        }
        let bucket = limits.partition_point(|&limit| limit <= v);
        counts[bucket.min(limits.len() - 1)] += 1.0;
        min = min.min(v);
        max = max.max(v);
        num += 1.0;
        sum += v;
        sum_squares += v * v;
    }
    if num == 0.0 {
        return None;
    }
    let mut proto = HistogramProto {
        min,
        max,
        num,
        sum,
        sum_squares,
        bucket_limit: Vec::new(),
        bucket: Vec::new(),
    };
    let mut i = 0;
    while i < counts.len() {
        let (mut limit, mut count) = (limits[i], counts[i]);
        i += 1;
        if count == 0.0 {
            while i < counts.len() && counts[i] == 0.0 {
                (limit, count) = (limits[i], counts[i]);
                i += 1;
            }
        }
        proto.bucket_limit.push(limit);
        proto.bucket.push(count);
    }
    Some(proto)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_each_value_once_below_their_limit() {
        let values = Tensor::from_vec(vec![-2.0f32, -2.0, 0.0, 0.5, 3.0, f32::NAN]);
        let h = histogram(&values).expect("finite values");
        assert_eq!((h.min, h.max, h.num, h.sum), (-2.0, 3.0, 5.0, -0.5));
        assert_eq!(h.sum_squares, 4.0 + 4.0 + 0.25 + 9.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
        assert_eq!(h.bucket_limit.len(), h.bucket.len());
        // Every non-empty bucket holds the values in [previous limit, limit).
        let mut previous = f64::NEG_INFINITY;
        let sorted = [-2.0, -2.0, 0.0, 0.5, 3.0];
        for (&limit, &count) in h.bucket_limit.iter().zip(&h.bucket) {
            let inside = sorted
                .iter()
                .filter(|&&v| v >= previous && v < limit)
                .count();
            assert_eq!(inside as f64, count, "bucket below {limit}");
            previous = limit;
        }
        assert_eq!(*h.bucket_limit.last().expect("buckets"), f64::MAX);
        // Far fewer buckets written than the 1551 that exist.
        assert!(h.bucket.len() < 12, "{} buckets", h.bucket.len());
    }

    #[test]
    fn limits_are_tensorflows() {
        let limits = default_limits();
        assert_eq!(limits.len(), 2 * (774 + 1) + 1);
        assert_eq!(limits[limits.len() / 2], 0.0);
        assert_eq!(limits[limits.len() / 2 + 1], 1e-12);
        assert!(limits.windows(2).all(|w| w[0] < w[1]));
        assert!(histogram(&Tensor::from_vec(vec![f64::INFINITY])).is_none());
    }
}
