//! Sliding windows over NHWC images: the geometry shared by convolution and pooling, and the
//! patch layout (im2col) that turns a convolution into a matrix product.

/// How a window treats the image border (TensorFlow's meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pad with zeros (ignored values for pooling) so that `out = ceil(in / stride)`; the
    /// extra row or column, if the total is odd, goes after.
    Same,
    /// No padding: windows lie wholly inside the image, `out = ceil((in - k + 1) / stride)`.
    Valid,
}

impl Padding {
    /// `SAME` or `VALID`, as TensorFlow writes them.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Same => "SAME",
            Padding::Valid => "VALID",
        }
    }

    /// The padding written `SAME` or `VALID`.
    pub fn from_name(name: &str) -> Option<Padding> {
        match name {
            "SAME" => Some(Padding::Same),
            "VALID" => Some(Padding::Valid),
            _ => None,
        }
    }
}

/// Output size and padding before the first element along one spatial axis; `None` when a
/// VALID window does not fit.
pub(crate) fn window_dim(
    input: usize,
    k: usize,
    stride: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = (out.saturating_sub(1) * stride + k).saturating_sub(input);
            Some((out, total / 2))
        }
        Padding::Valid => (input >= k).then(|| ((input - k) / stride + 1, 0)),
    }
}

pub(crate) fn check_window(
    window: [usize; 2],
    strides: [usize; 2],
    what: &str,
) -> Result<(), String> {
    if window.contains(&0) || strides.contains(&0) {
        return Err(format!(
            "{what} {window:?} and strides {strides:?} must all be positive"
        ));
    }
    Ok(())
}

/// Inferred output size along one spatial axis (unknown if the input or window is).
pub(crate) fn infer_dim(
    input: Option<usize>,
    k: Option<usize>,
    stride: usize,
    padding: Padding,
    describe: impl Fn() -> String,
) -> Result<Option<usize>, String> {
    match (input, k) {
        (Some(i), Some(k)) => window_dim(i, k, stride, padding)
            .map(|(o, _)| Some(o))
            .ok_or_else(|| format!("{} with VALID padding", describe())),
        (Some(i), None) if padding == Padding::Same => Ok(Some(i.div_ceil(stride))),
        _ => Ok(None),
    }
}
