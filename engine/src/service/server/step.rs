//! The parts of a step on the engine's side: reading the feed tensors of a request stream,
//! resolving names to outputs, running the step, and streaming the fetched values back.

use super::{Entry, Held};
use crate::graph::{Graph, Output};
use crate::service::chunks::{Assembler, TensorChunks};
use crate::service::proto::run_step_chunk::Part;
use crate::service::proto::{self, RunStepChunk};
use crate::service::status::{session_status, wire_status};
use crate::service::wire::WireError;
use crate::session::StepOptions;
use crate::tensor::Tensor;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_stream::Stream;
use tonic::{Status, Streaming};

/// The output a fetch, feed or target names: `name`, or `name:index`.
pub(super) fn resolve(graph: &Graph, text: &str, what: &str) -> Result<Output, Status> {
    let bad = |message: String| Status::invalid_argument(format!("{what} '{text}': {message}"));
    let (output, explicit) = match graph.get(text) {
        Ok(o) => (o, false),
        Err(e) => {
            let (name, index) = text
                .rsplit_once(':')
                .and_then(|(n, i)| Some((n, i.parse::<usize>().ok()?)))
                .ok_or_else(|| bad(e.to_string()))?;
            let node = graph.get(name).map_err(|e| bad(e.to_string()))?;
            (node.output(index), true)
        }
    };
    let outputs = graph.node(output.node()).map_or(0, |n| n.outputs.len());
    if explicit && output.index() >= outputs {
        return Err(bad(format!("its node has {outputs} output(s)")));
    }
    Ok(output)
}

/// Reads `count` tensors from a request stream.
pub(super) async fn read_tensors(
    stream: &mut Streaming<RunStepChunk>,
    count: usize,
) -> Result<Vec<(String, Tensor)>, Status> {
    let mut assembler = Assembler::default();
    let mut tensors = Vec::with_capacity(count.min(1024));
    while tensors.len() < count {
        let Some(chunk) = stream.message().await? else {
            assembler.finish().map_err(|e| wire_status(&e))?;
            return Err(Status::invalid_argument(format!(
                "the request stream ended after {} of its {count} feed tensors",
                tensors.len()
            )));
        };
        let done = match chunk.part {
            Some(Part::Tensor(begin)) => assembler.begin(begin),
            Some(Part::Data(data)) => assembler.data(&data),
            other => Err(WireError::new(
                format!("message after feed {}", tensors.len()),
                format!("expected a tensor or its data, got {}", part_name(&other)),
            )),
        }
        .map_err(|e| wire_status(&e))?;
        tensors.extend(done);
    }
    Ok(tensors)
}

pub(super) fn part_name(part: &Option<Part>) -> &'static str {
    match part {
        None => "an empty message",
        Some(Part::Header(_)) => "a RunStep header",
        Some(Part::Tensor(_)) => "a tensor",
        Some(Part::Data(_)) => "tensor data",
        Some(Part::Metadata(_)) => "run metadata",
        Some(Part::SetVariable(_)) => "a SetVariable header",
    }
}

/// The first message of a request stream, which must be its header.
pub(super) async fn first_part(
    stream: &mut Streaming<RunStepChunk>,
    rpc: &str,
) -> Result<Part, Status> {
    match stream.message().await? {
        Some(RunStepChunk { part: Some(p) }) => Ok(p),
        Some(RunStepChunk { part: None }) => Err(Status::invalid_argument(format!(
            "{rpc}: the first message holds nothing; it must be the header"
        ))),
        None => Err(Status::invalid_argument(format!(
            "{rpc}: the request stream is empty; it must start with a header"
        ))),
    }
}

/// The chunks of a step's answer, as the stream tonic sends.
pub struct ChunkStream(pub(super) TensorChunks);

impl Stream for ChunkStream {
    type Item = Result<RunStepChunk, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next().map(Ok))
    }
}

/// Runs at most this many repetitions of a step per call.
pub(crate) const MAX_REPEAT: u32 = 100_000;

/// Runs one step on a blocking thread (or `repeat` in a row): fetches, their values and, if
/// traced, the timings.
pub(super) fn run_step_blocking(
    entry: &Entry,
    mut held: Held,
    header: &proto::RunStepHeader,
    feeds: Vec<(String, Tensor)>,
    trace: bool,
    deadline: Option<std::time::Instant>,
) -> Result<(Vec<Tensor>, Vec<proto::NodeTiming>), Status> {
    let graph = &entry.graph;
    let fetches = (header.fetch.iter())
        .map(|f| resolve(graph, f, "fetch"))
        .collect::<Result<Vec<_>, _>>()?;
    let targets = (header.target.iter())
        .map(|t| resolve(graph, t, "target"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut fed = Vec::with_capacity(feeds.len());
    for (name, value) in feeds {
        let output = resolve(graph, &name, "feed")?;
        if fed.iter().any(|(o, _)| *o == output) {
            return Err(Status::invalid_argument(format!(
                "feed '{name}' is given twice"
            )));
        }
        fed.push((output, value));
    }
    let run_options = header.options.clone().unwrap_or_default();
    let runs = run_options.repeat.max(1);
    if runs > MAX_REPEAT {
        return Err(Status::invalid_argument(format!(
            "repeat is {runs}; at most {MAX_REPEAT} runs a call"
        )));
    }
    // The feed that each later run gets increased by one, and its first value.
    let advance = match run_options.advance_feed.as_str() {
        "" => None,
        name => {
            let output = resolve(graph, name, "advance_feed")?;
            let at = fed.iter().position(|(o, _)| *o == output).ok_or_else(|| {
                Status::invalid_argument(format!("advance_feed '{name}' is not among the feeds"))
            })?;
            let first = (fed[at].1.to_vec::<i64>().ok())
                .filter(|v| v.len() == 1 && fed[at].1.shape().is_empty())
                .map(|v| v[0])
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "advance_feed '{name}' must be fed a scalar i64"
                    ))
                })?;
            Some((at, first))
        }
    };
    let options = StepOptions { deadline, trace };
    // A failure of a repeated step names its run, as the earlier runs have had their effects.
    let failed_run = |run: u32| {
        move |e: crate::error::SessionError| {
            let status = session_status(&e);
            match runs {
                1 => status,
                _ => {
                    let done = run - 1;
                    let message = format!(
                        "run {run} of {runs} (the {done} before it ran): {}",
                        status.message()
                    );
                    Status::new(status.code(), message)
                }
            }
        }
    };
    for run in 1..runs {
        // Earlier runs' values are not returned; only their effects stay.
        (held.session.run_step(&fetches, &fed, &targets, &options)).map_err(failed_run(run))?;
        if let Some((at, first)) = advance {
            fed[at].1 = Tensor::scalar(first.wrapping_add(i64::from(run)));
        }
    }
    let (values, timings) =
        (held.session.run_step(&fetches, &fed, &targets, &options)).map_err(failed_run(runs))?;
    let timings = timings
        .into_iter()
        .map(|t| proto::NodeTiming {
            node: t.node,
            op: t.op.to_string(),
            micros: t.micros,
            start_micros: t.start_micros,
            device: t.device,
            family: t.family.map(|f| f.name().to_string()).unwrap_or_default(),
            transfer: t.transfer.map(|r| proto::TransferTiming {
                tensor: r.tensor,
                from_task: r.from_task,
                wait_micros: r.wait_micros,
                transfer_micros: r.transfer_micros,
                wire_bytes: r.wire_bytes,
                bulk: r.bulk,
            }),
        })
        .collect();
    Ok((values, timings))
}
