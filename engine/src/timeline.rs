//! Where a traced step's time went, as a timeline: one lane per device of each task, a span
//! per kernel, a flow per tensor that crossed between tasks. It is built from the
//! [`NodeTiming`]s a traced step returns (in-process, remote or distributed), and goes out as
//! Chrome's trace-event JSON, which Perfetto and `chrome://tracing` open and which the
//! frontends read back to draw the step under a cell.

use crate::ops::OpFamily;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// When and where one node's kernel ran in a traced step, and how long it took.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeTiming {
    pub node: String,
    pub op: &'static str,
    pub family: Option<OpFamily>,
    /// When the kernel started, in microseconds from the start of the step. A distributed
    /// step's parts are put on the coordinator's clock: each task's times count from when
    /// the coordinator sent it its part (so no two hosts' clocks need agree).
    pub start_micros: f64,
    /// How long it took: on the GPU (its kernels' timestamps) where the GPU has them, else
    /// on the host, the wait for its GPU work included. A GPU kernel timed on the GPU starts
    /// (`start_micros`) when the host launched it; the GPU may run it later.
    pub micros: f64,
    /// Where it ran: `/device:CPU:0`, `/device:GPU:1`; a distributed step's with its task,
    /// as the placed graph names it (`/job:worker/replica:0/task:1/device:CPU:0`).
    pub device: String,
    /// What the cost model expected it to take, where one placed the node (a distributed
    /// step's nodes): what placement assumed, beside what was measured.
    pub estimate_micros: Option<f64>,
    /// A receive's wait and transfer.
    pub transfer: Option<TransferTiming>,
}

/// Where a receive's time went: waiting for the value to be produced, then moving it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransferTiming {
    /// The tensor received (`layer1/Relu:0`, or `^node` for an ordering).
    pub tensor: String,
    /// The task that sent it.
    pub from_task: String,
    /// The sending node (`_send/...`), where the coordinator knows it.
    pub sender: String,
    /// From the request until the sender's answer began: mostly the wait for the value.
    pub wait_micros: f64,
    /// From the answer's start until the whole value was here.
    pub transfer_micros: f64,
    pub wire_bytes: u64,
    /// Whether it came over the bulk channel rather than the gRPC stream.
    pub bulk: bool,
}

/// Why a trace could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("not a Chrome trace: {0}")]
    Format(String),
    #[error("trace event {index}: {message}")]
    Event { index: usize, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the trace is over {limit} bytes")]
    TooLarge { limit: u64 },
}

/// A device of one task: `process` is the task (`/job:worker/replica:0/task:1`, or `""` for
/// the process that ran the step), `device` the device there (`CPU:0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane {
    pub process: String,
    pub device: String,
}

impl Lane {
    /// The lane of a device string (`/job:worker/task:1/device:CPU:0`, `/device:GPU:0`).
    pub fn of_device(device: &str) -> Lane {
        match device.rsplit_once("/device:") {
            Some((process, device)) => Lane {
                process: process.to_string(),
                device: device.to_string(),
            },
            None => Lane {
                process: String::new(),
                device: device.to_string(),
            },
        }
    }
}

/// One kernel that ran.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    pub lane: usize,
    pub node: String,
    pub op: String,
    pub family: Option<OpFamily>,
    pub start_micros: f64,
    pub micros: f64,
    pub estimate_micros: Option<f64>,
    pub transfer: Option<TransferTiming>,
}

/// A tensor that crossed between tasks: from the span that sent it to the one that
/// received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub from: usize,
    pub to: usize,
    pub tensor: String,
    pub wire_bytes: u64,
}

/// A traced step as lanes, spans and flows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepTimeline {
    pub lanes: Vec<Lane>,
    pub spans: Vec<Span>,
    pub flows: Vec<Flow>,
}

