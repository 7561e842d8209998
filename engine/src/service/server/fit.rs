//! Fit on the engine's side: the data sets it keeps loaded, the training loop on a blocking
//! thread, and the stream of progress reports, which cancels the loop when the client drops it.

use super::events::EventBus;
use super::step::resolve;
use super::{lock, Entry, Held};
use crate::data::{DataError, DataRoots, DataSource, Dataset, LoadLimits};
use crate::executor::CancelToken;
use crate::fit::{FitConfig, FitProgress, LabelFormat};
use crate::service::proto::{self, engine_event::Kind};
use crate::service::status::session_status;
use crate::service::EngineConfig;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

/// Data sets kept loaded; past this many, the one used least recently is dropped.
const CACHED_DATASETS: usize = 4;

/// Training sets loaded by name, kept so a later fit does not read them again; each with the
/// tick of its last use.
#[derive(Clone, Default)]
pub(super) struct DatasetCache(Arc<Mutex<Cached>>);

#[derive(Default)]
struct Cached {
    sets: HashMap<String, (Arc<Dataset>, u64)>,
    tick: u64,
}

impl DatasetCache {
    /// The training split of the data set `name` names, loaded on first use; its files must
    /// lie under `roots`.
    fn get(
        &self,
        name: &str,
        roots: &DataRoots,
        limits: &LoadLimits,
    ) -> Result<Arc<Dataset>, Status> {
        {
            let mut cached = lock(&self.0);
            cached.tick += 1;
            let tick = cached.tick;
            if let Some((data, used)) = cached.sets.get_mut(name) {
                *used = tick;
                return Ok(data.clone());
            }
        }
        let source: DataSource = name
            .parse()
            .map_err(|e| Status::invalid_argument(format!("data set '{name}': {e}")))?;
        roots
            .allow(name, &source)
            .map_err(|e| Status::permission_denied(format!("data set '{name}': {e}")))?;
        // Loaded without the lock held: another fit may load a different set meanwhile.
        let split = source.load_within(limits).map_err(|e| {
            let message = format!("data set '{name}': {e}");
            match e {
                DataError::Cancelled => Status::cancelled(message),
                DataError::TooLarge { .. } => Status::resource_exhausted(message),
                _ => Status::invalid_argument(message),
            }
        })?;
        let data = Arc::new(split.train);
        let mut cached = lock(&self.0);
        let tick = cached.tick;
        cached.sets.insert(name.to_string(), (data.clone(), tick));
        while cached.sets.len() > CACHED_DATASETS {
            let oldest = cached
                .sets
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                // Fits running on it keep their own reference.
                cached.sets.remove(&oldest);
            }
        }
        Ok(data)
    }
}

/// Whether the fit has finished, and whether its client went away before it did.
#[derive(Default)]
struct Ending {
    finished: bool,
    abandoned: bool,
}

/// The progress reports of a fit, as the stream tonic sends. Dropped before the fit ends
/// (the client went away), it cancels the session's steps; the fit resets the cancel when it
/// stops, so the session runs again.
pub struct FitStream {
    rx: mpsc::UnboundedReceiver<Result<proto::FitProgressMsg, Status>>,
    ending: Arc<Mutex<Ending>>,
    cancel: CancelToken,
}

impl Stream for FitStream {
    type Item = Result<proto::FitProgressMsg, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for FitStream {
    fn drop(&mut self) {
        let mut ending = lock(&self.ending);
        if !ending.finished {
            ending.abandoned = true;
            self.cancel.cancel();
        }
    }
}

/// Marks the fit finished (once); if its client went away, the cancel was the stream's, not
/// a client's: reset it, so the session runs again.
fn finish(ending: &Mutex<Ending>, cancel: &CancelToken) {
    let mut ending = lock(ending);
    if !ending.finished {
        ending.finished = true;
        if ending.abandoned {
            cancel.reset();
        }
    }
}

fn count(value: u64, what: &str) -> Result<usize, Status> {
    usize::try_from(value)
        .map_err(|_| Status::invalid_argument(format!("Fit: {what} {value} is too large")))
}

fn progress_message(p: &FitProgress) -> proto::FitProgressMsg {
    proto::FitProgressMsg {
        steps_done: p.steps_done as u64,
        steps_total: p.steps_total as u64,
        global_step: p.global_step,
        loss: p.loss,
        examples_per_second: p.examples_per_second,
        elapsed_seconds: p.elapsed.as_secs_f64(),
    }
}

/// A fit's report as a step event: the global step (or the steps done), the loss.
fn publish_progress(events: &EventBus, session: &str, p: &FitProgress) {
    if !events.watched() {
        return;
    }
    let step = if p.global_step >= 0 {
        p.global_step
    } else {
        p.steps_done as i64
    };
    events.publish(
        session,
        Kind::Step(proto::StepSummary {
            step,
            scalars: vec![proto::Scalar {
                name: "loss".to_string(),
                value: p.loss,
            }],
            examples_per_second: p.examples_per_second,
            from_fit: true,
            steps_done: p.steps_done as u64,
        }),
    );
}

/// The fit a request asks for, its nodes resolved in the session's graph.
fn fit_config(entry: &Entry, req: &proto::FitRequest) -> Result<FitConfig, Status> {
    let graph = &entry.graph;
    let label_format = match proto::LabelFormat::try_from(req.label_format) {
        Ok(proto::LabelFormat::OneHot) => LabelFormat::OneHot,
        Ok(proto::LabelFormat::Indices) => LabelFormat::Indices,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "Fit: unknown label format {}",
                req.label_format
            )))
        }
    };
    Ok(FitConfig {
        inputs: resolve(graph, &req.inputs, "inputs")?,
        labels: resolve(graph, &req.labels, "labels")?,
        label_format,
        loss: resolve(graph, &req.loss, "loss")?,
        train: resolve(graph, &req.train, "train")?,
        batch_size: count(req.batch_size, "batch_size")?,
        steps: count(req.steps, "steps")?,
        seed: req.seed,
        report_every: count(req.report_every, "report_every")?,
        // The caller writes a fit's run from the reports it gets.
        logdir: None,
    })
}

