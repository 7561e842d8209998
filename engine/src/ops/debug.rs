//! Debugging ops: `check_numerics` stops a step at the first NaN or infinity and names the node.

use super::{build, expect_float, expect_inputs, Attrs, GradContext, GradientError, Op};

use crate::graph::{AttrValue, Output, TypeShape};

/// Passes its input through, or fails the step if it holds a NaN or an infinity.
#[derive(Debug, Clone)]
pub struct CheckNumerics {
    /// Names what is being checked; the session error also names the checked node.
    pub message: String,
    /// Full name of the node whose output is checked.
    pub checked: String,
}

impl Op for CheckNumerics {
    fn type_name(&self) -> &'static str {
        "CheckNumerics"
    }

    fn attrs(&self, _: &dyn Fn(usize) -> String) -> Attrs {
        vec![
            ("message", AttrValue::Str(self.message.clone())),
            ("checked", AttrValue::Str(self.checked.clone())),
        ]
    }

    fn infer(&self, inputs: &[TypeShape]) -> Result<Vec<TypeShape>, String> {
        expect_inputs(inputs, 1)?;
        expect_float(&inputs[0], "the checked value")?;
        Ok(vec![inputs[0].clone()])
    }

    fn gradient(&self, g: &GradContext) -> Result<Vec<Option<Output>>, GradientError> {
        Ok(vec![Some(check_numerics(
            g.dy(),
            &format!("gradient of {}", self.checked),
        ))])
    }
}

/// `x` unchanged, but a step fails with an error naming `x`'s node if it holds NaN or Inf.
pub fn check_numerics(x: Output, message: &str) -> Output {
    build(
        CheckNumerics {
            message: message.to_string(),
            checked: x.name(),
        },
        &[x],
    )
}
