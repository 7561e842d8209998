//! Sources and state: placeholders, constants, variables, assignments and grouping.

use super::{build, expect_inputs, graph_of, Attrs, Effect, GradContext, GradientError, Op};

use crate::error::GraphError;
use crate::graph::{AttrValue, Output, Shape, TypeShape};

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

    fn effect(&self) -> Effect {
        Effect::Feed
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

    fn effect(&self) -> Effect {
        Effect::Constant
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

    fn gradient(&self, _: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![])
    }

    fn effect(&self) -> Effect {
        Effect::ReadVariable
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

    fn effect(&self) -> Effect {
        Effect::WriteVariable { var: self.var }
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
}

/// One node that runs all of `ops` (fetching it returns an empty tensor).
pub fn group(ops: &[Output]) -> Output {
    let graph = ops.first().map(|&o| graph_of(o)).unwrap_or_default();
    let control = ops.iter().map(|o| o.node()).collect();
    graph.add_node(Arc::new(NoOp), vec![], control, Some("group"))
}
