//! Variables: state that lives in the session, with seeded initialisers.

use super::{Graph, Output, Shape};
use crate::error::GraphError;
use crate::ops::Variable;
use crate::tensor::{DType, Tensor};
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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

    /// The initial value for a variable of this shape and dtype.
    pub fn generate(&self, dtype: DType, shape: &[usize], seed: u64) -> Tensor {
        let len: usize = shape.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<f64> = match self {
            Initializer::Zeros => vec![0.0; len],
            Initializer::Ones => vec![1.0; len],
            Initializer::Fill(v) => vec![*v; len],
            Initializer::Constant(t) => return t.cast(dtype),
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
        Tensor::new(shape, values)
            .map(|t| t.cast(dtype))
            .unwrap_or_else(|_| Tensor::zeros(dtype, shape))
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
    pub fn variable_with(
        &self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        init: Initializer,
        trainable: bool,
    ) -> Output {
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
        out
    }

    /// The node behind `var`, if it is a variable; the error names what it is instead.
    pub fn variable_node(&self, var: Output) -> Result<super::Node, GraphError> {
        let node = self
            .node(var.node())
            .filter(|_| var.graph_id() == self.id)
            .ok_or_else(|| GraphError::UnknownNode(var.name()))?;
        if node.op_name() != "Variable" {
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
