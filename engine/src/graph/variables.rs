//! Variables: state that lives in the session, with seeded initialisers.

use super::{Graph, Output, Shape};
use super::{GuardKind, ScopeGuard};
use crate::error::GraphError;
use crate::ops::Variable;
use crate::tensor::{element_count, DType, Tensor, TensorError};
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::sync::Arc;

/// How a variable gets its first value. Random ones derive their stream from the graph-level
/// seed and the variable's node id, so the same program gives the same values every run.
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    Zeros,
    Ones,
    /// Every element the same value.
    Fill(f64),
    /// Exactly this tensor (its shape must be the variable's).
    Constant(Tensor),
    RandomNormal {
        mean: f64,
        stddev: f64,
    },
    RandomUniform {
        low: f64,
        high: f64,
    },
    /// Normal, redrawn when more than two standard deviations from the mean.
    TruncatedNormal {
        mean: f64,
        stddev: f64,
    },
    /// Uniform in ±sqrt(6 / (fan_in + fan_out)).
    GlorotUniform,
    /// Truncated normal with stddev sqrt(2 / (fan_in + fan_out)).
    GlorotNormal,
}

impl Initializer {
    pub fn truncated_normal(stddev: f64) -> Initializer {
        Initializer::TruncatedNormal { mean: 0.0, stddev }
    }

    pub fn random_normal(stddev: f64) -> Initializer {
        Initializer::RandomNormal { mean: 0.0, stddev }
    }

    /// The initial value for a variable of this shape and dtype; an error where the shape
    /// counts more elements than a tensor can hold.
    pub fn generate(
        &self,
        dtype: DType,
        shape: &[usize],
        seed: u64,
    ) -> Result<Tensor, TensorError> {
        let len = element_count(shape).ok_or_else(|| TensorError::TooLarge {
            shape: shape.to_vec(),
        })?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<f64> = match self {
            Initializer::Zeros => vec![0.0; len],
            Initializer::Ones => vec![1.0; len],
            Initializer::Fill(v) => vec![*v; len],
            Initializer::Constant(t) => return Ok(t.cast(dtype)),
            Initializer::RandomNormal { mean, stddev } => {
                (0..len).map(|_| mean + stddev * normal(&mut rng)).collect()
            }
            Initializer::RandomUniform { low, high } => (0..len)
                .map(|_| low + (high - low) * uniform(&mut rng))
                .collect(),
            Initializer::TruncatedNormal { mean, stddev } => (0..len)
                .map(|_| mean + stddev * truncated_normal(&mut rng))
                .collect(),
            Initializer::GlorotUniform => {
                let (fan_in, fan_out) = fans(shape);
                let limit = (6.0 / (fan_in + fan_out).max(1.0)).sqrt();
                (0..len)
                    .map(|_| limit * (2.0 * uniform(&mut rng) - 1.0))
                    .collect()
            }
            Initializer::GlorotNormal => {
                let (fan_in, fan_out) = fans(shape);
                // 0.8796 is the stddev of a unit normal truncated at two stddevs.
                let stddev = (2.0 / (fan_in + fan_out).max(1.0)).sqrt() / 0.879_625_7;
                (0..len)
                    .map(|_| stddev * truncated_normal(&mut rng))
                    .collect()
            }
        };
        Ok(Tensor::new(shape, values)?.cast(dtype))
    }
}

/// Fan-in and fan-out as Keras counts them (receptive field times channels for conv kernels).
fn fans(shape: &[usize]) -> (f64, f64) {
    match shape {
        [] => (1.0, 1.0),
        [n] => (*n as f64, *n as f64),
        [rest @ .., fan_in, fan_out] => {
            let field: usize = rest.iter().product();
            ((field * fan_in) as f64, (field * fan_out) as f64)
        }
    }
}

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    // 53 random bits in [0, 1).
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u = 1.0 - uniform(rng);
    let v = uniform(rng);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn truncated_normal(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let z = normal(rng);
        if z.abs() <= 2.0 {
            return z;
        }
    }
}

