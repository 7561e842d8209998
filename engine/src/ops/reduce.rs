//! Reductions over axes (sum, mean, max), argmax, and the broadcast/sum-back pair that the
//! gradients of broadcasting ops are made of.

use super::{build, expect_inputs, Attrs, GradContext, GradientError, Op};

use crate::graph::{AttrValue, Output, Shape, TypeShape};
use crate::ops::array::cast;
use crate::ops::math::equal;

use crate::tensor::DType;

/// Resolves negative axes and "no axes means all"; the message names a bad axis.
pub(crate) fn normalize_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let r = rank as i64;
        if a < -r || a >= r {
            return Err(format!("axis {a} is out of range for rank {rank}"));
        }
        let a = if a < 0 { a + r } else { a } as usize;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
}

/// Reduces over `axes` (all axes when empty), keeping them as size 1 if `keep_dims`.
#[derive(Debug, Clone)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub axes: Vec<i64>,
    pub keep_dims: bool,
}

impl Op for Reduce {
    fn type_name(&self) -> &'static str {
        match self.kind {
            ReduceKind::Sum => "Sum",
            ReduceKind::Mean => "Mean",
            ReduceKind::Max => "Max",
        }
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("axes", AttrValue::Ints(self.axes.clone())),
            ("keep_dims", AttrValue::Bool(self.keep_dims)),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        if x.dtype == DType::Bool {
            return Err("cannot reduce bool (cast to a number first)".into());
        }
        let axes = normalize_axes(&self.axes, x.shape.rank())?;
        let dims = x
            .shape
            .dims()
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| match (axes.contains(&i), self.keep_dims) {
                (true, true) => Some(Some(1)),
                (true, false) => None,
                (false, _) => Some(d),
            })
            .collect();
        Ok(vec![TypeShape::new(x.dtype, Shape(dims))])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let (x, dy) = (g.x(0), g.dy());
        let spread = |t: Output| {
            build(
                BroadcastLike {
                    axes: self.axes.clone(),
                    keep_dims: self.keep_dims,
                },
                &[t, x],
            )
        };
        let dx = match self.kind {
            ReduceKind::Sum => spread(dy),
            ReduceKind::Mean => spread(dy) / count_like(x, &self.axes),
            ReduceKind::Max => {
                let mask = cast(equal(x, spread(g.y())), g.input_types[0].dtype);
                let ties = reduce_sum_axes(mask, &self.axes, self.keep_dims);
                mask * spread(dy / ties)
            }
        };
        Ok(vec![Some(dx)])
    }
}

/// The number of elements a mean over `axes` of `x` averages, as a scalar of x's dtype.
fn count_like(x: Output, axes: &[i64]) -> Output {
    let ones = super::math::ones_like(x);
    let full = build(
        Reduce {
            kind: ReduceKind::Sum,
            axes: axes.to_vec(),
            keep_dims: false,
        },
        &[ones],
    );
    // Any element of `full` is the count; reduce_max keeps it a scalar.
    reduce_max(full)
}

/// Broadcasts the first input (a reduction's result over `axes`) back to the second's shape.
#[derive(Debug, Clone)]
pub struct BroadcastLike {
    pub axes: Vec<i64>,
    pub keep_dims: bool,
}

impl Op for BroadcastLike {
    fn type_name(&self) -> &'static str {
        "BroadcastLike"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("axes", AttrValue::Ints(self.axes.clone())),
            ("keep_dims", AttrValue::Bool(self.keep_dims)),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        Ok(vec![TypeShape::new(
            inputs[0].dtype,
            inputs[1].shape.clone(),
        )])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let dx = build(
            Reduce {
                kind: ReduceKind::Sum,
                axes: self.axes.clone(),
                keep_dims: self.keep_dims,
            },
            &[g.dy()],
        );
        Ok(vec![Some(dx), None])
    }
}

/// Sums the first input down to the shape of the second (undoes a broadcast).
#[derive(Debug, Clone)]
pub struct SumToLike;

impl Op for SumToLike {
    fn type_name(&self) -> &'static str {
        "SumToLike"
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 2)?;
        Ok(vec![TypeShape::new(
            inputs[0].dtype,
            inputs[1].shape.clone(),
        )])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        let dy = g.dy();
        Ok(vec![Some(dy + zeros_like_of(g.x(0))), None])
    }
}

fn zeros_like_of(x: Output) -> Output {
    super::math::zeros_like(x)
}

pub fn sum_to_like(g: Output, like: Output) -> Output {
    build(SumToLike, &[g, like])
}

fn reduce(x: Output, kind: ReduceKind, axes: &[i64], keep_dims: bool) -> Output {
    build(
        Reduce {
            kind,
            axes: axes.to_vec(),
            keep_dims,
        },
        &[x],
    )
}

/// Sum of all elements.
pub fn reduce_sum(x: Output) -> Output {
    reduce(x, ReduceKind::Sum, &[], false)
}
/// Mean of all elements.
pub fn reduce_mean(x: Output) -> Output {
    reduce(x, ReduceKind::Mean, &[], false)
}
/// Largest element.
pub fn reduce_max(x: Output) -> Output {
    reduce(x, ReduceKind::Max, &[], false)
}
/// Sum over `axes` (negative counts from the end).
pub fn reduce_sum_axes(x: Output, axes: &[i64], keep_dims: bool) -> Output {
    reduce(x, ReduceKind::Sum, axes, keep_dims)
}
pub fn reduce_mean_axes(x: Output, axes: &[i64], keep_dims: bool) -> Output {
    reduce(x, ReduceKind::Mean, axes, keep_dims)
}
pub fn reduce_max_axes(x: Output, axes: &[i64], keep_dims: bool) -> Output {
    reduce(x, ReduceKind::Max, axes, keep_dims)
}

/// Index of the largest element along `axis`, as i64.
#[derive(Debug, Clone)]
pub struct ArgMax {
    pub axis: i64,
}

impl Op for ArgMax {
    fn type_name(&self) -> &'static str {
        "ArgMax"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("axis", AttrValue::Int(self.axis))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let x = &inputs[0];
        let axis = normalize_axes(&[self.axis], x.shape.rank())?[0];
        let mut dims = x.shape.dims().to_vec();
        dims.remove(axis);
        Ok(vec![TypeShape::new(DType::I64, Shape(dims))])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None])
    }
}

pub fn argmax(x: Output, axis: i64) -> Output {
    build(ArgMax { axis }, &[x])
}
