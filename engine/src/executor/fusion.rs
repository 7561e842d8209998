//! Fusion of elementwise chains on a GPU. A GPU step whose kernel is one elementwise
//! expression (`GpuKernel::elementwise`: arithmetic, comparisons, activations, casts,
//! selects) and whose only output is read by one later elementwise step on the same GPU, and
//! fetched by no one, is folded into that step: the chain runs as one generated kernel that
//! reads the chain's outside inputs once and writes its last output once, instead of one
//! kernel, one launch and one round trip through memory per op. `relu(matmul(x, w) + b)` is
//! one kernel after the product; so are most of a gradient's elementwise tails.
//!
//! Inputs are immutable once computed (GPU kernels never write their inputs; variable updates
//! write new buffers), so computing a producer later, where its consumer runs, reads the same
//! values. Shapes are known only when a step runs: the chain runs fused when every op in it has
//! the chain's output shape (no op broadcasts an intermediate), and op by op otherwise. A fused
//! step keeps its last node's name; `RUST_LOG=sluice::placement=debug` logs what it folded.

use super::placement::StepKernel;
use super::Step;
use crate::devices::gpu::GpuDevice;
use crate::devices::DeviceTensor;
use crate::devices::Dialect;
use crate::kernels::cpu::broadcast::broadcast_concrete;
use crate::kernels::gpu::elementwise::map;
use crate::kernels::gpu::expr::{Expr, Scalar};
use crate::kernels::{GpuContext, GpuKernelFn, KernelError, VariableStore};
use crate::ops::Op;
use crate::tensor::DType;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Nodes a fused expression may have: duplicated subexpressions (`x * x` of a chain) must
/// not grow a kernel without bound.
const MAX_EXPR_NODES: usize = 96;
/// Characters a fused expression's source may have in either language. Some emitters write an
/// operand more than once (an i32 division, a float-to-int cast), so the text of nested ops can
/// grow faster than their count; each fold is checked, so no text much past this is made.
const MAX_SOURCE_CHARS: usize = 8 << 10;
/// Inputs a fused kernel may bind (with its output and parameters: 8 storage buffers, the
/// portable minimum of a shader stage).
const MAX_FUSED_INPUTS: usize = 6;

/// A chain of elementwise kernels run as one.
pub(crate) struct FusedMap {
    device: Arc<GpuDevice>,
    /// The whole chain over the step's inputs.
    expr: Expr,
    /// The chain op by op, producers first; the last is the step's own op.
    parts: Vec<Part>,
}

/// One op of a chain, for running it alone.
#[derive(Clone)]
struct Part {
    node: usize,
    op: Arc<dyn Op>,
    kernel: GpuKernelFn,
    sources: Vec<Source>,
}

/// Where a part's input comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// The fused step's input at this position.
    Input(usize),
    /// An earlier part's output.
    Part(usize),
}

/// A chain while it is gathered: its inputs (slots), expression and parts.
#[derive(Clone)]
struct Chain {
    slots: Vec<usize>,
    expr: Expr,
    parts: Vec<Part>,
    names: Vec<String>,
}

impl FusedMap {
    /// The GPU the chain runs on.
    pub(crate) fn device(&self) -> &Arc<GpuDevice> {
        &self.device
    }

    /// Runs the chain on its inputs: one kernel where no op in it broadcasts an intermediate.
    pub(crate) fn run(
        &self,
        variables: &mut VariableStore,
        inputs: &[&DeviceTensor],
    ) -> Result<Vec<DeviceTensor>, KernelError> {
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let mut shape = Vec::new();
            for source in &part.sources {
                let of = match *source {
                    Source::Input(i) => &inputs[i].shape,
                    Source::Part(p) => &shapes[p],
                };
                shape = broadcast_concrete(&shape, of)?;
            }
            shapes.push(shape);
        }
        if shapes.windows(2).all(|w| w[0] == w[1]) {
            return Ok(vec![map(&self.device, &self.expr, inputs)?]);
        }
        // An op broadcasts an intermediate: op by op, each through its own kernel.
        let mut outputs: Vec<DeviceTensor> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let refs: Vec<&DeviceTensor> = (part.sources.iter())
                .map(|s| match *s {
                    Source::Input(i) => inputs[i],
                    Source::Part(p) => &outputs[p],
                })
                .collect();
            let mut ctx = GpuContext {
                node: part.node,
                gpu: &self.device,
                variables,
            };
            let out = (part.kernel)(&*part.op, &mut ctx, &refs)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    KernelError::Message("an elementwise kernel gave no output".into())
                })?;
            outputs.push(out);
        }
        let last = outputs
            .pop()
            .ok_or_else(|| KernelError::Message("an empty chain".into()))?;
        Ok(vec![last])
    }
}