impl Graph {
    /// A trainable f32 variable.
    pub fn variable(&self, name: &str, shape: &[usize], init: Initializer) -> Output {
        self.variable_with(name, DType::F32, shape, init, true)
    }

    /// A variable of any dtype; `trainable` ones are what optimizers update by default.
    /// Inside [`reuse_variables`](Self::reuse_variables) it is the next variable of that
    /// list instead; inside [`shard_variables`](Self::shard_variables) it goes to the
    /// parameter server the sharder picks, whatever the device scope says.
    pub fn variable_with(
        &self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        init: Initializer,
        trainable: bool,
    ) -> Output {
        if let Some(existing) = self.reused(name, dtype, shape) {
            return existing;
        }
        let op = Variable {
            dtype,
            shape: Shape::known(shape),
        };
        let out = self.add_node(Arc::new(op), vec![], vec![], Some(name));
        let mut data = self.write();
        data.variables.push(out.node());
        if trainable {
            data.trainable.push(out.node());
        }
        data.initializers.insert(out.node(), init);
        let bytes = dtype.size() as u64 * shape.iter().product::<usize>() as u64;
        if let Some(device) = data.sharder.as_mut().map(|s| s.choose(bytes)) {
            data.nodes[out.node()].device = device;
        }
        out
    }

    /// The tables split into shard variables
    /// ([`PartitionedVariable`](crate::ops::PartitionedVariable)s), in the order made.
    pub fn partitioned_variables(&self) -> Vec<crate::ops::PartitionedVariable> {
        self.read().partitioned.clone()
    }

    /// Notes a table split into shards (once, however many replicas build it).
    pub(crate) fn add_partitioned(&self, table: &crate::ops::PartitionedVariable) {
        let mut data = self.write();
        if !data.partitioned.iter().any(|t| t.shards == table.shards) {
            data.partitioned.push(table.clone());
        }
    }

    /// A non-trainable variable whose first dimension changes from step to step, starting
    /// with no rows: where a sparse gradient's rows (`row` the shape of one) wait between the
    /// phases of a step. Placed by the device scope, never reused or sharded.
    pub fn row_buffer(&self, name: &str, dtype: DType, row: &[usize]) -> Output {
        let mut dims = vec![None];
        dims.extend(row.iter().map(|&d| Some(d)));
        let op = Variable {
            dtype,
            shape: Shape(dims),
        };
        let out = self.add_node(Arc::new(op), vec![], vec![], Some(name));
        let mut empty = vec![0];
        empty.extend_from_slice(row);
        let mut data = self.write();
        data.variables.push(out.node());
        (data.initializers).insert(
            out.node(),
            Initializer::Constant(Tensor::zeros(dtype, &empty)),
        );
        out
    }

    /// The next variable to reuse, if a reuse list is active; a dtype or shape that differs
    /// from the one asked for is noted for [`take_reuse`](Self::take_reuse) to report.
    fn reused(&self, name: &str, dtype: DType, shape: &[usize]) -> Option<Output> {
        let mut data = self.write();
        let id = data.reuse.as_mut()?.queue.pop_front();
        let Some(id) = id else {
            if let Some(reuse) = data.reuse.as_mut() {
                reuse.problems.push(format!(
                    "'{name}' is a variable the first replica does not have"
                ));
            }
            return None;
        };
        let found = data.nodes[id].outputs.first().cloned();
        let expected = Shape::known(shape);
        if let Some(found) = found.filter(|t| t.dtype != dtype || t.shape != expected) {
            let existing = data.nodes[id].name.clone();
            if let Some(reuse) = data.reuse.as_mut() {
                reuse.problems.push(format!(
                    "'{name}' is {dtype:?} {expected} but the first replica's '{existing}' is {:?} {}",
                    found.dtype, found.shape
                ));
            }
        }
        Some(Output::new(self.id, id, 0))
    }

