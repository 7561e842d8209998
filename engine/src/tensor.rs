//! Values: a `Tensor` is a dtype, a shape and a shared, immutable-by-default buffer.

mod budget;
mod display;
mod element;

pub use budget::{MemoryBudget, OverBudget};
pub use element::{Element, Float};

use std::sync::Arc;
use thiserror::Error;

/// The element types a tensor can hold.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    I32,
    I64,
    U8,
    Bool,
}

impl DType {
    /// Every dtype the engine has.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::Bool,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Bytes per element, as stored in memory.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 | DType::Bool => 1,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The storage behind a tensor, one variant per dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum Buffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

impl Buffer {
    pub fn dtype(&self) -> DType {
        match self {
            Buffer::F32(_) => DType::F32,
            Buffer::F64(_) => DType::F64,
            Buffer::I32(_) => DType::I32,
            Buffer::I64(_) => DType::I64,
            Buffer::U8(_) => DType::U8,
            Buffer::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Buffer::F32(v) => v.len(),
            Buffer::F64(v) => v.len(),
            Buffer::I32(v) => v.len(),
            Buffer::I64(v) => v.len(),
            Buffer::U8(v) => v.len(),
            Buffer::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A buffer of `len` zeros (false for bool).
    pub fn zeros(dtype: DType, len: usize) -> Buffer {
        match dtype {
            DType::F32 => Buffer::F32(vec![0.0; len]),
            DType::F64 => Buffer::F64(vec![0.0; len]),
            DType::I32 => Buffer::I32(vec![0; len]),
            DType::I64 => Buffer::I64(vec![0; len]),
            DType::U8 => Buffer::U8(vec![0; len]),
            DType::Bool => Buffer::Bool(vec![false; len]),
        }
    }
}

impl Buffer {
    /// A buffer of `len` zeros, or an error where the memory cannot be had (rather than the
    /// abort of a failed infallible allocation).
    pub fn try_zeros(
        dtype: DType,
        len: usize,
    ) -> Result<Buffer, std::collections::TryReserveError> {
        fn zeros<T: Clone + Default>(
            len: usize,
        ) -> Result<Vec<T>, std::collections::TryReserveError> {
            let mut v = Vec::new();
            v.try_reserve_exact(len)?;
            v.resize(len, T::default());
            Ok(v)
        }
        Ok(match dtype {
            DType::F32 => Buffer::F32(zeros(len)?),
            DType::F64 => Buffer::F64(zeros(len)?),
            DType::I32 => Buffer::I32(zeros(len)?),
            DType::I64 => Buffer::I64(zeros(len)?),
            DType::U8 => Buffer::U8(zeros(len)?),
            DType::Bool => Buffer::Bool(zeros(len)?),
        })
    }
}

/// What went wrong when making or reading a tensor.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TensorError {
    #[error("shape {shape:?} holds {expected} elements but {got} were given")]
    LengthMismatch {
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
    #[error("tensor has dtype {actual}, not the requested {requested}")]
    WrongDType { actual: DType, requested: DType },
    #[error("cannot reshape a tensor of shape {from:?} to {to:?}")]
    BadReshape { from: Vec<usize>, to: Vec<usize> },
    #[error("shape {shape:?} has more elements than a tensor can hold")]
    TooLarge { shape: Vec<usize> },
}

/// How many elements a tensor of `shape` holds; `None` where the count overflows (a shape
/// from outside can claim any dimensions: its product is never trusted unchecked).
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// An n-dimensional array of one dtype. Cloning is cheap: the buffer is shared and copied
/// only when one of the holders writes to it.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    buf: Arc<Buffer>,
}

/// `shape`'s element count, for the infallible constructors.
fn counted(shape: &[usize]) -> usize {
    match element_count(shape) {
        Some(n) => n,
        None => panic!("shape {shape:?} has more elements than a tensor can hold"),
    }
}

impl Tensor {
    /// A tensor from a shape and its elements in row-major order.
    pub fn new<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor, TensorError> {
        Tensor::from_buffer(shape, T::wrap(data))
    }

    pub fn from_buffer(shape: &[usize], buf: Buffer) -> Result<Tensor, TensorError> {
        // Every tensor's shape counts exactly its buffer's elements: kernels (the unsafe
        // matrix products among them) size their reads from shapes.
        let expected = element_count(shape).ok_or_else(|| TensorError::TooLarge {
            shape: shape.to_vec(),
        })?;
        if expected != buf.len() {
            return Err(TensorError::LengthMismatch {
                shape: shape.to_vec(),
                expected,
                got: buf.len(),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            buf: Arc::new(buf),
        })
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor {
            shape: vec![],
            buf: Arc::new(T::wrap(vec![value])),
        }
    }

    /// A rank-1 tensor holding `data`.
    pub fn from_vec<T: Element>(data: Vec<T>) -> Tensor {
        Tensor {
            shape: vec![data.len()],
            buf: Arc::new(T::wrap(data)),
        }
    }

    /// # Panics
    /// If `shape`'s element count overflows `usize` (rather than make a tensor whose shape
    /// claims more elements than it holds).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            buf: Arc::new(Buffer::zeros(dtype, counted(shape))),
        }
    }