/// Folds elementwise producers into their consumers; `fetched` are the slots a run returns
/// (a fetched value is never folded away), `dtypes` each slot's dtype. Steps keep their order.
pub(super) fn fuse(
    steps: Vec<Step>,
    fetched: &HashSet<usize>,
    dtypes: &[Option<DType>],
) -> Vec<Step> {
    let mut readers: HashMap<usize, HashSet<usize>> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        for &slot in &step.inputs {
            readers.entry(slot).or_default().insert(i);
        }
    }
    let mut producer: HashMap<usize, usize> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        for &slot in &step.outputs {
            producer.insert(slot, i);
        }
    }
    // Chains of elementwise steps not (yet) folded into a consumer, by step.
    let mut chains: HashMap<usize, Chain> = HashMap::new();
    let mut folded: HashSet<usize> = HashSet::new();
    for (i, step) in steps.iter().enumerate() {
        let StepKernel::Gpu {
            kernel,
            device,
            elementwise: Some(expr),
            ..
        } = &step.kernel
        else {
            continue;
        };
        if step.outputs.len() != 1 {
            continue;
        }
        // A producer folds in when this step is its only reader and it runs on the same GPU.
        let foldable = |slot: usize| -> Option<usize> {
            let p = *producer.get(&slot)?;
            let only_reader = readers.get(&slot).is_some_and(|r| r.len() == 1);
            let same_gpu = matches!(&steps[p].kernel,
                StepKernel::Gpu { device: d, .. } if Arc::ptr_eq(d, device));
            (p < i
                && only_reader
                && same_gpu
                && !fetched.contains(&slot)
                && chains.contains_key(&p))
            .then_some(p)
        };
        let candidates: Vec<Option<usize>> = step.inputs.iter().map(|&s| foldable(s)).collect();
        let mut chain = Chain {
            slots: Vec::new(),
            expr: Expr::Input(0),
            parts: Vec::new(),
            names: Vec::new(),
        };
        let mut arguments: Vec<Expr> = Vec::with_capacity(step.inputs.len());
        let mut sources: Vec<Source> = Vec::with_capacity(step.inputs.len());
        let mut absorbed: Vec<(usize, Chain)> = Vec::new();
        // A producer read twice (`x * x`) is spliced in once and its expression used twice.
        let mut spliced: HashMap<usize, (Expr, Source)> = HashMap::new();
        for (&slot, candidate) in step.inputs.iter().zip(candidates) {
            if let Some((argument, source)) = spliced.get(&slot) {
                arguments.push(argument.clone());
                sources.push(*source);
                continue;
            }
            match candidate.and_then(|p| chains.remove(&p).map(|c| (p, c))) {
                Some((p, inner)) => {
                    let (argument, source) = splice(&mut chain, inner.clone());
                    absorbed.push((p, inner));
                    spliced.insert(slot, (argument.clone(), source));
                    arguments.push(argument);
                    sources.push(source);
                }
                None => {
                    let k = input_index(&mut chain.slots, slot);
                    arguments.push(Expr::Input(k));
                    sources.push(Source::Input(k));
                }
            }
        }
        chain.expr = expr.compose(&arguments);
        chain.parts.push(Part {
            node: step.node,
            op: step.op.clone(),
            kernel: *kernel,
            sources,
        });
        chain.names.push(step.name.clone());
        if !absorbed.is_empty() && !fits(&chain, dtypes) {
            // Too large a kernel: this step starts afresh; its producers' chains run apart,
            // as they were.
            chains.extend(absorbed.drain(..));
            match single(step) {
                Some(alone) => chain = alone,
                None => continue,
            }
        }
        folded.extend(absorbed.into_iter().map(|(p, _)| p));
        chains.insert(i, chain);
    }
    steps
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !folded.contains(i))
        .map(|(i, step)| match chains.remove(&i) {
            Some(chain) if chain.parts.len() > 1 => fused_step(step, chain),
            _ => step,
        })
        .collect()
}

