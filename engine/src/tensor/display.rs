//! Printing tensors the way NumPy's `str(array)` does: nested brackets, floats padded to a
//! common width with a common number of decimals (or all in scientific notation when their
//! magnitudes differ a lot), lines wrapped at 75 columns, and `...` for large tensors.

use super::{Buffer, Tensor};
use std::fmt;

/// Above this many elements, each axis shows only its first and last `EDGE_ITEMS`.
const SUMMARY_THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;
/// NumPy's default `linewidth`.
const LINE_WIDTH: usize = 75;
/// NumPy's default `precision`: at most this many decimals.
const PRECISION: usize = 8;

/// One float element, kept in its own width so its shortest text is the one that round-trips
/// at that width (0.1f32 prints as `0.1`, not `0.10000000149011612`).
#[derive(Clone, Copy)]
enum Float {
    F32(f32),
    F64(f64),
}

impl Float {
    fn value(self) -> f64 {
        match self {
            Float::F32(v) => v as f64,
            Float::F64(v) => v,
        }
    }

    /// Shortest positional digits that round-trip, with at most `max_decimals` decimals:
    /// (integer part with sign, fractional part).
    fn positional(self, max_decimals: usize) -> (String, String) {
        let shortest = match self {
            Float::F32(v) => v.to_string(),
            Float::F64(v) => v.to_string(),
        };
        let text = match shortest.split_once('.') {
            Some((_, frac)) if frac.len() > max_decimals => {
                let rounded = match self {
                    Float::F32(v) => format!("{v:.max_decimals$}"),
                    Float::F64(v) => format!("{v:.max_decimals$}"),
                };
                rounded.trim_end_matches('0').to_string()
            }
            _ => shortest,
        };
        match text.split_once('.') {
            Some((int, frac)) => (int.to_string(), frac.to_string()),
            None => (text, String::new()),
        }
    }

    /// Shortest scientific digits that round-trip, with at most `max_decimals` decimals in
    /// the mantissa: (mantissa integer part with sign, mantissa fraction, exponent).
    fn scientific(self, max_decimals: usize) -> (String, String, i32) {
        let shortest = match self {
            Float::F32(v) => format!("{v:e}"),
            Float::F64(v) => format!("{v:e}"),
        };
        let (int, frac, exp) = split_scientific(&shortest);
        if frac.len() <= max_decimals {
            return (int, frac, exp);
        }
        let (int, frac, exp) = self.scientific_digits(max_decimals);
        (int, frac.trim_end_matches('0').to_string(), exp)
    }

    /// Scientific digits with exactly `decimals` decimals in the mantissa.
    fn scientific_digits(self, decimals: usize) -> (String, String, i32) {
        split_scientific(&match self {
            Float::F32(v) => format!("{v:.decimals$e}"),
            Float::F64(v) => format!("{v:.decimals$e}"),
        })
    }

    /// From this magnitude up, an array prints in scientific notation: NumPy's
    /// `10 ** min(8, finfo(dtype).precision)`.
    fn array_cutoff(self) -> f64 {
        match self {
            Float::F32(_) => 1e6,
            Float::F64(_) => 1e8,
        }
    }

    /// From this magnitude up, a lone float prints in scientific notation.
    fn scalar_cutoff(self) -> f64 {
        match self {
            Float::F32(_) => 1e6,
            Float::F64(_) => 1e16,
        }
    }

    /// The text of a lone float, like NumPy's scalar `str`: `2.0`, `0.5`, `1e-05`.
    fn scalar_text(self) -> String {
        let v = self.value();
        if !v.is_finite() {
            return non_finite_text(v).to_string();
        }
        let a = v.abs();
        if a == 0.0 || (1e-4..self.scalar_cutoff()).contains(&a) {
            let (int, frac) = self.positional(usize::MAX);
            let frac = if frac.is_empty() { "0".into() } else { frac };
            format!("{int}.{frac}")
        } else {
            let (int, frac, exp) = self.scientific(usize::MAX);
            let dot = if frac.is_empty() { "" } else { "." };
            format!("{int}{dot}{frac}e{}{:02}", sign_of(exp), exp.unsigned_abs())
        }
    }
}

/// Splits Rust's `{:e}` text (`-1.5e-5`) into mantissa integer part, fraction and exponent.
fn split_scientific(text: &str) -> (String, String, i32) {
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let exp = exp.parse().unwrap_or(0);
    match mantissa.split_once('.') {
        Some((int, frac)) => (int.to_string(), frac.to_string(), exp),
        None => (mantissa.to_string(), String::new(), exp),
    }
}

fn sign_of(exp: i32) -> char {
    if exp < 0 {
        '-'
    } else {
        '+'
    }
}

