//! [`SummaryWriter`]: one TensorBoard run, an event file in a log folder. Events are framed
//! into a buffer at once and written to the file by a flusher thread on a timer (and when the
//! buffer grows large, on `flush`, and when the writer is dropped), so a summary costs a
//! step an encode and a copy, not a system call.

use super::graph_def::{shape, tensorflow_graph_def};
use super::histogram::histogram;
use super::proto::{self, event::What, summary, Event, Summary, SummaryMetadata};
use super::records::{append_record, read_records};
use super::SummaryError;
use crate::graph::{Graph, Shape};
use crate::tensor::Tensor;
use prost::Message;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often buffered events reach the file unless said otherwise.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// A buffer this large is written out at once rather than at the next tick.
const EAGER_WRITE_BYTES: usize = 1 << 20;

/// Writes one TensorBoard run: scalars, histograms, text and graphs, each at a step.
/// `tensorboard --logdir DIR` shows every run under DIR.
pub struct SummaryWriter {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// Two locks, always taken in this order when both are: `file` (held by whoever writes,
/// so buffers reach the file in the order they were filled) then `state` (held briefly by
/// every summary). A summary never waits for the disk.
struct Shared {
    file: Mutex<EventFile>,
    state: Mutex<State>,
    tick: Condvar,
    path: PathBuf,
}

struct EventFile {
    file: File,
    /// The length of the whole records written: a failed write is cut back to it, so a
    /// torn record never sits before later ones.
    good_len: u64,
}

struct State {
    /// Framed records not yet written.
    pending: Vec<u8>,
    /// The last background write's failure, reported by the next call.
    failed: Option<std::io::Error>,
    closing: bool,
}

/// Records kept for a retry while the file cannot be written; past this, the oldest
/// unwritten ones are dropped (and said so).
const RETRY_LIMIT_BYTES: usize = 64 << 20;

impl SummaryWriter {
    /// A new run in `logdir` (made if missing): an event file named as TensorFlow names them
    /// (`events.out.tfevents.<seconds>.<host>.<pid>.<n>`), flushed every 2 seconds.
    pub fn new(logdir: impl AsRef<Path>) -> Result<SummaryWriter, SummaryError> {
        SummaryWriter::with_flush_interval(logdir, DEFAULT_FLUSH_INTERVAL)
    }

    /// As [`SummaryWriter::new`], flushing every `interval`.
    pub fn with_flush_interval(
        logdir: impl AsRef<Path>,
        interval: Duration,
    ) -> Result<SummaryWriter, SummaryError> {
        SummaryWriter::open(logdir.as_ref(), Some(interval))
    }

    /// A writer whose buffer reaches the file only on [`SummaryWriter::flush`] (and at a
    /// large size, and on drop): for owners of many runs that flush them all on one timer.
    pub fn without_timer(logdir: impl AsRef<Path>) -> Result<SummaryWriter, SummaryError> {
        SummaryWriter::open(logdir.as_ref(), None)
    }

    fn open(logdir: &Path, interval: Option<Duration>) -> Result<SummaryWriter, SummaryError> {
        std::fs::create_dir_all(logdir).map_err(|e| SummaryError::io(logdir, e))?;
        let path = logdir.join(event_file_name());
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| SummaryError::io(&path, e))?;
        let shared = Arc::new(Shared {
            file: Mutex::new(EventFile { file, good_len: 0 }),
            state: Mutex::new(State {
                pending: Vec::new(),
                failed: None,
                closing: false,
            }),
            tick: Condvar::new(),
            path,
        });
        let first = Event {
            wall_time: wall_time(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        };
        shared.push(&first)?;
        shared.write_pending()?;
        let flusher = match interval {
            Some(interval) => {
                let ticking = shared.clone();
                let flusher = std::thread::Builder::new()
                    .name("sluice-summaries".into())
                    .spawn(move || ticking.flush_every(interval))
                    .map_err(|e| SummaryError::io(&shared.path, e))?;
                Some(flusher)
            }
            None => None,
        };
        Ok(SummaryWriter { shared, flusher })
    }

    /// The event file this writer writes.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// A scalar (TensorBoard's Scalars tab) at `step`.
    pub fn scalar(&self, tag: &str, step: i64, value: f64) -> Result<(), SummaryError> {
        self.scalars(step, &[(tag, value)])
    }

    /// Several scalars at one step, in one event.
    pub fn scalars(&self, step: i64, values: &[(&str, f64)]) -> Result<(), SummaryError> {
        let value = values
            .iter()
            .map(|&(tag, v)| summary::Value {
                tag: tag.to_string(),
                value: Some(summary::value::Value::SimpleValue(v as f32)),
                ..Default::default()
            })
            .collect();
        self.summary(step, value)
    }

    /// The histogram of `values`' finite elements (the Histograms and Distributions tabs);
    /// nothing is written for a tensor with none.
    pub fn histogram(&self, tag: &str, step: i64, values: &Tensor) -> Result<(), SummaryError> {
        let Some(histo) = histogram(values) else {
            return Ok(());
        };
        let value = summary::Value {
            tag: tag.to_string(),
            value: Some(summary::value::Value::Histo(histo)),
            ..Default::default()
        };
        self.summary(step, vec![value])
    }

    /// Text (the Text tab, which renders Markdown).
    pub fn text(&self, tag: &str, step: i64, text: &str) -> Result<(), SummaryError> {
        let tensor = proto::TensorProto {
            dtype: proto::DataType::DtString as i32,
            tensor_shape: Some(shape(&Shape::scalar())),
            string_val: vec![text.as_bytes().to_vec()],
            ..Default::default()
        };
        let value = summary::Value {
            tag: tag.to_string(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(summary_metadata_plugin("text")),
                ..Default::default()
            }),
            value: Some(summary::value::Value::Tensor(tensor)),
            ..Default::default()
        };
        self.summary(step, vec![value])
    }

