//! Ctrl-C while a cell runs. The terminal stops turning Ctrl-C into SIGINT for the time of the
//! cell (no signal reaches evcxr's child, whose variables must survive), and a thread reads
//! the keys instead: the first Ctrl-C cancels the engine work of the REPL's sessions, a
//! second one stops the cell's process (evcxr restarts it; the engine keeps the variables).

use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::termios::{
    tcgetattr, tcsetattr, LocalFlags, SetArg, SpecialCharacterIndices, Termios,
};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The byte a terminal sends for Ctrl-C.
const CTRL_C: u8 = 0x03;

/// What happens on each Ctrl-C: called with 1 for the first, 2 for the second, ...
pub type OnInterrupt = Box<dyn Fn(usize) + Send + 'static>;

/// Watches the keyboard for Ctrl-C until dropped or [`Watch::stop`]ped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    presses: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    saved: Option<Termios>,
}

impl Watch {
    /// Starts watching when standard input is a terminal; otherwise Ctrl-C keeps its usual
    /// meaning (the signal ends the REPL) and the watch does nothing.
    pub fn start(on_interrupt: OnInterrupt) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let presses = Arc::new(AtomicUsize::new(0));
        let mut watch = Watch {
            stop: stop.clone(),
            presses: presses.clone(),
            thread: None,
            saved: None,
        };
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return watch;
        }
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return watch;
        };
        let mut quiet = saved.clone();
        quiet
            .local_flags
            .remove(LocalFlags::ISIG | LocalFlags::ICANON | LocalFlags::ECHO);
        quiet.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        quiet.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).is_err() {
            return watch;
        }
        watch.saved = Some(saved);
        let thread = std::thread::Builder::new()
            .name("sluice-ctrl-c".into())
            .spawn(move || read_keys(&stop, &presses, &on_interrupt));
        match thread {
            Ok(handle) => watch.thread = Some(handle),
            Err(e) => eprintln!("sluice: Ctrl-C will not interrupt this cell: {e}"),
        }
        watch
    }

    /// Stops watching, gives the terminal back; returns how many times Ctrl-C was pressed.
    pub fn stop(mut self) -> usize {
        self.finish();
        self.presses.load(Ordering::SeqCst)
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(saved) = self.saved.take() {
            let stdin = std::io::stdin();
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &saved);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Reads keys until told to stop; keys other than Ctrl-C are dropped (input typed ahead
/// while a cell runs is not kept).
fn read_keys(stop: &AtomicBool, presses: &AtomicUsize, on_interrupt: &OnInterrupt) {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, 100u8) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let n = match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        };
        for _ in buf[..n].iter().filter(|&&b| b == CTRL_C) {
            let count = presses.fetch_add(1, Ordering::SeqCst) + 1;
            on_interrupt(count);
        }
    }
}