fn non_finite_text(v: f64) -> &'static str {
    if v.is_nan() {
        "nan"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// How every element of one tensor is printed; fitted to the elements that are shown.
enum Format {
    Int { width: usize },
    Bool,
    Float(FloatFormat),
}

/// NumPy's `FloatingFormat` in its default `maxprec` mode.
struct FloatFormat {
    scientific: bool,
    /// Characters before the decimal point (sign included).
    pad_left: usize,
    /// Positional: characters after the point (space-padded). Scientific: unused.
    pad_right: usize,
    /// Scientific: decimals of every mantissa (past its shortest digits, its own exact ones).
    precision: usize,
    /// Scientific: digits of every exponent.
    exp_digits: usize,
}

impl FloatFormat {
    fn fit(values: &[Float]) -> FloatFormat {
        let finite: Vec<Float> = values
            .iter()
            .copied()
            .filter(|v| v.value().is_finite())
            .collect();
        let magnitudes = finite.iter().map(|v| v.value().abs()).filter(|&a| a != 0.0);
        let (min, max) = magnitudes.fold((f64::INFINITY, 0.0f64), |(lo, hi), a| {
            (lo.min(a), hi.max(a))
        });
        let cutoff = values.first().map_or(1e8, |v| v.array_cutoff());
        let scientific = max > 0.0 && (max >= cutoff || min < 1e-4 || max / min > 1e3);
        let mut format = FloatFormat {
            scientific,
            pad_left: 0,
            pad_right: 0,
            precision: 0,
            exp_digits: 2,
        };
        if scientific {
            for v in &finite {
                let (int, frac, exp) = v.scientific(PRECISION);
                format.pad_left = format.pad_left.max(int.len());
                format.precision = format.precision.max(frac.len());
                format.exp_digits = format.exp_digits.max(exp.unsigned_abs().to_string().len());
            }
            format.pad_right = format.exp_digits + 2 + format.precision;
        } else {
            for v in &finite {
                let (int, frac) = v.positional(PRECISION);
                format.pad_left = format.pad_left.max(int.len());
                format.pad_right = format.pad_right.max(frac.len());
            }
        }
        if finite.len() != values.len() {
            let negative_inf = values.iter().any(|v| v.value() == f64::NEG_INFINITY);
            let inf_len = 3 + negative_inf as usize;
            let offset = format.pad_right + 1;
            format.pad_left = format
                .pad_left
                .max(3usize.saturating_sub(offset))
                .max(inf_len.saturating_sub(offset));
        }
        format
    }

    fn text(&self, v: Float) -> String {
        let x = v.value();
        if !x.is_finite() {
            let width = self.pad_left + self.pad_right + 1;
            return format!("{:>width$}", non_finite_text(x));
        }
        if self.scientific {
            // Digits past the shortest ones are the value's own, as NumPy's `min_digits`.
            let (int, frac, exp) = v.scientific_digits(self.precision);
            format!(
                "{int:>pad$}.{frac}e{}{:0digits$}",
                sign_of(exp),
                exp.unsigned_abs(),
                pad = self.pad_left,
                digits = self.exp_digits
            )
        } else {
            let (int, frac) = v.positional(PRECISION);
            format!(
                "{int:>left$}.{frac:<right$}",
                left = self.pad_left,
                right = self.pad_right
            )
        }
    }
}

impl Tensor {
    fn float_at(&self, i: usize) -> Option<Float> {
        match self.buffer() {
            Buffer::F32(v) => Some(Float::F32(v[i])),
            Buffer::F64(v) => Some(Float::F64(v[i])),
            _ => None,
        }
    }

    fn plain_text(&self, i: usize) -> String {
        match self.buffer() {
            Buffer::F32(v) => Float::F32(v[i]).scalar_text(),
            Buffer::F64(v) => Float::F64(v[i]).scalar_text(),
            Buffer::I32(v) => v[i].to_string(),
            Buffer::I64(v) => v[i].to_string(),
            Buffer::U8(v) => v[i].to_string(),
            Buffer::Bool(v) => if v[i] { "True" } else { "False" }.to_string(),
        }
    }

    /// Flat indices of the elements that are printed.
    fn shown_indices(&self, summarise: bool) -> Vec<usize> {
        fn walk(
            shape: &[usize],
            axis: usize,
            offset: usize,
            summarise: bool,
            out: &mut Vec<usize>,
        ) {
            if axis == shape.len() {
                out.push(offset);
                return;
            }
            let stride: usize = shape[axis + 1..].iter().product();
            for i in shown(shape[axis], summarise).into_iter().flatten() {
                walk(shape, axis + 1, offset + i * stride, summarise, out);
            }
        }
        let mut out = Vec::new();
        walk(self.shape(), 0, 0, summarise, &mut out);
        out
    }

    fn fit_format(&self, shown: &[usize]) -> Format {
        match self.buffer() {
            Buffer::Bool(_) => Format::Bool,
            Buffer::F32(_) | Buffer::F64(_) => {
                let values: Vec<Float> = shown.iter().filter_map(|&i| self.float_at(i)).collect();
                Format::Float(FloatFormat::fit(&values))
            }
            _ => Format::Int {
                width: shown
                    .iter()
                    .map(|&i| self.plain_text(i).len())
                    .max()
                    .unwrap_or(1),
            },
        }
    }

    fn element_text(&self, format: &Format, i: usize) -> String {
        match format {
            Format::Bool => format!("{:>5}", self.plain_text(i)),
            Format::Int { width } => format!("{:>width$}", self.plain_text(i)),
            Format::Float(f) => match self.float_at(i) {
                Some(v) => f.text(v),
                None => self.plain_text(i),
            },
        }
    }

    /// NumPy's `_formatArray`: the text of the sub-array at `axis` starting at `offset`.
    fn format_axis(
        &self,
        ctx: &Layout,
        axis: usize,
        offset: usize,
        indent: &str,
        width: usize,
    ) -> String {
        let shape = self.shape();
        let axes_left = shape.len() - axis;
        let n = shape[axis];
        let stride: usize = shape[axis + 1..].iter().product();
        let next_indent = format!("{indent} ");
        let next_width = width.saturating_sub(1);
        let mut s = String::new();
        let indices = shown(n, ctx.summarise);
        let last = indices.len() - 1;
        if axes_left == 1 {
            // Leave room for the closing bracket.
            let elem_width = width.saturating_sub(1);
            let mut line = indent.to_string();
            for (k, index) in indices.iter().enumerate() {
                let word = match index {
                    Some(i) => self.element_text(&ctx.format, offset + i * stride),
                    None => "...".to_string(),
                };
                extend_line(&mut s, &mut line, &word, elem_width, indent);
                if k != last {
                    line.push(' ');
                }
            }
            s.push_str(&line);
        } else {
            let separator = "\n".repeat(axes_left - 1);
            for (k, index) in indices.iter().enumerate() {
                s.push_str(indent);
                match index {
                    Some(i) => s.push_str(&self.format_axis(
                        ctx,
                        axis + 1,
                        offset + i * stride,
                        &next_indent,
                        next_width,
                    )),
                    None => s.push_str("..."),
                }
                if k != last {
                    s.push_str(&separator);
                }
            }
        }
        format!("[{}]", &s[indent.len()..])
    }
}

struct Layout {
    format: Format,
    summarise: bool,
}

/// The indices shown along an axis of length `n`; `None` stands for the `...`.
fn shown(n: usize, summarise: bool) -> Vec<Option<usize>> {
    if summarise && n > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE_ITEMS..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    }
}