    /// A tensor of `shape` whose every element is `value`.
    ///
    /// # Panics
    /// As [`Tensor::zeros`].
    pub fn full<T: Element>(shape: &[usize], value: T) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            buf: Arc::new(T::wrap(vec![value; counted(shape)])),
        }
    }

    pub fn dtype(&self) -> DType {
        self.buf.dtype()
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn buffer(&self) -> &Buffer {
        &self.buf
    }

    /// The elements, if the dtype is `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], TensorError> {
        T::slice(&self.buf).ok_or(TensorError::WrongDType {
            actual: self.dtype(),
            requested: T::DTYPE,
        })
    }

    /// The elements, for writing; copies the buffer first if another tensor shares it.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], TensorError> {
        let actual = self.dtype();
        T::slice_mut(Arc::make_mut(&mut self.buf))
            .map(|v| v.as_mut_slice())
            .ok_or(TensorError::WrongDType {
                actual,
                requested: T::DTYPE,
            })
    }

    /// The elements as a `Vec<T>`, if the dtype is `T`.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, TensorError> {
        self.as_slice::<T>().map(<[T]>::to_vec)
    }

    /// The single element of a tensor with one element, converted to f64.
    pub fn scalar_f64(&self) -> Option<f64> {
        (self.len() == 1).then(|| self.get_f64(0))
    }

    /// Element `i` (row-major) converted to f64, whatever the dtype.
    pub fn get_f64(&self, i: usize) -> f64 {
        match &*self.buf {
            Buffer::F32(v) => v[i] as f64,
            Buffer::F64(v) => v[i],
            Buffer::I32(v) => v[i] as f64,
            Buffer::I64(v) => v[i] as f64,
            Buffer::U8(v) => v[i] as f64,
            Buffer::Bool(v) => v[i] as u8 as f64,
        }
    }

    /// The same elements under another shape of the same size.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        if element_count(shape) != Some(self.len()) {
            return Err(TensorError::BadReshape {
                from: self.shape.clone(),
                to: shape.to_vec(),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            buf: self.buf.clone(),
        })
    }

    /// The elements converted to another dtype (bool is 0 or 1; to bool is "not zero").
    pub fn cast(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let buf = match dtype {
            DType::F32 => Buffer::F32(self.map_f64(|x| x as f32)),
            DType::F64 => Buffer::F64(self.map_f64(|x| x)),
            DType::I32 => Buffer::I32(self.map_f64(|x| x as i32)),
            DType::I64 => Buffer::I64(self.map_f64(|x| x as i64)),
            DType::U8 => Buffer::U8(self.map_f64(|x| x as u8)),
            DType::Bool => Buffer::Bool(self.map_f64(|x| x != 0.0)),
        };
        Tensor {
            shape: self.shape.clone(),
            buf: Arc::new(buf),
        }
    }

    fn map_f64<T>(&self, f: impl Fn(f64) -> T) -> Vec<T> {
        (0..self.len()).map(|i| f(self.get_f64(i))).collect()
    }

    /// Takes the buffer back when no other tensor shares it (for reuse by the executor).
    pub fn into_buffer(self) -> Option<Buffer> {
        Arc::try_unwrap(self.buf).ok()
    }

    /// An `ndarray` copy of the elements, if the dtype is `T`.
    pub fn to_ndarray<T: Element>(&self) -> Result<ndarray::ArrayD<T>, TensorError> {
        let data = self.to_vec::<T>()?;
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&self.shape), data).map_err(|_| {
            TensorError::LengthMismatch {
                shape: self.shape.clone(),
                expected: self.shape.iter().product(),
                got: self.len(),
            }
        })
    }

    /// Largest absolute difference between two tensors of the same shape, as f64.
    pub fn max_abs_diff(&self, other: &Tensor) -> Option<f64> {
        (self.shape == other.shape).then(|| {
            (0..self.len())
                .map(|i| (self.get_f64(i) - other.get_f64(i)).abs())
                .fold(0.0, f64::max)
        })
    }
}

impl<T: Element, D: ndarray::Dimension> From<ndarray::Array<T, D>> for Tensor {
    fn from(array: ndarray::Array<T, D>) -> Tensor {
        let shape = array.shape().to_vec();
        let data: Vec<T> = array.iter().copied().collect();
        Tensor {
            shape,
            buf: Arc::new(T::wrap(data)),
        }
    }
}

impl<T: Element> From<Vec<T>> for Tensor {
    fn from(data: Vec<T>) -> Tensor {
        Tensor::from_vec(data)
    }
}

impl From<f32> for Tensor {
    fn from(v: f32) -> Tensor {
        Tensor::scalar(v)
    }
}

impl From<f64> for Tensor {
    fn from(v: f64) -> Tensor {
        Tensor::scalar(v)
    }
}
