//! Sources and state: placeholders, constants, variables, assignments and grouping.

use super::{build, expect_inputs, graph_of, Attrs, GradContext, GradientError, Op};
#[cfg(feature = "engine")]
use super::{Context, KernelError};
use crate::error::GraphError;
use crate::graph::{AttrValue, Output, Shape, TypeShape};
#[cfg(feature = "engine")]
use crate::ops::math::Arith;
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

/// A value fed at run time.
#[derive(Debug, Clone)]
pub struct Placeholder {
    pub dtype: DType,
    pub shape: Shape,
}

impl Op for Placeholder {
    fn type_name(&self) -> &'static str {
        "Placeholder"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("dtype", AttrValue::DType(self.dtype)),
            ("shape", AttrValue::Shape(self.shape.clone())),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 0)?;
        Ok(vec![TypeShape::new(self.dtype, self.shape.clone())])
    }

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        // The executor reports a missing feed by name before any kernel runs.
        Err(KernelError::Message("placeholder was not fed".into()))
    }
}

/// A constant value stored in the graph.
#[derive(Debug, Clone)]
pub struct Const {
    pub value: Tensor,
}

impl Const {
    pub fn new(value: Tensor) -> Const {
        Const { value }
    }
}

impl Op for Const {
    fn type_name(&self) -> &'static str {
        "Const"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![("value", AttrValue::Tensor(self.value.clone()))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 0)?;
        Ok(vec![TypeShape::new(
            self.value.dtype(),
            Shape::known(self.value.shape()),
        )])
    }

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![self.value.clone()])
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![])
    }
}

/// Reads a variable's current value, held by the session.
#[derive(Debug, Clone)]
pub struct Variable {
    pub dtype: DType,
    pub shape: Shape,
}

impl Op for Variable {
    fn type_name(&self) -> &'static str {
        "Variable"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("dtype", AttrValue::DType(self.dtype)),
            ("shape", AttrValue::Shape(self.shape.clone())),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 0)?;
        Ok(vec![TypeShape::new(self.dtype, self.shape.clone())])
    }

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        ctx.variables
            .get(ctx.node)
            .cloned()
            .map(|v| vec![v])
            .ok_or(KernelError::Uninitialized(ctx.node))
    }

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![])
    }

    fn is_stateful(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignKind {
    Set,
    Add,
    Sub,
}

/// Writes its input into the variable of node `var` (or adds, or subtracts), in place when
/// no one else holds the old value; outputs the new value. The variable is named by id, not
/// wired as an input, so that reading it does not pin the old buffer.
#[derive(Debug, Clone)]
pub struct Assign {
    pub var: usize,
    pub var_type: TypeShape,
    pub kind: AssignKind,
}

impl Op for Assign {
    fn type_name(&self) -> &'static str {
        match self.kind {
            AssignKind::Set => "Assign",
            AssignKind::Add => "AssignAdd",
            AssignKind::Sub => "AssignSub",
        }
    }

    fn attrs(&self, name_of: &dyn Fn(usize) -> String) -> Attrs {
        vec![("var", AttrValue::Str(name_of(self.var)))]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        let (var, value) = (&self.var_type, &inputs[0]);
        let fits = value.shape.rank() == var.shape.rank()
            || (self.kind != AssignKind::Set && value.shape.rank() == 0);
        if var.dtype != value.dtype || !fits {
            return Err(format!(
                "variable is {var}, value is {value}: they do not fit"
            ));
        }
        Ok(vec![var.clone()])
    }

    #[cfg(feature = "engine")]
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let value = inputs[0];
        if self.kind == AssignKind::Set {
            if !self.var_type.shape.accepts(value.shape()) {
                return Err(KernelError::Message(format!(
                    "variable has shape {}, value has shape {:?}",
                    self.var_type.shape,
                    value.shape()
                )));
            }
            ctx.variables.set(self.var, value.clone());
            return Ok(vec![value.clone()]);
        }
        let var = ctx.variables.get_mut(self.var)?;
        if var.shape() != value.shape() && value.len() != 1 {
            return Err(KernelError::Message(format!(
                "variable has shape {:?}, value has shape {:?}",
                var.shape(),
                value.shape()
            )));
        }
        let add = self.kind == AssignKind::Add;
        numeric_kernel!(var.dtype(), T => {
            let src = value.as_slice::<T>()?;
            let dst = var.as_mut_slice::<T>()?;
            let step = |o: &mut T, v: T| {
                *o = if add { o.add_wrapping(v) } else { o.sub_wrapping(v) }
            };
            if src.len() == 1 {
                dst.iter_mut().for_each(|o| step(o, src[0]));
            } else {
                dst.iter_mut().zip(src).for_each(|(o, &v)| step(o, v));
            }
            Ok::<(), KernelError>(())
        })?;
        Ok(vec![var.clone()])
    }

    fn is_stateful(&self) -> bool {
        true
    }
}

fn assign_op(var: Output, value: Output, kind: AssignKind) -> Result<Output, GraphError> {
    let graph = var.graph()?;
    graph.variable_node(var)?;
    let var_type = var.type_shape()?;
    Ok(build(
        Assign {
            var: var.node(),
            var_type,
            kind,
        },
        &[value],
    ))
}

/// `var = value`; the result is the new value.
pub fn assign(var: Output, value: Output) -> Result<Output, GraphError> {
    assign_op(var, value, AssignKind::Set)
}
/// `var += value`.
pub fn assign_add(var: Output, value: Output) -> Result<Output, GraphError> {
    assign_op(var, value, AssignKind::Add)
}
/// `var -= value`.
pub fn assign_sub(var: Output, value: Output) -> Result<Output, GraphError> {
    assign_op(var, value, AssignKind::Sub)
}

/// Does nothing; runs after its control inputs. What `group` builds.
#[derive(Debug, Clone)]
pub struct NoOp;

impl Op for NoOp {
    fn type_name(&self) -> &'static str {
        "NoOp"
    }

    fn infer(&self, _: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        Ok(vec![])
    }

    #[cfg(feature = "engine")]
    fn compute(&self, _: &mut Context, _: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        Ok(vec![])
    }
}

/// One node that runs all of `ops` (fetching it returns an empty tensor).
pub fn group(ops: &[Output]) -> Output {
    let graph = ops.first().map(|&o| graph_of(o)).unwrap_or_default();
    let control = ops.iter().map(|o| o.node()).collect();
    graph.add_node(Arc::new(NoOp), vec![], control, Some("group"))
}
