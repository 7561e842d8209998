//! The cell thread: owns evcxr, runs cells one after another, answers completions and
//! inspections when idle, and hands every output to the pump.

use crate::engine_link::EngineLink;
use crate::evaluator::{Completion, Evaluator, Setup};
use crate::history::History;
use crate::outputs::{self, evcxr_error, panic_error};
use crate::pump::{self, CellReport, PumpCmd};
use crate::transport::Outbox;
use crossbeam_channel::{Receiver, Sender};
use jupyter_protocol::{
    ErrorOutput, ExecuteInput, ExecuteReply, ExecuteRequest, ExecuteResult, ExecutionCount,
    InputRequest, JupyterMessage, JupyterMessageContent, ReplyError, ReplyStatus, Status,
    StreamContent, Transient,
};
use std::collections::HashMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Work for the cell thread.
pub enum Job {
    Execute(Box<JupyterMessage>),
    Complete {
        code: String,
        pos: usize,
        answer: Sender<crate::error::Result<Completion>>,
    },
    Inspect {
        code: String,
        pos: usize,
        answer: Sender<crate::error::Result<Option<(String, String)>>>,
    },
}

/// What the cell thread shares with the shell and control handlers.
#[derive(Default)]
pub struct Shared {
    /// A cell is running.
    pub busy: AtomicBool,
    /// Which cell runs (or ran last): a new number for each.
    pub cell: AtomicU64,
    /// When an interrupt asked the running cell to stop.
    pub interrupted: Mutex<Option<Instant>>,
    /// evcxr's child process, for the interrupt's last resort.
    pub child: Mutex<Option<Arc<Mutex<Child>>>>,
    pub history: Mutex<History>,
    /// Variables and types after the last cell, for completions while a cell runs.
    pub variables: Mutex<Vec<(String, String)>>,
    pub execution_count: AtomicUsize,
}

impl Shared {
    fn lock_interrupted(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.interrupted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the running cell interrupted; returns its number, or None when none runs.
    pub fn interrupt(&self) -> Option<u64> {
        if !self.busy.load(Ordering::SeqCst) {
            return None;
        }
        *self.lock_interrupted() = Some(Instant::now());
        Some(self.cell.load(Ordering::SeqCst))
    }

    /// Kills evcxr's child (evcxr restarts it and the cell ends).
    pub fn kill_child(&self) {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(child) = child {
            let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = child.kill() {
                eprintln!("sluice-kernel: cannot stop the cell's process: {e}");
            }
        }
    }
}

/// Starts the cell thread. evcxr starts on it (compiling the client code if the build folder
/// is new); jobs wait meanwhile.
pub fn spawn(
    setup: Setup,
    outbox: Outbox,
    engine: Arc<EngineLink>,
    shared: Arc<Shared>,
    jobs: Receiver<Job>,
    live: Receiver<crate::live::LiveEvent>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sluice-cells".into())
        .spawn(move || {
            let (pump_tx, pump_rx) = crossbeam_channel::unbounded();
            let started = Evaluator::start(&setup);
            let (evaluator, stdout, stderr) = match started {
                Ok((ev, out)) => (Ok(ev), out.stdout, out.stderr),
                Err(e) => (
                    Err(e.to_string()),
                    crossbeam_channel::never(),
                    crossbeam_channel::never(),
                ),
            };
            if let Err(e) = pump::spawn(
                outbox.clone(),
                engine.clone(),
                stdout,
                stderr,
                pump_rx,
                live,
            ) {
                eprintln!("sluice-kernel: cannot start the output thread: {e}");
                return;
            }
            let mut cells = Cells {
                evaluator,
                pump: pump_tx,
                outbox,
                engine,
                shared,
                session: None,
            };
            cells.run_prelude();
            cells.serve(jobs);
        })?;
    Ok(())
}

struct Cells {
    evaluator: Result<Evaluator, String>,
    pump: Sender<PumpCmd>,
    outbox: Outbox,
    engine: Arc<EngineLink>,
    shared: Arc<Shared>,
    /// The prelude's session (address, handle).
    session: Option<(String, String)>,
}

/// How a cell ended.
struct Outcome {
    error: Option<ErrorOutput>,
    result: Option<ExecuteResult>,
    /// Extra lines to show (what a restart lost).
    notes: Vec<String>,
}

impl Cells {
    fn run_prelude(&mut self) {
        let Ok(ev) = &mut self.evaluator else { return };
        if let Err(e) = ev.prelude() {
            self.evaluator = Err(format!("the Sluice prelude failed: {e}"));
            return;
        }
        self.drain();
        let sessions = self.engine.sessions();
        self.session = sessions
            .first()
            .map(|h| (self.engine.addr().to_string(), h.clone()));
        self.after_cell();
    }

