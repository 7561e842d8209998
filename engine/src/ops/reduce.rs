//! Reductions over axes (sum, mean, max), argmax, and the broadcast/sum-back pair that the
//! gradients of broadcasting ops are made of.

#[cfg(feature = "engine")]
use super::broadcast::{broadcast_to, reduce_to_shape};
use super::{build, expect_inputs, Attrs, GradContext, GradientError, Op};
#[cfg(feature = "engine")]
use super::{Context, KernelError};
use crate::graph::{AttrValue, Output, Shape, TypeShape};
use crate::ops::array::cast;
use crate::ops::math::equal;
#[cfg(feature = "engine")]
use crate::ops::math::Arith;
use crate::tensor::DType;
#[cfg(feature = "engine")]
use crate::tensor::Tensor;

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

#[cfg(feature = "engine")]
/// The input shape with reduced axes set to 1.
fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut kept = shape.to_vec();
    for &a in axes {
        kept[a] = 1;
    }
    kept
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let axes = normalize_axes(&self.axes, x.rank())?;
        let kept = kept_shape(x.shape(), &axes);
        let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let pool = &mut *ctx.pool;
        let reduced = if self.kind == ReduceKind::Mean && !x.dtype().is_float() {
            // Integers are summed in f64 so that the sum cannot wrap; the mean truncates
            // toward zero, as TensorFlow's integer mean does.
            let wide = x.cast(DType::F64);
            let mut sum = reduce_to_shape::<f64>(pool, &wide, &kept, 0.0, |a, b| a + b)?;
            let n = count.max(1) as f64;
            sum.as_mut_slice::<f64>()?.iter_mut().for_each(|v| *v /= n);
            Ok(sum.cast(x.dtype()))
        } else {
            numeric_kernel!(x.dtype(), T => match self.kind {
                ReduceKind::Sum | ReduceKind::Mean => {
                    let mut sum = reduce_to_shape::<T>(pool, x, &kept, 0 as T, Arith::add_wrapping)?;
                    if self.kind == ReduceKind::Mean {
                        let n = count.max(1) as T;
                        for v in sum.as_mut_slice::<T>()? {
                            *v /= n;
                        }
                    }
                    Ok(sum)
                }
                ReduceKind::Max => {
                    if count == 0 {
                        return Err(KernelError::Message("max of an empty axis".into()));
                    }
                    // Every output starts at the lowest value; NaN wins over any number.
                    reduce_to_shape::<T>(pool, x, &kept, <T as Arith>::LOWEST, |a, b| if b > a || b.partial_cmp(&b).is_none() { b } else { a })
                }
            })
        }?;
        let out_shape: Vec<usize> = if self.keep_dims {
            kept
        } else {
            x.shape()
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        };
        Ok(vec![reduced.reshape(&out_shape)?])
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (dy, x) = (inputs[0], inputs[1]);
        let axes = normalize_axes(&self.axes, x.rank())?;
        let kept = dy.reshape(&kept_shape(x.shape(), &axes))?;
        let out = any_kernel!(dy.dtype(), T => broadcast_to::<T>(ctx.pool, &kept, x.shape()))?;
        Ok(vec![out])
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let (g, like) = (inputs[0], inputs[1]);
        if g.shape() == like.shape() {
            return Ok(vec![g.clone()]);
        }
        // Leading axes that `like` lacks are summed away first.
        let extra = g.rank().saturating_sub(like.rank());
        let mut target = vec![1; extra];
        target.extend_from_slice(like.shape());
        let out = numeric_kernel!(g.dtype(), T => reduce_to_shape::<T>(ctx.pool, g, &target, 0 as T, Arith::add_wrapping))?;
        Ok(vec![out.reshape(like.shape())?])
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

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let x = inputs[0];
        let axis = normalize_axes(&[self.axis], x.rank())?[0];
        let shape = x.shape();
        let (outer, n): (usize, usize) = (shape[..axis].iter().product(), shape[axis]);
        let inner: usize = shape[axis + 1..].iter().product();
        if n == 0 {
            return Err(KernelError::Message("argmax over an empty axis".into()));
        }
        let mut out = ctx.pool.alloc::<i64>(outer * inner);
        numeric_kernel!(x.dtype(), T => {
            let xs = x.as_slice::<T>()?;
            for o in 0..outer {
                for i in 0..inner {
                    let mut best = 0;
                    for k in 1..n {
                        if xs[(o * n + k) * inner + i] > xs[(o * n + best) * inner + i] {
                            best = k;
                        }
                    }
                    out[o * inner + i] = best as i64;
                }
            }
            Ok::<(), KernelError>(())
        })?;
        let mut dims = shape.to_vec();
        dims.remove(axis);
        Ok(vec![Tensor::new(&dims, out)?])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![None])
    }
}

pub fn argmax(x: Output, axis: i64) -> Output {
    build(ArgMax { axis }, &[x])
}