/// Appends `word` to `line`, first moving to a new line if it would pass `width`.
fn extend_line(s: &mut String, line: &mut String, word: &str, width: usize, indent: &str) {
    // Wrapping a line that holds only the indent would not help.
    if line.len() + word.len() > width && line.len() > indent.len() {
        s.push_str(line.trim_end());
        s.push('\n');
        *line = indent.to_string();
    }
    line.push_str(word);
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rank() == 0 {
            return f.write_str(&self.plain_text(0));
        }
        if self.is_empty() {
            return write!(f, "[] (shape {:?})", self.shape());
        }
        let summarise = self.len() > SUMMARY_THRESHOLD;
        let shown = self.shown_indices(summarise);
        let layout = Layout {
            format: self.fit_format(&shown),
            summarise,
        };
        f.write_str(&self.format_axis(&layout, 0, 0, " ", LINE_WIDTH))
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor(dtype={}, shape={:?},\n{})",
            self.dtype(),
            self.shape(),
            self
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    fn f64s(shape: &[usize], v: Vec<f64>) -> String {
        Tensor::new(shape, v).unwrap().to_string()
    }

    // Expected strings are what NumPy 2.x's `str()` prints for the same arrays.

    #[test]
    fn small_matrix_prints_like_numpy() {
        let t = Tensor::new(&[2, 3], vec![1.0f32, 2.5, -3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(t.to_string(), "[[ 1.   2.5 -3. ]\n [ 4.   5.   6. ]]");
        let i = Tensor::new(&[2, 2], vec![1i64, 20, 3, 4]).unwrap();
        assert_eq!(i.to_string(), "[[ 1 20]\n [ 3  4]]");
        assert_eq!(f64s(&[2, 2], vec![0.0; 4]), "[[0. 0.]\n [0. 0.]]");
    }

    #[test]
    fn floats_keep_their_shortest_digits() {
        let t = Tensor::from_vec(vec![0.1f32, 0.2]);
        assert_eq!(t.to_string(), "[0.1 0.2]");
        assert_eq!(
            f64s(&[2], vec![1.0 / 3.0, 2.0 / 3.0]),
            "[0.33333333 0.66666667]"
        );
        assert_eq!(f64s(&[2], vec![-0.0, 1.0]), "[-0.  1.]");
    }

    #[test]
    fn wide_ranges_switch_to_scientific() {
        assert_eq!(f64s(&[2], vec![1e-5, 1.0]), "[1.e-05 1.e+00]");
        assert_eq!(
            f64s(&[3], vec![1.5e-5, 1.0, -2.0]),
            "[ 1.5e-05  1.0e+00 -2.0e+00]"
        );
        assert_eq!(f64s(&[2], vec![1e10, 1.0]), "[1.e+10 1.e+00]");
        assert_eq!(
            f64s(&[2], vec![123456.789, 0.5]),
            "[1.23456789e+05 5.00000000e-01]"
        );
        let t = Tensor::from_vec(vec![0.1f32, 1e-5]);
        assert_eq!(t.to_string(), "[1.e-01 1.e-05]");
        let t = Tensor::from_vec(vec![0.1f32, 1.5e-5]);
        assert_eq!(t.to_string(), "[1.0e-01 1.5e-05]");
        // f32 switches at 1e6 (its precision), f64 at 1e8.
        let t = Tensor::from_vec(vec![1234567.0f32, 2345678.0]);
        assert_eq!(t.to_string(), "[1.234567e+06 2.345678e+06]");
        assert_eq!(
            f64s(&[2], vec![1234567.0, 2345678.0]),
            "[1234567. 2345678.]"
        );
        assert_eq!(Tensor::scalar(1234567.0f32).to_string(), "1.234567e+06");
    }

    #[test]
    fn non_finite_values_and_bools() {
        assert_eq!(
            f64s(&[3], vec![f64::NAN, 1.0, f64::NEG_INFINITY]),
            "[ nan   1. -inf]"
        );
        assert_eq!(f64s(&[2], vec![f64::NAN, f64::INFINITY]), "[nan inf]");
        assert_eq!(
            Tensor::from_vec(vec![true, false]).to_string(),
            "[ True False]"
        );
    }

    #[test]
    fn scalars_print_like_numpy_scalars() {
        assert_eq!(Tensor::scalar(2.0f64).to_string(), "2.0");
        assert_eq!(Tensor::scalar(2.5f32).to_string(), "2.5");
        assert_eq!(Tensor::scalar(1e-5f64).to_string(), "1e-05");
        assert_eq!(Tensor::scalar(1e20f64).to_string(), "1e+20");
        assert_eq!(
            Tensor::scalar(1.0f64 / 3.0).to_string(),
            "0.3333333333333333"
        );
        assert_eq!(Tensor::scalar(7i64).to_string(), "7");
        assert_eq!(Tensor::scalar(true).to_string(), "True");
    }

    #[test]
    fn long_rows_wrap_at_75_columns() {
        let t = f64s(&[30], (0..30).map(f64::from).collect());
        assert_eq!(
            t,
            "[ 0.  1.  2.  3.  4.  5.  6.  7.  8.  9. 10. 11. 12. 13. 14. 15. 16. 17.\n \
             18. 19. 20. 21. 22. 23. 24. 25. 26. 27. 28. 29.]"
        );
    }

    #[test]
    fn rank_three_separates_blocks_with_a_blank_line() {
        let t = f64s(&[2, 3, 4], (0..24).map(|i| i as f64 / 4.0).collect());
        assert_eq!(
            t,
            "[[[0.   0.25 0.5  0.75]\n  [1.   1.25 1.5  1.75]\n  [2.   2.25 2.5  2.75]]\n\n \
             [[3.   3.25 3.5  3.75]\n  [4.   4.25 4.5  4.75]\n  [5.   5.25 5.5  5.75]]]"
        );
    }

    #[test]
    fn large_tensor_is_summarised() {
        let t = Tensor::new(&[2000], (0..2000).map(|i| i as f32).collect()).unwrap();
        assert_eq!(
            t.to_string(),
            "[0.000e+00 1.000e+00 2.000e+00 ... 1.997e+03 1.998e+03 1.999e+03]"
        );
        let m = Tensor::new(&[30, 100], (0..3000i64).collect()).unwrap();
        assert_eq!(
            m.to_string(),
            "[[   0    1    2 ...   97   98   99]\n [ 100  101  102 ...  197  198  199]\n \
             [ 200  201  202 ...  297  298  299]\n ...\n [2700 2701 2702 ... 2797 2798 2799]\n \
             [2800 2801 2802 ... 2897 2898 2899]\n [2900 2901 2902 ... 2997 2998 2999]]"
        );
    }
}