    /// Until the guard drops, new variables are placed on `sharder`'s devices (TensorFlow's
    /// `replica_device_setter`).
    pub fn shard_variables(&self, sharder: VariableSharder) -> ScopeGuard {
        self.write().sharder = Some(sharder);
        ScopeGuard {
            graph: self.clone(),
            kind: GuardKind::Sharding,
        }
    }

    /// Until the guard drops, each `variable` call returns the next of `vars` (in creation
    /// order) instead of making a new one: how replicas share one set of variables.
    pub fn reuse_variables(&self, vars: &[Output]) -> ScopeGuard {
        self.write().reuse = Some(VariableReuse {
            queue: vars.iter().map(|v| v.node()).collect(),
            problems: Vec::new(),
        });
        ScopeGuard {
            graph: self.clone(),
            kind: GuardKind::Reuse,
        }
    }

    /// Ends the active reuse list and says what went wrong with it, if anything: variables
    /// left over, new ones, or ones whose type differs.
    pub fn take_reuse(&self) -> Vec<String> {
        let Some(reuse) = self.write().reuse.take() else {
            return Vec::new();
        };
        let mut problems = reuse.problems;
        if !reuse.queue.is_empty() {
            problems.push(format!(
                "{} of the first replica's variables were not asked for again",
                reuse.queue.len()
            ));
        }
        problems
    }

    /// The node behind `var`, if it is a variable; the error names what it is instead.
    pub fn variable_node(&self, var: Output) -> Result<super::Node, GraphError> {
        let node = self
            .node(var.node())
            .filter(|_| var.graph_id() == self.id)
            .ok_or_else(|| GraphError::UnknownNode(var.name()))?;
        if node.op.effect() != crate::ops::Effect::ReadVariable {
            return Err(GraphError::NotAVariable {
                op: node.op_name().to_string(),
                node: node.name,
            });
        }
        Ok(node)
    }

    /// Every variable, in creation order.
    pub fn variables(&self) -> Vec<Output> {
        self.read()
            .variables
            .iter()
            .map(|&n| Output::new(self.id, n, 0))
            .collect()
    }

    /// The variables optimizers train by default.
    pub fn trainable_variables(&self) -> Vec<Output> {
        self.read()
            .trainable
            .iter()
            .map(|&n| Output::new(self.id, n, 0))
            .collect()
    }

    /// The i64 step counter that `minimize` advances (created on first use).
    pub fn global_step(&self) -> Output {
        if let Some(node) = self.read().global_step {
            return Output::new(self.id, node, 0);
        }
        let step = self.variable_with("global_step", DType::I64, &[], Initializer::Zeros, false);
        self.write().global_step = Some(step.node());
        step
    }
}

/// Picks a parameter-server device for each new variable: the least loaded by bytes so far
/// (TensorFlow's greedy load balancing), or in turn.
#[derive(Debug, Clone)]
pub struct VariableSharder {
    devices: Vec<String>,
    loads: Vec<u64>,
    round_robin: bool,
    next: usize,
}

impl VariableSharder {
    /// Greedy by bytes over `devices` (at least one).
    pub fn greedy(devices: Vec<String>) -> VariableSharder {
        VariableSharder {
            loads: vec![0; devices.len()],
            devices,
            round_robin: false,
            next: 0,
        }
    }

    /// One device after another.
    pub fn round_robin(devices: Vec<String>) -> VariableSharder {
        VariableSharder {
            round_robin: true,
            ..VariableSharder::greedy(devices)
        }
    }

    fn choose(&mut self, bytes: u64) -> String {
        if self.devices.is_empty() {
            return String::new();
        }
        let pick = if self.round_robin {
            self.next % self.devices.len()
        } else {
            // The first of the least loaded, so ties go in order.
            (0..self.loads.len())
                .min_by_key(|&i| (self.loads[i], i))
                .unwrap_or(0)
        };
        self.next += 1;
        self.loads[pick] += bytes;
        self.devices[pick].clone()
    }
}

/// The variables a replica reuses, and what did not match.
#[derive(Debug, Clone, Default)]
pub struct VariableReuse {
    queue: VecDeque<usize>,
    problems: Vec<String>,
}
