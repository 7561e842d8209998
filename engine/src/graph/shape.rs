//! Inferred shapes, where a dimension may be unknown until a value is fed.

use crate::tensor::DType;
use std::fmt;

/// A shape whose rank is known and whose dimensions may be unknown (`None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<Option<usize>>);

impl Shape {
    /// From dimensions where a negative number means unknown.
    pub fn from_dims(dims: &[i64]) -> Shape {
        Shape(
            dims.iter()
                .map(|&d| (d >= 0).then_some(d as usize))
                .collect(),
        )
    }

    pub fn known(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&d| Some(d)).collect())
    }

    pub fn scalar() -> Shape {
        Shape(vec![])
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dims(&self) -> &[Option<usize>] {
        &self.0
    }

    pub fn dim(&self, axis: usize) -> Option<usize> {
        self.0.get(axis).copied().flatten()
    }

    /// All dimensions, if every one is known.
    pub fn to_known(&self) -> Option<Vec<usize>> {
        self.0.iter().copied().collect()
    }

    /// Number of elements, if known.
    pub fn num_elements(&self) -> Option<usize> {
        self.to_known().map(|d| d.iter().product())
    }

    /// Whether a concrete shape fits this one.
    pub fn accepts(&self, concrete: &[usize]) -> bool {
        self.0.len() == concrete.len()
            && self
                .0
                .iter()
                .zip(concrete)
                .all(|(want, &got)| want.is_none_or(|w| w == got))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match d {
                Some(d) => write!(f, "{d}")?,
                None => f.write_str("?")?,
            }
        }
        f.write_str("]")
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Shape {
        Shape::known(dims)
    }
}

/// The dtype and shape of one output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypeShape {
    pub dtype: DType,
    pub shape: Shape,
}

impl TypeShape {
    pub fn new(dtype: DType, shape: Shape) -> TypeShape {
        TypeShape { dtype, shape }
    }
}

impl fmt::Display for TypeShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}
