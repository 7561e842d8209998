//! What the executor checks around each kernel: the feeds, the sizes of the outputs before the
//! kernel runs (the memory budget), a panic inside it, and its error, named by node.

use super::values::Value;
use super::{Step, StepKernel};
use crate::dump::FailureDumps;
use crate::error::SessionError;
use crate::graph::{Graph, TypeShape};
use crate::kernels::KernelError;
use crate::tensor::{MemoryBudget, Tensor};

/// The value in `slot`, which an earlier step must have computed.
pub(super) fn input<'a>(
    slots: &'a mut [Option<Value>],
    slot: usize,
    failed: &impl Fn(String) -> SessionError,
) -> Result<&'a mut Value, SessionError> {
    slots[slot]
        .as_mut()
        .ok_or_else(|| failed("an input was not computed".into()))
}

pub(super) fn check_feed(
    name: &str,
    declared: &TypeShape,
    value: &Tensor,
) -> Result<(), SessionError> {
    if value.dtype() != declared.dtype {
        return Err(SessionError::FeedDType {
            node: name.to_string(),
            fed: value.dtype(),
            declared: declared.dtype,
        });
    }
    if !declared.shape.accepts(value.shape()) {
        return Err(SessionError::FeedShape {
            node: name.to_string(),
            fed: value.shape().to_vec(),
            declared: declared.shape.to_string(),
        });
    }
    Ok(())
}

/// Refuses, before its kernel runs, an output larger than the memory budget: the sizes an op
/// computes from attributes and input shapes (a one_hot's depth, a product's rows times
/// columns) are checked here, so no kernel allocates past the budget.
pub(super) fn check_output_sizes(
    step: &Step,
    slots: &[Option<Value>],
    budget: MemoryBudget,
) -> Result<(), SessionError> {
    let over = |error| SessionError::OverBudget {
        node: step.name.clone(),
        error,
    };
    if let Some(known) = &step.known_outputs {
        for (dtype, shape) in known {
            budget.check(*dtype, shape).map_err(over)?;
        }
        return Ok(());
    }
    let inputs: Option<Vec<TypeShape>> = (step.inputs.iter())
        .map(|&s| slots.get(s)?.as_ref()?.type_shape())
        .collect();
    // A fused step's op is one of several; inputs the op refuses are the kernel's to name.
    let outputs = match (&step.kernel, inputs) {
        (StepKernel::Fused(_), _) | (_, None) => return Ok(()),
        (_, Some(inputs)) => match step.op.infer(&inputs) {
            Ok(outputs) => outputs,
            Err(_) => return Ok(()),
        },
    };
    for out in outputs {
        if let Some(shape) = out.shape.to_known() {
            budget.check(out.dtype, &shape).map_err(over)?;
        }
    }
    Ok(())
}

/// Runs a kernel, turning a panic in it into an error that names the node: the session (and
/// the engine serving it) stays usable.
pub(super) fn caught<T>(
    step: &Step,
    inject: bool,
    kernel: impl FnOnce() -> T,
) -> Result<T, SessionError> {
    let run = || {
        if inject {
            panic!("a panic injected by {}", crate::session::PANIC_IN_NODE_ENV);
        }
        kernel()
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).map_err(|payload| {
        let message = (payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no message".to_string());
        SessionError::Internal {
            node: step.name.clone(),
            op: step.op.type_name().into(),
            message,
        }
    })
}

pub(super) fn kernel_error(e: KernelError, step: &Step, graph: &Graph) -> SessionError {
    match e {
        KernelError::OverBudget(error) => SessionError::OverBudget {
            node: step.name.clone(),
            error,
        },
        KernelError::Cancelled => SessionError::Cancelled,
        KernelError::DeadlineExceeded => SessionError::DeadlineExceeded,
        KernelError::Message(message) => SessionError::Kernel {
            node: step.name.clone(),
            op: step.op.type_name().into(),
            message,
        },
        KernelError::Uninitialized(var) => SessionError::Uninitialized(
            graph
                .node(var)
                .map_or_else(|| format!("<node {var}>"), |n| n.name),
        ),
        KernelError::NonFinite { message, index } => SessionError::NonFinite {
            node: step.name.clone(),
            message,
            index,
            dump: None,
        },
    }
}

/// A kernel's error; a failed check's also says where its node's inputs were written.
pub(super) fn failed_kernel(
    e: KernelError,
    step: &Step,
    graph: &Graph,
    slots: &mut [Option<Value>],
    failures: Option<&FailureDumps>,
) -> SessionError {
    let mut error = kernel_error(e, step, graph);
    if let (SessionError::NonFinite { dump, .. }, Some(failures)) = (&mut error, failures) {
        let inputs: Result<Vec<Tensor>, String> = (step.inputs.iter())
            .map(|&s| match slots.get_mut(s).and_then(Option::as_mut) {
                Some(value) => value.on_host(),
                None => Err("an input is gone".to_string()),
            })
            .collect();
        match inputs.and_then(|inputs| failures.write(&step.name, step.op.type_name(), &inputs)) {
            Ok(dir) => *dump = Some(dir),
            Err(why) => tracing::warn!("the inputs of '{}' were not dumped: {why}", step.name),
        }
    }
    error
}