/// Starts a fit on a blocking thread and returns the stream of its reports; what fails
/// before or during the loop ends the stream with its status.
pub(super) fn start_fit(
    entry: Arc<Entry>,
    cache: DatasetCache,
    config: Arc<EngineConfig>,
    events: EventBus,
    req: proto::FitRequest,
) -> FitStream {
    let (tx, rx) = mpsc::unbounded_channel();
    let ending = Arc::new(Mutex::new(Ending::default()));
    let stream = FitStream {
        rx,
        ending: ending.clone(),
        cancel: entry.cancel.clone(),
    };
    tokio::spawn(async move {
        let held = entry.acquire().await;
        // Not awaited: the fit ends the stream itself.
        let data = (cache, config);
        let _fit = tokio::task::spawn_blocking(move || {
            run_fit(entry, held, data, events, req, tx, ending)
        });
    });
    stream
}

/// A fit's loop, on a blocking thread, once its call has the session (or was refused it).
fn run_fit(
    entry: Arc<Entry>,
    held: Result<Held, Status>,
    (cache, engine): (DatasetCache, Arc<EngineConfig>),
    events: EventBus,
    req: proto::FitRequest,
    tx: mpsc::UnboundedSender<Result<proto::FitProgressMsg, Status>>,
    ending: Arc<Mutex<Ending>>,
) {
    {
        let handle = entry.handle.clone();
        let mut steps_done = 0;
        let run = || -> Result<(), Status> {
            let config = fit_config(&entry, &req)?;
            // The load stops when the fit is cancelled or its client goes away.
            let stop = || entry.cancel.is_cancelled();
            let limits = LoadLimits::new(&stop, engine.memory_budget.limit());
            let data = cache.get(&req.dataset, &engine.data_roots, &limits)?;
            let mut held = held?;
            let session = &mut held.session;
            events.publish(
                &handle,
                Kind::FitStarted(proto::FitStarted {
                    steps: config.steps as u64,
                    dataset: req.dataset.clone(),
                }),
            );
            let mut report = |p: &FitProgress| {
                steps_done = p.steps_done as u64;
                publish_progress(&events, &handle, p);
                // A send fails only when the stream is gone, which cancels the fit.
                let _ = tx.send(Ok(progress_message(p)));
            };
            let result = session.fit(&data, &config, &mut report);
            // Still holding the session, so that no step runs before a reset.
            finish(&ending, &entry.cancel);
            result.map(|_| ()).map_err(|e| session_status(&e))
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .unwrap_or_else(|_| Err(Status::internal("the engine failed while running the fit")));
        finish(&ending, &entry.cancel);
        let error = match &result {
            Ok(()) => String::new(),
            Err(status) if status.code() == tonic::Code::Cancelled => "cancelled".to_string(),
            Err(status) => status.message().to_string(),
        };
        events.publish(
            &handle,
            Kind::FitEnded(proto::FitEnded { steps_done, error }),
        );
        if let Err(status) = result {
            let _ = tx.send(Err(status));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::service::proto::master_service_client::MasterServiceClient;
    use crate::service::proto::{self};
    use crate::service::{EmbeddedEngine, EngineConfig};

    #[test]
    fn a_dropped_fit_stream_stops_the_fit_and_the_session_runs_again() {
        let engine = EmbeddedEngine::start("127.0.0.1:0", EngineConfig::default()).unwrap();
        let addr = engine.addr().to_string();
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[-1, 784]);
        let w = g.variable("W", &[784, 10], Initializer::Zeros);
        let y = softmax(matmul(x, w));
        let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
        let loss = -reduce_sum(y_ * log(y));
        let train = GradientDescent::new(0.01).minimize(loss).unwrap();
        let mut sess = RemoteSession::create(&addr, &g).unwrap();
        sess.init_variables().unwrap();
        let request = proto::FitRequest {
            session_handle: sess.handle().to_string(),
            dataset: "mnist-digits".into(),
            inputs: "x".into(),
            labels: "y_".into(),
            loss: loss.name(),
            train: train.name(),
            label_format: proto::LabelFormat::OneHot as i32,
            batch_size: 100,
            steps: 10_000_000,
            seed: 0,
            report_every: 1,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut client = MasterServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            let mut reports = client.fit(request).await.unwrap().into_inner();
            assert!(reports.message().await.unwrap().is_some());
            // The client goes away mid-fit.
        });
        drop(runtime);
        // The fit stops, and steps run again without a reset.
        let two = g.scalar(1.0) + g.scalar(1.0);
        assert_eq!(sess.run(&[two], &[]).unwrap()[0].scalar_f64(), Some(2.0));
        let trained = sess.variable(w).unwrap().unwrap();
        assert!(trained.to_vec::<f32>().unwrap().iter().any(|&v| v != 0.0));
    }
}
