//! Data-parallel training: [`DataParallel`] builds replicas of a model on the worker tasks
//! with shared variables on parameter servers (synchronous or asynchronous updates) or with
//! a ring all-reduce; [`Trainer`] runs them, writes checkpoints and recovers from lost tasks.

mod coordinate;
mod replica;
mod ring;
mod strategy;
mod summaries;
mod tower;
mod trainer;

pub use ring::ring_all_reduce;
pub use strategy::{DataParallel, Replicated, Sharding, Update};
pub use tower::Tower;
pub use trainer::{TrainError, TrainEvent, Trainer, TrainerOptions};