    /// The graph (the Graphs tab), each node on the device its constraint names.
    pub fn graph(&self, graph: &Graph) -> Result<(), SummaryError> {
        self.graph_def(&tensorflow_graph_def(graph))
    }

    /// A graph already in TensorFlow's form (a placed graph, say).
    pub fn graph_def(&self, def: &proto::GraphDef) -> Result<(), SummaryError> {
        self.shared.push(&Event {
            wall_time: wall_time(),
            step: 0,
            what: Some(What::GraphDef(def.encode_to_vec())),
        })
    }

    /// A traced step's kernel times as `RunMetadata` under `tag` (TensorBoard's Graphs tab
    /// then offers it under "Session runs" and colours nodes by compute time).
    pub fn run_metadata(
        &self,
        tag: &str,
        step: i64,
        timings: &[crate::timeline::NodeTiming],
    ) -> Result<(), SummaryError> {
        let now = wall_time();
        let took = (timings.iter())
            .map(|t| t.start_micros + t.micros)
            .fold(0.0, f64::max);
        let start = (now * 1e6 - took) as i64;
        let tagged = proto::TaggedRunMetadata {
            tag: tag.to_string(),
            run_metadata: super::run_metadata(timings, start).encode_to_vec(),
        };
        self.shared.push(&Event {
            wall_time: now,
            step,
            what: Some(What::TaggedRunMetadata(tagged)),
        })
    }

    /// Writes what is buffered to the file now.
    pub fn flush(&self) -> Result<(), SummaryError> {
        self.shared.write_pending()
    }

    fn summary(&self, step: i64, value: Vec<summary::Value>) -> Result<(), SummaryError> {
        self.shared.push(&Event {
            wall_time: wall_time(),
            step,
            what: Some(What::Summary(Summary { value })),
        })
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.tick.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        if let Err(e) = self.shared.write_pending() {
            tracing::warn!("summaries not written: {e}");
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frames `event` into the buffer (writing the buffer out once it is large). A failure
    /// of an earlier background write is reported here, after the event is kept.
    fn push(&self, event: &Event) -> Result<(), SummaryError> {
        let data = event.encode_to_vec();
        let (failed, large) = {
            let mut state = self.lock();
            append_record(&mut state.pending, &data);
            (
                state.failed.take(),
                state.pending.len() >= EAGER_WRITE_BYTES,
            )
        };
        if let Some(e) = failed {
            return Err(SummaryError::io(&self.path, e));
        }
        if large {
            return self.write_pending();
        }
        Ok(())
    }

    /// Writes the buffer out. On failure the file is cut back to its last whole record and
    /// the records stay buffered for the next try (up to [`RETRY_LIMIT_BYTES`]).
    fn write_pending(&self) -> Result<(), SummaryError> {
        let mut out = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let (pending, failed) = {
            let mut state = self.lock();
            (std::mem::take(&mut state.pending), state.failed.take())
        };
        if pending.is_empty() {
            return failed.map_or(Ok(()), |e| Err(SummaryError::io(&self.path, e)));
        }
        let EventFile { file, good_len } = &mut *out;
        match file.write_all(&pending) {
            Ok(()) => {
                *good_len += pending.len() as u64;
                failed.map_or(Ok(()), |e| Err(SummaryError::io(&self.path, e)))
            }
            Err(e) => {
                let _ = file.set_len(*good_len);
                let _ = file.seek(SeekFrom::Start(*good_len));
                let mut state = self.lock();
                let mut kept = pending;
                kept.append(&mut state.pending);
                if kept.len() > RETRY_LIMIT_BYTES {
                    tracing::warn!(
                        "dropped {} bytes of summaries that {} could not take",
                        kept.len(),
                        self.path.display()
                    );
                    kept.clear();
                }
                state.pending = kept;
                Err(SummaryError::io(&self.path, e))
            }
        }
    }

    fn flush_every(&self, interval: Duration) {
        loop {
            {
                let state = self.lock();
                if state.closing {
                    return;
                }
                let (state, _) = self
                    .tick
                    .wait_timeout(state, interval)
                    .unwrap_or_else(|e| e.into_inner());
                if state.closing {
                    return;
                }
            }
            if let Err(SummaryError::Io { source, .. }) = self.write_pending() {
                tracing::warn!(
                    "cannot write summaries to {}: {source}",
                    self.path.display()
                );
                self.lock().failed = Some(source);
            }
        }
    }
}

fn summary_metadata_plugin(name: &str) -> proto::summary_metadata::PluginData {
    proto::summary_metadata::PluginData {
        plugin_name: name.to_string(),
        content: Vec::new(),
    }
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// TensorFlow's event file name; the last part tells apart writers of one process.
fn event_file_name() -> String {
    static WRITERS: AtomicU64 = AtomicU64::new(0);
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(['/', '\\']))
        .unwrap_or_else(|| "localhost".into());
    let n = WRITERS.fetch_add(1, Ordering::Relaxed);
    format!(
        "events.out.tfevents.{seconds:010}.{host}.{}.{n}",
        std::process::id()
    )
}

/// The events of one event file, in order (a record cut short at its end is left out).
pub fn read_event_file(path: impl AsRef<Path>) -> Result<Vec<Event>, SummaryError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| SummaryError::io(path, e))?;
    let records = read_records(&bytes).map_err(|source| SummaryError::Record {
        path: path.to_path_buf(),
        source,
    })?;
    records
        .into_iter()
        .enumerate()
        .map(|(index, data)| {
            Event::decode(data).map_err(|source| SummaryError::Decode {
                path: path.to_path_buf(),
                index,
                source,
            })
        })
        .collect()
}
