//! NumPy broadcasting: the shape rule of inference (the element loops are in
//! `kernels::cpu::broadcast`).

use crate::graph::Shape;

/// The broadcast of two inferred shapes, or a message naming both.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Result<Shape, String> {
    let rank = a.rank().max(b.rank());
    let dim = |s: &Shape, i: usize| -> Option<Option<usize>> {
        let offset = rank - s.rank();
        if i < offset {
            Some(Some(1))
        } else {
            Some(s.dims()[i - offset])
        }
    };
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let (x, y) = (dim(a, i).flatten(), dim(b, i).flatten());
        out.push(match (x, y) {
            (Some(x), Some(y)) if x == y => Some(x),
            (Some(1), y) => y,
            (x, Some(1)) => x,
            (Some(x), Some(y)) => {
                return Err(format!(
                    "shapes {a} and {b} cannot be broadcast together (dimension {x} vs {y})"
                ))
            }
            (None, Some(y)) => Some(y),
            (Some(x), None) => Some(x),
            (None, None) => None,
        });
    }
    Ok(Shape(out))
}
