//! Matrix products, plain and batched. The CPU kernels (on the `gemm` crate) are in
//! `kernels::cpu::linalg`, whose `gemm_into` the convolution kernels use too.

use super::{build, expect_float, expect_inputs, Attrs, GradContext, GradientError, Op};

use crate::graph::{AttrValue, Output, Shape, TypeShape};

/// `op(a) @ op(b)` where `op` transposes the last two axes when its flag is set. Inputs of
/// rank above 2 are batches of matrices with equal leading dimensions.
#[derive(Debug, Clone)]
pub struct MatMul {
    pub transpose_a: bool,
    pub transpose_b: bool,
}

fn matrix_dims(shape: &Shape, transpose: bool) -> (Option<usize>, Option<usize>) {
    let r = shape.rank();
    let (rows, cols) = (shape.dim(r - 2), shape.dim(r - 1));
    if transpose {
        (cols, rows)
    } else {
        (rows, cols)
    }
}

impl Op for MatMul {
    fn type_name(&self) -> &'static str {
        "MatMul"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("transpose_a", AttrValue::Bool(self.transpose_a)),
            ("transpose_b", AttrValue::Bool(self.transpose_b)),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        let (a, b) = (&inputs[0], &inputs[1]);
        expect_float(a, "a")?;
        if a.dtype != b.dtype {
            return Err(format!(
                "operands have different dtypes: a is {a}, b is {b}"
            ));
        }
        if a.shape.rank() < 2 || a.shape.rank() != b.shape.rank() {
            return Err(format!(
                "needs two matrices (or batches of equal rank), got a {} and b {}",
                a.shape, b.shape
            ));
        }
        let (m, ka) = matrix_dims(&a.shape, self.transpose_a);
        let (kb, n) = matrix_dims(&b.shape, self.transpose_b);
        if let (Some(ka), Some(kb)) = (ka, kb) {
            if ka != kb {
                return Err(format!(
                    "inner dimensions do not match: a is {} (transpose_a={}), b is {} (transpose_b={})",
                    a.shape, self.transpose_a, b.shape, self.transpose_b
                ));
            }
        }
        let r = a.shape.rank();
        let mut dims = Vec::with_capacity(r);
        for i in 0..r - 2 {
            dims.push(match (a.shape.dim(i), b.shape.dim(i)) {
                (Some(x), Some(y)) if x != y => {
                    return Err(format!(
                        "batch dimensions differ: a is {}, b is {}",
                        a.shape, b.shape
                    ))
                }
                (x, y) => x.or(y),
            });
        }
        dims.push(m);
        dims.push(n);
        Ok(vec![TypeShape::new(a.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let (a, b, dc) = (g.x(0), g.x(1), g.dy());
        let mm = |x, y, tx, ty| matmul_t(x, y, tx, ty);
        let (da, db) = match (self.transpose_a, self.transpose_b) {
            (false, false) => (mm(dc, b, false, true), mm(a, dc, true, false)),
            (true, false) => (mm(b, dc, false, true), mm(a, dc, false, false)),
            (false, true) => (mm(dc, b, false, false), mm(dc, a, true, false)),
            (true, true) => (mm(b, dc, true, true), mm(dc, a, true, true)),
        };
        Ok(vec![Some(da), Some(db)])
    }
}

/// Matrix product `a @ b`.
pub fn matmul(a: Output, b: Output) -> Output {
    matmul_t(a, b, false, false)
}

/// Matrix product with either operand transposed first.
pub fn matmul_t(a: Output, b: Output, transpose_a: bool, transpose_b: bool) -> Output {
    build(
        MatMul {
            transpose_a,
            transpose_b,
        },
        &[a, b],
    )
}

/// Products of matching matrices in two batches (`[..., m, k] @ [..., k, n]`).
pub fn batch_matmul(a: Output, b: Output) -> Output {
    matmul_t(a, b, false, false)
}