impl StepTimeline {
    /// The timeline of a traced step's timings. Lanes come in task then device order.
    pub fn from_timings(timings: &[NodeTiming]) -> StepTimeline {
        let mut lanes: Vec<Lane> = timings.iter().map(|t| Lane::of_device(&t.device)).collect();
        // task:2 before task:10, GPU:2 before GPU:10.
        lanes.sort_by_cached_key(|l| (natural_key(&l.process), natural_key(&l.device)));
        lanes.dedup();
        let lane_of: HashMap<&str, usize> = timings
            .iter()
            .filter_map(|t| {
                let lane = Lane::of_device(&t.device);
                Some((t.device.as_str(), lanes.iter().position(|l| *l == lane)?))
            })
            .collect();
        let spans: Vec<Span> = timings
            .iter()
            .map(|t| Span {
                lane: lane_of.get(t.device.as_str()).copied().unwrap_or(0),
                node: t.node.clone(),
                op: t.op.to_string(),
                family: t.family,
                start_micros: time(t.start_micros),
                micros: time(t.micros),
                estimate_micros: t.estimate_micros.map(time),
                transfer: t.transfer.clone().map(|mut r| {
                    r.wait_micros = time(r.wait_micros);
                    r.transfer_micros = time(r.transfer_micros);
                    r
                }),
            })
            .collect();
        let by_node: HashMap<&str, usize> = (spans.iter().enumerate())
            .map(|(i, s)| (s.node.as_str(), i))
            .collect();
        let flows = (spans.iter().enumerate())
            .filter_map(|(to, span)| {
                let received = span.transfer.as_ref()?;
                Some(Flow {
                    from: *by_node.get(received.sender.as_str())?,
                    to,
                    tensor: received.tensor.clone(),
                    wire_bytes: received.wire_bytes,
                })
            })
            .collect();
        StepTimeline {
            lanes,
            spans,
            flows,
        }
    }

    /// Chrome's trace-event format (JSON object form): a process per task, a thread per
    /// device, a complete event (`X`) per kernel (a receive's wait and transfer nested in
    /// it), a flow (`s` → `f`) per tensor between tasks. Times are microseconds.
    pub fn chrome_trace(&self) -> Value {
        let mut processes: Vec<&str> = self.lanes.iter().map(|l| l.process.as_str()).collect();
        processes.dedup();
        let pid = |lane: &Lane| {
            processes
                .iter()
                .position(|p| *p == lane.process)
                .unwrap_or(0)
        };
        let mut events = Vec::new();
        for (p, process) in processes.iter().enumerate() {
            let name = if process.is_empty() {
                "this process"
            } else {
                process
            };
            events.push(
                json!({"ph": "M", "name": "process_name", "pid": p, "tid": 0,
                "args": {"name": name}}),
            );
            events.push(
                json!({"ph": "M", "name": "process_sort_index", "pid": p, "tid": 0,
                "args": {"sort_index": p}}),
            );
        }
        for (l, lane) in self.lanes.iter().enumerate() {
            events.push(
                json!({"ph": "M", "name": "thread_name", "pid": pid(lane), "tid": l,
                "args": {"name": lane.device}}),
            );
        }
        for span in &self.spans {
            let lane = self.lanes.get(span.lane);
            let (pid, tid) = (lane.map_or(0, pid), span.lane);
            let family = span.family.unwrap_or(OpFamily::Other).name();
            let mut args = Map::new();
            args.insert("op".into(), json!(span.op));
            if let Some(estimate) = span.estimate_micros {
                args.insert("estimate_us".into(), json!(estimate));
            }
            if let Some(t) = &span.transfer {
                args.insert("tensor".into(), json!(t.tensor));
                args.insert("from_task".into(), json!(t.from_task));
                args.insert("sender".into(), json!(t.sender));
                args.insert("wait_us".into(), json!(t.wait_micros));
                args.insert("transfer_us".into(), json!(t.transfer_micros));
                args.insert("wire_bytes".into(), json!(t.wire_bytes));
                args.insert("bulk".into(), json!(t.bulk));
            }
            events.push(
                json!({"ph": "X", "name": span.node, "cat": family, "pid": pid,
                "tid": tid, "ts": span.start_micros, "dur": span.micros, "args": args}),
            );
            if let Some(t) = &span.transfer {
                // The parts of a receive, clipped to it: they nest under its slice.
                let wait = time(t.wait_micros).min(span.micros);
                let moved = time(t.transfer_micros).min(span.micros - wait);
                let parts = [
                    ("wait", span.start_micros, wait),
                    ("transfer", span.start_micros + wait, moved),
                ];
                for (name, ts, dur) in parts {
                    events.push(json!({"ph": "X", "name": name, "cat": "transfer.part",
                        "pid": pid, "tid": tid, "ts": ts, "dur": dur}));
                }
            }
        }
        for (id, flow) in self.flows.iter().enumerate() {
            let (Some(from), Some(to)) = (self.spans.get(flow.from), self.spans.get(flow.to))
            else {
                continue;
            };
            // Each end sits inside its slice, which is what a flow event binds to.
            let inside = |s: &Span| s.start_micros + s.micros * 0.99;
            let end = |s: &Span| {
                let lane = self.lanes.get(s.lane);
                (lane.map_or(0, pid), s.lane)
            };
            let ((fp, ft), (tp, tt)) = (end(from), end(to));
            // Each end names its node too: a reader binds it without searching by time.
            let args = json!({"wire_bytes": flow.wire_bytes, "node": from.node});
            events.push(
                json!({"ph": "s", "id": id, "name": flow.tensor, "cat": "transfer",
                "pid": fp, "tid": ft, "ts": inside(from), "args": args}),
            );
            events.push(json!({"ph": "f", "bp": "e", "id": id, "name": flow.tensor,
                "cat": "transfer", "pid": tp, "tid": tt, "ts": inside(to),
                "args": {"node": to.node}}));
        }
        json!({"traceEvents": events, "displayTimeUnit": "ms"})
    }

