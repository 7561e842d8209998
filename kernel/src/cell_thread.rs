//! The cell thread: owns evcxr (through the frontend's [`Cells`]), runs cells one after
//! another, answers completions and inspections when idle, and hands every output to the
//! iopub sink.

use crate::history::History;
use crate::iopub_sink::{IopubCommand, IopubSink};
use crate::outputs::{error_output, media, plain_text};
use crate::transport::Outbox;
use crossbeam_channel::{Receiver, Sender};
use jupyter_protocol::{
    ExecuteInput, ExecuteReply, ExecuteRequest, ExecuteResult, ExecutionCount, InputRequest,
    JupyterMessage, JupyterMessageContent, ReplyError, ReplyStatus, StreamContent, Transient,
};
use sluice_frontend::cell::{Cells, OutputHandle};
use sluice_frontend::completion::Completion;
use sluice_frontend::engine_link::EngineLink;
use sluice_frontend::evaluator::Setup;
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
        answer: Sender<Result<Completion, String>>,
    },
    Inspect {
        code: String,
        pos: usize,
        answer: Sender<Result<Option<(String, String)>, String>>,
    },
}

/// What the cell thread shares with the shell and control handlers.
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
    pub fn new(history: History) -> Shared {
        Shared {
            busy: AtomicBool::new(false),
            cell: AtomicU64::new(0),
            interrupted: Mutex::new(None),
            child: Mutex::new(None),
            history: Mutex::new(history),
            variables: Mutex::new(Vec::new()),
            execution_count: AtomicUsize::new(0),
        }
    }

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
                tracing::warn!("cannot stop the cell's process: {e}");
            }
        }
    }
}

/// Starts the cell thread. evcxr starts on it and runs the prelude (which builds the client
/// code if the build folder is new); jobs wait meanwhile. `ready` is called once the prelude
/// ran (or failed).
pub fn spawn(
    setup: Setup,
    outbox: Outbox,
    engine: Arc<EngineLink>,
    shared: Arc<Shared>,
    jobs: Receiver<Job>,
    ready: Box<dyn FnOnce(bool) + Send>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sluice-cells".into())
        .spawn(move || {
            let sink = IopubSink::new(outbox.clone());
            let mut cells = match Cells::start(setup, engine, sink) {
                Ok(cells) => cells,
                Err(e) => return tracing::error!("cannot start the output thread: {e}"),
            };
            let started = cells.prelude();
            if let Err(e) = &started {
                tracing::error!("{e}");
            }
            let mut thread = CellThread {
                cells,
                outbox,
                shared,
            };
            thread.after_cell();
            ready(started.is_ok());
            thread.serve(jobs);
        })?;
    Ok(())
}

struct CellThread {
    cells: Cells<IopubCommand>,
    outbox: Outbox,
    shared: Arc<Shared>,
}

