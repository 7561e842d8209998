//! Printing tensors the way NumPy does: nested brackets for small ones, `...` for large ones.

use super::{Buffer, Tensor};
use std::fmt;

/// Above this many elements, each axis shows only its first and last `EDGE_ITEMS`.
const SUMMARY_THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;

impl Tensor {
    fn element_text(&self, i: usize) -> String {
        match self.buffer() {
            Buffer::F32(v) => float_text(v[i] as f64),
            Buffer::F64(v) => float_text(v[i]),
            Buffer::I32(v) => v[i].to_string(),
            Buffer::I64(v) => v[i].to_string(),
            Buffer::U8(v) => v[i].to_string(),
            Buffer::Bool(v) => if v[i] { "True" } else { "False" }.to_string(),
        }
    }

    fn write_axis(
        &self,
        out: &mut String,
        axis: usize,
        offset: usize,
        width: usize,
        summarise: bool,
    ) {
        let shape = self.shape();
        let stride: usize = shape[axis + 1..].iter().product();
        let n = shape[axis];
        let indices: Vec<Option<usize>> = if summarise && n > 2 * EDGE_ITEMS {
            (0..EDGE_ITEMS)
                .map(Some)
                .chain(std::iter::once(None))
                .chain((n - EDGE_ITEMS..n).map(Some))
                .collect()
        } else {
            (0..n).map(Some).collect()
        };
        out.push('[');
        let last_axis = axis + 1 == shape.len();
        for (k, index) in indices.iter().enumerate() {
            if k > 0 {
                if last_axis {
                    out.push(' ');
                } else {
                    let blank_lines = shape.len() - axis - 2;
                    out.push('\n');
                    for _ in 0..blank_lines {
                        out.push('\n');
                    }
                    for _ in 0..=axis {
                        out.push(' ');
                    }
                }
            }
            match index {
                None => out.push_str("..."),
                Some(i) if last_axis => {
                    let text = self.element_text(offset + i * stride);
                    out.push_str(&format!("{text:>width$}"));
                }
                Some(i) => self.write_axis(out, axis + 1, offset + i * stride, width, summarise),
            }
        }
        out.push(']');
    }
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e16 {
        format!("{v:.0}.")
    } else if v.abs() >= 1e-4 && v.abs() < 1e8 {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').to_string()
    } else {
        format!("{v:.4e}")
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rank() == 0 {
            return f.write_str(&self.element_text(0));
        }
        if self.is_empty() {
            return write!(f, "[] (shape {:?})", self.shape());
        }
        let summarise = self.len() > SUMMARY_THRESHOLD;
        let width = (0..self.len())
            .map(|i| self.element_text(i).len())
            .max()
            .unwrap_or(1);
        let mut out = String::new();
        self.write_axis(&mut out, 0, 0, width, summarise);
        f.write_str(&out)
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

    #[test]
    fn small_matrix_prints_like_numpy() {
        let t = Tensor::new(&[2, 3], vec![1.0f32, 2.5, -3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(t.to_string(), "[[ 1.  2.5 -3.]\n [ 4.   5.  6.]]");
        let i = Tensor::new(&[2, 2], vec![1i64, 20, 3, 4]).unwrap();
        assert_eq!(i.to_string(), "[[ 1 20]\n [ 3  4]]");
    }

    #[test]
    fn large_tensor_is_summarised() {
        let t = Tensor::new(&[2000], (0..2000).map(|i| i as f32).collect()).unwrap();
        let s = t.to_string();
        assert!(s.starts_with("[   0.    1.    2. ..."), "{s}");
        assert!(s.ends_with("1999.]"), "{s}");
    }
}
