//! The distributed runtime: a graph split over worker processes. [`cluster`] says who is in
//! the cluster; [`placement`] puts every node on a task; [`partition`] builds each task's
//! part of the graph with `_Send`/`_Recv` pairs on the edges that cross tasks; [`session`]
//! runs a step as one RunGraph per task, concurrently, while the workers pull tensors from
//! each other ([`rendezvous`], in the [`precision`] each edge asks); [`launcher`] starts a
//! cluster of local processes. Placing, partitioning and driving a cluster is client work
//! (the light client has it: a notebook can split a graph over workers); publishing,
//! pulling and encoding tensors is a worker's ([`rendezvous`], [`bulk`], [`precision`]).

#[cfg(feature = "engine")]
pub mod bulk;
pub mod cluster;
pub mod launcher;
pub mod partition;
pub mod peer;
pub mod placement;
#[cfg(feature = "engine")]
pub mod precision;
#[cfg(feature = "engine")]
pub mod rendezvous;
pub mod replicas;
pub mod session;
pub mod slurm;

pub use cluster::{ClusterError, ClusterSpec, DeviceSpec, TaskName};
pub use launcher::LocalCluster;
pub use replicas::{DataParallel, Tower, TrainEvent, Trainer, TrainerOptions};
pub use session::{DistributedOptions, DistributedSession, StepTransfers};