    fn serve(&mut self, jobs: Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Execute(message) => {
                    let failed = self.execute(&message);
                    if failed && stops_on_error(&message) {
                        self.abort_queued(&jobs);
                    }
                }
                other => self.answer(other),
            }
        }
    }

    fn answer(&mut self, job: Job) {
        match job {
            Job::Execute(_) => {}
            Job::Complete { code, pos, answer } => {
                let result = match &mut self.evaluator {
                    Ok(ev) => ev.complete(&code, pos),
                    Err(e) => Err(crate::KernelError::Evcxr(e.clone())),
                };
                let _ = answer.send(result);
            }
            Job::Inspect { code, pos, answer } => {
                let result = match &mut self.evaluator {
                    Ok(ev) => ev.inspect(&code, pos),
                    Err(e) => Err(crate::KernelError::Evcxr(e.clone())),
                };
                let _ = answer.send(result);
            }
        }
    }

    /// Queued cells after a failed one are not run (as Jupyter's kernels do).
    fn abort_queued(&mut self, jobs: &Receiver<Job>) {
        let queued: Vec<Job> = jobs.try_iter().collect();
        for job in queued {
            match job {
                Job::Execute(message) => {
                    let reply = ExecuteReply {
                        status: ReplyStatus::Aborted,
                        execution_count: ExecutionCount::new(self.count()),
                        payload: Vec::new(),
                        user_expressions: Some(HashMap::new()),
                        error: None,
                    };
                    let reply = JupyterMessage::new(reply, Some(&message));
                    self.outbox
                        .iopub(JupyterMessage::new(Status::busy(), Some(&message)));
                    self.outbox.shell(reply);
                    self.outbox
                        .iopub(JupyterMessage::new(Status::idle(), Some(&message)));
                }
                other => self.answer(other),
            }
        }
    }

    fn count(&self) -> usize {
        self.shared.execution_count.load(Ordering::SeqCst)
    }

    /// Runs one cell; true when it failed.
    fn execute(&mut self, message: &JupyterMessage) -> bool {
        let JupyterMessageContent::ExecuteRequest(request) = &message.content else {
            return false;
        };
        let silent = request.silent;
        let store = request.store_history && !silent;
        if store {
            self.shared.execution_count.fetch_add(1, Ordering::SeqCst);
        }
        let count = self.count();
        let _ = self.pump.send(PumpCmd::Begin(Box::new(message.clone())));
        if !silent {
            let input = ExecuteInput {
                code: request.code.clone(),
                execution_count: ExecutionCount::new(count),
            };
            let _ = self.pump.send(PumpCmd::Emit(input.into()));
        }
        let outcome = self.run(message, request, count);
        let status = if outcome.error.is_some() {
            ReplyStatus::Error
        } else {
            ReplyStatus::Ok
        };
        let mut iopub: Vec<JupyterMessageContent> = Vec::new();
        if !outcome.notes.is_empty() {
            let text = outcome.notes.join("\n") + "\n";
            iopub.push(jupyter_protocol::StreamContent::stderr(&text).into());
        }
        let mut output_text = String::new();
        if let Some(result) = outcome.result.filter(|_| !silent) {
            output_text = outputs::plain_text(&result.data);
            iopub.push(result.into());
        }
        if let Some(error) = &outcome.error {
            iopub.push(error.clone().into());
        }
        let reply = ExecuteReply {
            status,
            execution_count: ExecutionCount::new(count),
            payload: Vec::new(),
            user_expressions: Some(HashMap::new()),
            error: outcome.error.as_ref().map(|e| {
                Box::new(ReplyError {
                    ename: e.ename.clone(),
                    evalue: e.evalue.clone(),
                    traceback: e.traceback.clone(),
                })
            }),
        };
        if store {
            self.shared
                .history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(count, &request.code, &output_text);
        }
        let _ = self.pump.send(PumpCmd::Finish {
            iopub,
            reply: Some(Box::new(JupyterMessage::new(reply, Some(message)))),
        });
        outcome.error.is_some()
    }

    fn run(&mut self, parent: &JupyterMessage, request: &ExecuteRequest, count: usize) -> Outcome {
        let ev = match &mut self.evaluator {
            Ok(ev) => ev,
            Err(e) => {
                return Outcome {
                    error: Some(ErrorOutput {
                        ename: "KernelStartError".into(),
                        evalue: e.clone(),
                        traceback: e.lines().map(str::to_string).collect(),
                    }),
                    result: None,
                    notes: Vec::new(),
                }
            }
        };
        let variables_before = ev.variables();
        *self.shared.lock_interrupted() = None;
        self.shared.cell.fetch_add(1, Ordering::SeqCst);
        self.shared.busy.store(true, Ordering::SeqCst);
        let input = |prompt: &str, secret: bool| {
            let asked = InputRequest {
                prompt: prompt.to_string(),
                password: secret,
            };
            ask_input(
                &self.pump,
                &self.outbox,
                &self.shared,
                parent,
                request,
                asked,
            )
        };
        let result = ev.execute(&request.code, &input);
        self.shared.busy.store(false, Ordering::SeqCst);
        let report = self.drain();
        let interrupted = self.shared.lock_interrupted().take().is_some();
        let mut outcome = Outcome {
            error: None,
            result: None,
            notes: Vec::new(),
        };
        match result {
            Ok(out) => {
                if std::env::var_os("SLUICE_KERNEL_TIMINGS").is_some() {
                    let phases: Vec<String> = (out.phases.iter())
                        .map(|p| format!("{} {:.0} ms", p.name, p.duration.as_secs_f64() * 1e3))
                        .collect();
                    eprintln!("sluice-kernel: cell phases: {}", phases.join(", "));
                }
                if let Some(panic) = &report.panic {
                    outcome.error = Some(panic_error(panic));
                } else if !out.is_empty() {
                    let mut result = ExecuteResult::new(
                        ExecutionCount::new(count),
                        outputs::media(&out.content_by_mime_type),
                    );
                    result.transient = Some(Transient::default());
                    outcome.result = Some(result);
                }
            }
            Err(e) => {
                if matches!(e, evcxr::Error::SubprocessTerminated(_)) {
                    outcome.notes = self.recover(&variables_before);
                }
                outcome.error = Some(evcxr_error(&e));
            }
        }
        if interrupted {
            let failures = self.engine.reset_all();
            for f in failures {
                eprintln!("sluice-kernel: after the interrupt: {f}");
            }
            if outcome.error.is_none() || report.panic.is_some() {
                outcome.error = Some(ErrorOutput {
                    ename: "Interrupted".into(),
                    evalue: "the cell was interrupted; its engine work was cancelled".into(),
                    traceback: vec!["\x1b[31mInterrupted\x1b[0m: engine work cancelled".into()],
                });
            }
        }
        self.after_cell();
        outcome
    }

    /// evcxr restarted its child: the session comes back from the engine, other variables are
    /// gone. Returns what to tell the user.
    fn recover(&mut self, variables_before: &[(String, String)]) -> Vec<String> {
        let mut notes = vec![
            "The cell's process was stopped and restarted; trained variables stay in the engine."
                .to_string(),
        ];
        let lost = crate::evaluator::lost_variables(variables_before);
        if !lost.is_empty() {
            notes.push(format!(
                "Lost variables: {} (find graph nodes again with graph.get(\"name\")).",
                lost.join(", ")
            ));
        }
        if let (Ok(ev), Some((addr, handle))) = (&mut self.evaluator, &self.session) {
            match ev.reattach(addr, handle) {
                Ok(_) => notes.push(
                    "`sess` and `graph` are back, attached to the same engine session.".into(),
                ),
                Err(e) => notes.push(format!("Could not attach to the session again: {e}")),
            }
        }
        self.drain();
        notes
    }

    fn drain(&mut self) -> CellReport {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.pump.send(PumpCmd::Drain(tx)).is_err() {
            return CellReport::default();
        }
        rx.recv().unwrap_or_default()
    }

    fn after_cell(&mut self) {
        if let Ok(ev) = &self.evaluator {
            *self.shared.child.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(ev.process_handle());
            *self
                .shared
                .variables
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = ev.variables();
        }
    }
}