impl CellThread {
    fn serve(&mut self, jobs: Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Execute(message) => {
                    // A panic (in evcxr, say) must not leave this cell, or later ones,
                    // without a reply.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.execute(&message)
                    }));
                    let Some((finish, failed)) = ran.unwrap_or_else(|_| {
                        self.shared.busy.store(false, Ordering::SeqCst);
                        Some((self.broken_reply(&message), true))
                    }) else {
                        continue;
                    };
                    // The cells to skip are those queued before the failed cell's reply goes
                    // out: one sent after the client saw that reply is a new request and runs.
                    let skipped: Vec<Job> = if failed && stops_on_error(&message) {
                        jobs.try_iter().collect()
                    } else {
                        Vec::new()
                    };
                    self.cells.send_to_sink(finish);
                    self.abort(skipped);
                }
                other => self.answer(other),
            }
        }
    }

    /// The reply to a cell the kernel failed to run (it panicked on the cell thread).
    fn broken_reply(&mut self, message: &JupyterMessage) -> IopubCommand {
        tracing::error!("the cell thread panicked while running a cell");
        let error = ReplyError {
            ename: "KernelError".into(),
            evalue: "the kernel failed while running this cell (see its log); restart the kernel if cells keep failing".into(),
            traceback: Vec::new(),
        };
        let reply = ExecuteReply {
            status: ReplyStatus::Error,
            execution_count: ExecutionCount::new(self.count()),
            payload: Vec::new(),
            user_expressions: Some(HashMap::new()),
            error: Some(Box::new(error)),
        };
        IopubCommand::Finish {
            iopub: Vec::new(),
            reply: Some(Box::new(JupyterMessage::new(reply, Some(message)))),
        }
    }

    fn answer(&mut self, job: Job) {
        match job {
            Job::Execute(_) => {}
            Job::Complete { code, pos, answer } => {
                let result = (self.cells.evaluator())
                    .and_then(|ev| ev.complete(&code, pos).map_err(|e| e.to_string()));
                let _ = answer.send(result);
            }
            Job::Inspect { code, pos, answer } => {
                let result = (self.cells.evaluator())
                    .and_then(|ev| ev.inspect(&code, pos).map_err(|e| e.to_string()));
                let _ = answer.send(result);
            }
        }
    }

    /// Queued cells after a failed one are not run (as Jupyter's kernels do). Their replies go
    /// through the iopub sink, after the failed cell's.
    fn abort(&mut self, queued: Vec<Job>) {
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
                    self.cells.send_to_sink(IopubCommand::Begin(message));
                    self.cells.send_to_sink(IopubCommand::Finish {
                        iopub: Vec::new(),
                        reply: Some(Box::new(reply)),
                    });
                }
                other => self.answer(other),
            }
        }
    }

    fn count(&self) -> usize {
        self.shared.execution_count.load(Ordering::SeqCst)
    }

    /// Runs one cell; gives the command that sends its outputs and reply, and whether it
    /// failed (None for a message that is no execute request).
    fn execute(&mut self, message: &JupyterMessage) -> Option<(IopubCommand, bool)> {
        let JupyterMessageContent::ExecuteRequest(request) = &message.content else {
            return None;
        };
        let silent = request.silent;
        let store = request.store_history && !silent;
        if store {
            self.shared.execution_count.fetch_add(1, Ordering::SeqCst);
        }
        let count = self.count();
        self.cells
            .send_to_sink(IopubCommand::Begin(Box::new(message.clone())));
        if !silent {
            let input = ExecuteInput {
                code: request.code.clone(),
                execution_count: ExecutionCount::new(count),
            };
            self.cells.send_to_sink(IopubCommand::Emit(input.into()));
        }

        *self.shared.lock_interrupted() = None;
        self.shared.cell.fetch_add(1, Ordering::SeqCst);
        self.shared.busy.store(true, Ordering::SeqCst);
        let shared = self.shared.clone();
        let outbox = self.outbox.clone();
        let output = self.cells.output();
        let input = |prompt: &str, secret: bool| {
            let asked = InputRequest {
                prompt: prompt.to_string(),
                password: secret,
            };
            ask_input(&output, &outbox, &shared, message, request, asked)
        };
        let mut run = self.cells.run(&request.code, &input);
        self.shared.busy.store(false, Ordering::SeqCst);
        if self.shared.lock_interrupted().take().is_some() {
            self.cells.interrupted(&mut run);
        }
        self.after_cell();

        let mut iopub: Vec<JupyterMessageContent> = Vec::new();
        if !run.notes.is_empty() {
            let text = run.notes.join("\n") + "\n";
            iopub.push(StreamContent::stderr(&text).into());
        }
        let mut output_text = String::new();
        let failure = run.outcome.as_ref().err().cloned();
        if let Ok(Some(forms)) = run.outcome {
            if !silent {
                let mut result = ExecuteResult::new(ExecutionCount::new(count), media(&forms));
                result.transient = Some(Transient::default());
                output_text = plain_text(&result.data);
                iopub.push(result.into());
            }
        }
        let error = failure.as_ref().map(error_output);
        if let Some(error) = &error {
            iopub.push(error.clone().into());
        }
        let reply = ExecuteReply {
            status: if error.is_some() {
                ReplyStatus::Error
            } else {
                ReplyStatus::Ok
            },
            execution_count: ExecutionCount::new(count),
            payload: Vec::new(),
            user_expressions: Some(HashMap::new()),
            error: error.as_ref().map(|e| {
                Box::new(ReplyError {
                    ename: e.ename.clone(),
                    evalue: e.evalue.clone(),
                    traceback: e.traceback.clone(),
                })
            }),
        };
        if store {
            if output_text.is_empty() {
                output_text = run.report.stdout.clone();
            }
            self.shared
                .history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(count, &request.code, &output_text);
        }
        let finish = IopubCommand::Finish {
            iopub,
            reply: Some(Box::new(JupyterMessage::new(reply, Some(message)))),
        };
        Some((finish, error.is_some()))
    }

    fn after_cell(&mut self) {
        *self.shared.child.lock().unwrap_or_else(|e| e.into_inner()) = self.cells.process_handle();
        *self
            .shared
            .variables
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = self.cells.variables();
    }
}

/// Asks the client that sent the cell for a line of input (input_request on stdin) and waits
/// for it; an interrupt ends the wait with an empty answer. A client that does not take
/// input (allow_stdin false) gets a note on stderr and the cell an empty answer.
fn ask_input(
    output: &OutputHandle<IopubCommand>,
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
        output.send_to_sink(IopubCommand::Emit(StreamContent::stderr(&note).into()));
        return String::new();
    }
    // An interrupted cell asks nobody: it reads empty lines until it ends.
    if shared.lock_interrupted().is_some() {
        return String::new();
    }
    // Whatever the cell printed before asking shows above the input box.
    output.flush();
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