/// Whether a chain makes a kernel of bounded size in both languages, with few enough inputs.
fn fits(chain: &Chain, dtypes: &[Option<DType>]) -> bool {
    if chain.slots.len() > MAX_FUSED_INPUTS || chain.expr.size() > MAX_EXPR_NODES {
        return false;
    }
    let scalars: Option<Vec<Scalar>> = (chain.slots.iter())
        .map(|&s| dtypes.get(s).copied().flatten().and_then(Scalar::of))
        .collect();
    scalars.is_some_and(|scalars| {
        [Dialect::Wgsl, Dialect::Cuda].into_iter().all(|dialect| {
            (chain.expr.emit(dialect, &scalars)).is_ok_and(|text| text.len() <= MAX_SOURCE_CHARS)
        })
    })
}

/// The position of `slot` among a chain's inputs, added if new.
fn input_index(slots: &mut Vec<usize>, slot: usize) -> usize {
    match slots.iter().position(|&s| s == slot) {
        Some(k) => k,
        None => {
            slots.push(slot);
            slots.len() - 1
        }
    }
}

/// Adds an inner chain's inputs and parts to `chain`; the inner chain's expression over
/// `chain`'s inputs, and where its output comes from.
fn splice(chain: &mut Chain, inner: Chain) -> (Expr, Source) {
    let to: Vec<usize> = (inner.slots.iter())
        .map(|&s| input_index(&mut chain.slots, s))
        .collect();
    let offset = chain.parts.len();
    for mut part in inner.parts {
        for source in &mut part.sources {
            *source = match *source {
                Source::Input(k) => Source::Input(to[k]),
                Source::Part(p) => Source::Part(offset + p),
            };
        }
        chain.parts.push(part);
    }
    chain.names.extend(inner.names);
    (
        inner.expr.renumber(&to),
        Source::Part(chain.parts.len() - 1),
    )
}

/// The chain of one elementwise step alone (`None` for any other step).
fn single(step: &Step) -> Option<Chain> {
    let StepKernel::Gpu {
        kernel,
        elementwise: Some(expr),
        ..
    } = &step.kernel
    else {
        return None;
    };
    let mut slots = Vec::new();
    let positions: Vec<usize> = (step.inputs.iter())
        .map(|&s| input_index(&mut slots, s))
        .collect();
    let arguments: Vec<Expr> = positions.iter().map(|&k| Expr::Input(k)).collect();
    Some(Chain {
        slots,
        expr: expr.compose(&arguments),
        parts: vec![Part {
            node: step.node,
            op: step.op.clone(),
            kernel: *kernel,
            sources: positions.into_iter().map(Source::Input).collect(),
        }],
        names: vec![step.name.clone()],
    })
}

/// `step` running its whole chain.
fn fused_step(step: Step, chain: Chain) -> Step {
    let StepKernel::Gpu { device, .. } = &step.kernel else {
        return step;
    };
    let others = chain.names[..chain.names.len() - 1].join(", ");
    tracing::debug!(target: "sluice::placement", "{} fused with {others}", step.name);
    // The step keeps its node's name (traces and the cost model look nodes up by it); the
    // folded producers no longer run as steps of their own.
    Step {
        kernel: StepKernel::Fused(Box::new(FusedMap {
            device: device.clone(),
            expr: chain.expr,
            parts: chain.parts,
        })),
        inputs: chain.slots,
        ..step
    }
}