    /// Writes [`chrome_trace`](Self::chrome_trace) to `path` (`.json`; Perfetto and
    /// `chrome://tracing` open it).
    pub fn write_chrome_trace(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer(&mut file, &self.chrome_trace()).map_err(std::io::Error::other)?;
        file.flush()
    }

    /// Reads a trace file [`write_chrome_trace`](Self::write_chrome_trace) wrote, refusing
    /// one over `max_bytes`.
    pub fn read_chrome_trace(
        path: &std::path::Path,
        max_bytes: u64,
    ) -> Result<StepTimeline, TimelineError> {
        use std::io::Read;
        let mut bytes = Vec::new();
        let file = std::fs::File::open(path)?;
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max_bytes {
            return Err(TimelineError::TooLarge { limit: max_bytes });
        }
        let json: Value =
            serde_json::from_slice(&bytes).map_err(|e| TimelineError::Format(e.to_string()))?;
        StepTimeline::from_chrome_trace(&json)
    }

    /// Reads back what [`chrome_trace`](Self::chrome_trace) wrote (the frontends draw a step
    /// a cell traced from its trace file). Events of other kinds are skipped.
    pub fn from_chrome_trace(trace: &Value) -> Result<StepTimeline, TimelineError> {
        let events = (trace.get("traceEvents").and_then(Value::as_array))
            .ok_or_else(|| TimelineError::Format("no traceEvents array".into()))?;
        let mut process_names: HashMap<u64, String> = HashMap::new();
        let mut lane_names: HashMap<u64, (u64, String)> = HashMap::new();
        for event in events {
            let (pid, tid) = (uint(event, "pid"), uint(event, "tid"));
            let name = event.pointer("/args/name").and_then(Value::as_str);
            match (text(event, "ph"), text(event, "name"), pid, tid, name) {
                ("M", "process_name", Some(pid), _, Some(name)) => {
                    let name = if name == "this process" { "" } else { name };
                    process_names.insert(pid, name.to_string());
                }
                ("M", "thread_name", Some(pid), Some(tid), Some(name)) => {
                    lane_names.insert(tid, (pid, name.to_string()));
                }
                _ => {}
            }
        }
        let mut tids: Vec<u64> = lane_names.keys().copied().collect();
        tids.sort_unstable();
        let lanes: Vec<Lane> = (tids.iter())
            .map(|tid| {
                let (pid, device) = &lane_names[tid];
                Lane {
                    process: process_names.get(pid).cloned().unwrap_or_default(),
                    device: device.clone(),
                }
            })
            .collect();
        let lane_of = |tid: Option<u64>| tid.and_then(|t| tids.binary_search(&t).ok());
        let mut spans: Vec<Span> = Vec::new();
        let mut span_of: HashMap<String, usize> = HashMap::new();
        let mut flow_ends: HashMap<u64, (Option<usize>, Option<usize>, String, u64)> =
            HashMap::new();
        for (index, event) in events.iter().enumerate() {
            let bad = |message: &str| TimelineError::Event {
                index,
                message: message.to_string(),
            };
            match text(event, "ph") {
                "X" if text(event, "cat") != "transfer.part" => {
                    let lane = lane_of(uint(event, "tid")).ok_or_else(|| bad("no lane"))?;
                    let time = |key| {
                        (event.get(key).and_then(Value::as_f64))
                            .filter(|t| t.is_finite() && *t >= 0.0)
                            .ok_or_else(|| bad(&format!("'{key}' is not a time")))
                    };
                    let arg = |key: &str| event.pointer(&format!("/args/{key}"));
                    let arg_f64 = |key: &str| arg(key).and_then(Value::as_f64);
                    let transfer = arg("tensor").map(|tensor| TransferTiming {
                        tensor: tensor.as_str().unwrap_or_default().to_string(),
                        from_task: arg_text(event, "from_task"),
                        sender: arg_text(event, "sender"),
                        wait_micros: arg_f64("wait_us").unwrap_or(0.0),
                        transfer_micros: arg_f64("transfer_us").unwrap_or(0.0),
                        wire_bytes: arg("wire_bytes").and_then(Value::as_u64).unwrap_or(0),
                        bulk: arg("bulk").and_then(Value::as_bool).unwrap_or(false),
                    });
                    spans.push(Span {
                        lane,
                        node: text(event, "name").to_string(),
                        op: arg_text(event, "op"),
                        family: Some(OpFamily::from_name(text(event, "cat"))),
                        start_micros: time("ts")?,
                        micros: time("dur")?,
                        estimate_micros: arg_f64("estimate_us"),
                        transfer,
                    });
                    span_of.insert(text(event, "name").to_string(), spans.len() - 1);
                }
                ph @ ("s" | "f") => {
                    let id = uint(event, "id").ok_or_else(|| bad("a flow without an id"))?;
                    let entry = flow_ends.entry(id).or_default();
                    // A flow end binds to the span of the node it names, else to the span
                    // that holds its time on its lane.
                    let ts = event.get("ts").and_then(Value::as_f64).unwrap_or(f64::NAN);
                    let lane = lane_of(uint(event, "tid"));
                    let named = event.pointer("/args/node").and_then(Value::as_str);
                    let span = match named.and_then(|n| span_of.get(n)) {
                        Some(&i) => Some(i),
                        None => (spans.iter().enumerate().rev())
                            .find(|(_, s)| {
                                Some(s.lane) == lane
                                    && s.start_micros <= ts
                                    && ts <= s.start_micros + s.micros
                            })
                            .map(|(i, _)| i),
                    };
                    if ph == "s" {
                        entry.0 = span;
                        entry.2 = text(event, "name").to_string();
                        entry.3 = (event.pointer("/args/wire_bytes").and_then(Value::as_u64))
                            .unwrap_or(0);
                    } else {
                        entry.1 = span;
                    }
                }
                _ => {}
            }
        }
        let mut ids: Vec<u64> = flow_ends.keys().copied().collect();
        ids.sort_unstable();
        let flows = (ids.into_iter())
            .filter_map(|id| {
                let (from, to, tensor, wire_bytes) = flow_ends.remove(&id)?;
                Some(Flow {
                    from: from?,
                    to: to?,
                    tensor,
                    wire_bytes,
                })
            })
            .collect();
        Ok(StepTimeline {
            lanes,
            spans,
            flows,
        })
    }
}

/// A name as text and numbers, so that numbers in it order by value.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (text, tail) = rest.split_at(digits);
        let end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (number, tail) = tail.split_at(end);
        key.push((text.to_string(), number.parse().unwrap_or(u64::MAX)));
        rest = tail;
    }
    key
}

/// A time as a trace holds it: finite and not negative (a peer's odd value reads as 0).
fn time(micros: f64) -> f64 {
    if micros.is_finite() {
        micros.max(0.0)
    } else {
        0.0
    }
}

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    event.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn uint(event: &Value, key: &str) -> Option<u64> {
    event.get(key).and_then(Value::as_u64)
}

fn arg_text(event: &Value, key: &str) -> String {
    (event
        .pointer(&format!("/args/{key}"))
        .and_then(Value::as_str))
    .unwrap_or_default()
    .to_string()
}

#[cfg(test)]
mod tests;
