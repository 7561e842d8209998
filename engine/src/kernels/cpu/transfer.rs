//! CPU kernels of [`crate::ops::transfer`].

use crate::kernels::{Context, CpuKernel, KernelError};
use crate::ops::transfer::*;
use crate::tensor::Tensor;
use crate::timeline::TransferTiming;

fn step_id(t: &Tensor) -> Result<u64, KernelError> {
    t.as_slice::<i64>()
        .ok()
        .and_then(|s| s.first().copied())
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| KernelError::Message("the step id is not a non-negative i64".into()))
}

impl CpuKernel for Send {
    fn compute(&self, _: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let step = step_id(inputs[1])?;
        crate::distributed::rendezvous::publish(&self.key, step, inputs[0].clone());
        Ok(vec![])
    }
}

impl CpuKernel for Recv {
    fn compute(&self, ctx: &mut Context, inputs: &[&Tensor]) -> Result<Vec<Tensor>, KernelError> {
        use crate::distributed::{precision, rendezvous};
        let step = step_id(inputs[0])?;
        let wire = precision::parse(&self.precision)?;
        let timeout = std::time::Duration::from_millis(self.timeout_ms.max(1) as u64);
        let limits = rendezvous::FetchLimits {
            budget: ctx.step.budget,
            peer: ctx.step.peer,
        };
        let (value, came) =
            rendezvous::fetch(&self.peer, &self.key, step, wire, timeout, limits)
                .map_err(|e| KernelError::Message(format!("receiving '{}': {e}", self.key)))?;
        let fits = value.dtype() == self.dtype
            && value.rank() == self.shape.dims().len()
            && (value.shape().iter())
                .zip(self.shape.dims())
                .all(|(&d, want)| want.is_none_or(|w| w == d));
        if !fits {
            return Err(KernelError::Message(format!(
                "'{}' arrived as {} {:?}, but {} {} was expected",
                self.key,
                value.dtype(),
                value.shape(),
                self.dtype,
                self.shape
            )));
        }
        // The key is `SRC;INCARNATION;DST;GRAPH;TENSOR`.
        let field = |i| {
            self.key
                .splitn(5, ';')
                .nth(i)
                .unwrap_or_default()
                .to_string()
        };
        ctx.received = Some(TransferTiming {
            tensor: field(4),
            from_task: field(0),
            sender: String::new(),
            wait_micros: came.wait.as_secs_f64() * 1e6,
            transfer_micros: came.transfer.as_secs_f64() * 1e6,
            wire_bytes: came.wire_bytes,
            bulk: came.bulk,
        });
        Ok(vec![value, Tensor::scalar(came.wire_bytes as i64)])
    }
}