/// Asks the client that sent the cell for a line of input (input_request on stdin) and waits
/// for it; an interrupt ends the wait with an empty answer. A client that does not take
/// input (allow_stdin false) gets a note on stderr and the cell an empty answer.
fn ask_input(
    pump: &Sender<PumpCmd>,
    outbox: &Outbox,
    shared: &Shared,
    parent: &JupyterMessage,
    request: &ExecuteRequest,
    asked: InputRequest,
) -> String {
    if !request.allow_stdin {
        let note = format!(
            "this client does not take input; `{}` reads an empty line\n",
            asked.prompt
        );
        let _ = pump.send(PumpCmd::Emit(StreamContent::stderr(&note).into()));
        return String::new();
    }
    // An interrupted cell asks nobody: it reads empty lines until it ends.
    if shared.lock_interrupted().is_some() {
        return String::new();
    }
    // Whatever the cell printed before asking shows above the input box.
    let (done, flushed) = crossbeam_channel::bounded(1);
    if pump.send(PumpCmd::Flush(done)).is_ok() {
        let _ = flushed.recv();
    }
    let answer = outbox.ask_input(JupyterMessage::new(asked, Some(parent)));
    loop {
        match answer.recv_timeout(Duration::from_millis(100)) {
            Ok(value) => return value,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return String::new(),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if shared.lock_interrupted().is_some() {
                    return String::new();
                }
            }
        }
    }
}

fn stops_on_error(message: &JupyterMessage) -> bool {
    matches!(&message.content, JupyterMessageContent::ExecuteRequest(r) if r.stop_on_error)
}
