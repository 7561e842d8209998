"""Interrupts, input and message signing, as a Jupyter client sees them.

1. An interrupt during a long Fit gives control back within 2 s: the cell ends with an
   error, and the next cell still sees the variables defined before it.
2. A cell stuck in its own code (not in the engine) is stopped by restarting its process
   after the grace period: the kernel says which variables were lost, `sess` and `graph`
   come back attached to the same engine session, and the trained variables are still there.
3. A cell that asks for input sends input_request on stdin and gets the client's answer;
   a password request says so; a client that takes no input gets an empty line and a note.
4. A message signed with the wrong key is not executed (and gets no reply).
5. An interrupt during a loop of steps on a local cluster cancels the step running on the
   workers: control comes back within 2 s and the cluster runs steps again afterwards.
6. Restart gives a fresh kernel on the same connection (a new prelude, the old cells'
   variables gone); shutdown_request ends the kernel process by itself.

Run with JUPYTER_PATH pointing at the `sluice` kernelspec:  python interrupt_and_signature.py
"""

import sys
import time
from queue import Empty

import zmq
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session

WARMUP_TIMEOUT = 900
from client import check, iopub_of, run, summary, text_of


SETUP = """
let x = graph.placeholder("x", DType::F32, &[-1, 784]);
let w = graph.variable("W", &[784, 10], Initializer::Zeros);
let b = graph.variable("b", &[10], Initializer::Zeros);
let y = softmax(matmul(x, w) + b);
let y_ = graph.placeholder("y_", DType::F32, &[-1, 10]);
let xent = -reduce_sum(y_ * log(y));
let train = GradientDescent::new(0.01).minimize(xent)?;
sess.init_variables()?;
let kept = 41;
"""

LONG_FIT = """
let mut config = FitConfig::new(x, y_, xent, train);
config.steps = 10_000_000;
config.report_every = 100;
let fitted = sess.fit("mnist-digits", &config, &mut |_p| {});
println!("fit returned: {:?}", fitted.map(|p| p.map(|p| p.steps_done)));
"""


def interrupt_during_fit(km, kc):
    reply, _ = run(kc, SETUP, timeout=WARMUP_TIMEOUT)
    check(reply["status"] == "ok", f"the seed graph builds ({reply.get('evalue', '')})")

    msg_id = kc.execute(LONG_FIT)
    # Wait until the cell runs (compiles, then trains for a while).
    time.sleep(6)
    started = time.monotonic()
    km.interrupt_kernel()
    reply = None
    while time.monotonic() - started < 30:
        try:
            msg = kc.get_shell_msg(timeout=1)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            reply = msg
            break
    took = time.monotonic() - started
    check(reply is not None, "the interrupted cell replied")
    check(took < 2.0, f"control came back {took:.2f} s after the interrupt (limit 2 s)")
    if reply is not None:
        check(reply["content"]["status"] == "error", "the interrupted cell ended with an error")
    # Drain the cell's iopub messages.
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=5)
        except Empty:
            break
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            break

    reply, outputs = run(kc, "kept + 1")
    check(reply["status"] == "ok" and "42" in text_of(outputs), "variables survive the interrupt")
    reply, outputs = run(kc, 'sess.variable(w)?.map(|t| t.shape().to_vec())')
    check(
        reply["status"] == "ok" and "[784, 10]" in text_of(outputs),
        f"the session still holds W and runs again ({text_of(outputs).strip()})",
    )


def wait_reply(kc, msg_id, limit):
    """The shell reply to `msg_id` and the seconds it took, or (None, limit)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            msg = kc.get_shell_msg(timeout=1)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg, time.monotonic() - started
    return None, limit


def stuck_cell_is_restarted(km, kc):
    reply, _ = run(kc, "let before_stuck = 7;")
    check(reply["status"] == "ok", "a variable is defined before the stuck cell")
    msg_id = kc.execute("std::thread::sleep(std::time::Duration::from_secs(600));")
    time.sleep(4)
    km.interrupt_kernel()
    reply, took = wait_reply(kc, msg_id, 60)
    check(reply is not None, f"the stuck cell replied {took:.1f} s after the interrupt")
    if reply is None:
        return
    check(reply["content"]["status"] == "error", "the stuck cell ended with an error")
    said = text_of(iopub_of(kc, msg_id))
    check("restarted" in said and "before_stuck" in said, f"the kernel said what was lost: {said!r}")
    check("`sess` and `graph` are back" in said, "the session came back after the restart")
    reply, outputs = run(kc, "before_stuck")
    check(reply["status"] == "error", "the stuck cell's process variables are gone, as said")
    reply, outputs = run(
        kc, 'let w = graph.get("W").expect("W is in the engine"); sess.variable(w)?.map(|t| t.shape().to_vec())'
    )
    check(
        reply["status"] == "ok" and "[784, 10]" in text_of(outputs),
        f"the engine kept W and the new process reads it ({text_of(outputs).strip()})",
    )


def input_is_asked_for(kc):
    code = 'let name = sluice_cell::input("Your name: "); println!("hello {name}!");'
    msg_id = kc.execute(code, allow_stdin=True)
    request = kc.get_stdin_msg(timeout=120)
    check(request["msg_type"] == "input_request", "the cell sent input_request on stdin")
    check(request["parent_header"].get("msg_id") == msg_id, "the input_request belongs to the cell")
    check(request["content"]["prompt"] == "Your name: ", f"the prompt is the cell's ({request['content']})")
    check(request["content"]["password"] is False, "a plain input is not a password")
    kc.input("Ada")
    reply, outputs = run(kc, None, msg_id=msg_id)
    check(reply["status"] == "ok" and "hello Ada!" in text_of(outputs), f"the cell read the answer ({text_of(outputs)!r})")

    msg_id = kc.execute('let secret = sluice_cell::password("Token: "); secret.len()', allow_stdin=True)
    request = kc.get_stdin_msg(timeout=120)
    check(request["content"]["password"] is True, "a password request says so")
    kc.input("s3cret")
    reply, outputs = run(kc, None, msg_id=msg_id)
    check(reply["status"] == "ok" and "6" in text_of(outputs), "the cell read the password")

    # A line left open by print! does not hide the request, and no empty line is left over.
    code = 'print!("Half a line, then "); let shout = sluice_cell::input("Say:\\n"); shout.len()'
    msg_id = kc.execute(code, allow_stdin=True)
    request = kc.get_stdin_msg(timeout=120)
    check(request["content"]["prompt"] == "Say:\n", f"a prompt with a line break arrives whole ({request['content']})")
    kc.input("hey")
    reply, outputs = run(kc, None, msg_id=msg_id)
    said = text_of(outputs)
    check(reply["status"] == "ok" and said == "Half a line, then \n3", f"print! before input: {said!r}")

    reply, outputs = run(kc, 'let quiet = sluice_cell::input("Anyone? "); quiet.is_empty()')
    said = text_of(outputs)
    check(reply["status"] == "ok" and "true" in said, "without stdin the cell reads an empty line")
    check("does not take input" in said, f"and is told why ({said!r})")


def wrong_signature_is_not_executed(km, kc):
    info = km.get_connection_info(session=False)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(f"{info['transport']}://{info['ip']}:{info['shell_port']}")
    forger = Session(key=b"not-the-kernel-key", signature_scheme="hmac-sha256")
    content = {
        "code": 'println!("FORGED-CELL-RAN"); let forged = 1;',
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    msg = forger.msg("execute_request", content)
    forger.send(sock, msg)
    got_reply = sock.poll(3000)
    check(not got_reply, "a message with a wrong signature gets no reply")
    sock.close(linger=0)

    reply, outputs = run(kc, "forged")
    check(reply["status"] == "error", "the forged cell did not run (its variable is unknown)")
    check("FORGED-CELL-RAN" not in text_of(outputs), "nothing the forged cell printed appeared")


CLUSTER = """
use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster};
let cluster = LocalCluster::start(&[("worker", 2)])?;
let cg = Graph::new();
let cx = cg.placeholder("x", DType::F32, &[-1, 512]);
let cw = { let _d = cg.device("/job:worker/task:0"); cg.variable("W", &[512, 512], Initializer::GlorotUniform) };
let cy = { let _d = cg.device("/job:worker/task:1"); reduce_sum(matmul(matmul(cx, cw), cw)) };
let mut csess = DistributedSession::new(&cg, cluster.spec(), DistributedOptions::default())?;
sluice_cell::announce_cluster_session(&csess);
csess.init_variables()?;
let cbatch = Tensor::full(&[256, 512], 0.5f32);
"""

CLUSTER_LOOP = """
for _ in 0..1_000_000 {
    csess.run(&[cy], &[(cx, cbatch.clone())])?;
}
"""


def interrupt_on_a_cluster(km, kc):
    reply, outputs = run(kc, CLUSTER, timeout=WARMUP_TIMEOUT)
    check(reply["status"] == "ok", f"a local cluster starts in a cell ({text_of(outputs).strip()})")
    msg_id = kc.execute(CLUSTER_LOOP, allow_stdin=False)
    time.sleep(6)
    km.interrupt_kernel()
    reply, took = wait_reply(kc, msg_id, 30)
    check(reply is not None and took < 2.0, f"a loop of cluster steps stopped {took:.2f} s after the interrupt")
    if reply is not None:
        check(reply["content"]["status"] == "error", "the interrupted loop ended with an error")
    iopub_of(kc, msg_id)
    reply, outputs = run(kc, "csess.run(&[cy], &[(cx, cbatch.clone())])?[0].shape().len()")
    check(reply["status"] == "ok" and "0" in text_of(outputs), f"the cluster runs steps again ({text_of(outputs).strip()})")


def restart_and_shutdown(km, kc):
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=300)
    reply, _ = run(kc, "kept", timeout=WARMUP_TIMEOUT)
    check(reply["status"] == "error", "after a restart the old cells' variables are gone")
    reply, outputs = run(kc, "let after_restart = 41; after_restart + 1")
    check(
        reply["status"] == "ok" and "42" in text_of(outputs),
        f"the restarted kernel runs cells ({reply['status']} {reply.get('evalue', '')}"
        f"{text_of(outputs)!r}, outputs: {[m['msg_type'] for m in outputs]})",
    )
    reply, outputs = run(kc, "sess.handle().len() > 0")
    check(reply["status"] == "ok" and "true" in text_of(outputs), "the restarted kernel has a session")
    kc.shutdown()
    started = time.monotonic()
    while km.is_alive() and time.monotonic() - started < 15:
        time.sleep(0.2)
    check(not km.is_alive(), f"shutdown_request ended the kernel ({time.monotonic() - started:.1f} s)")


def main():
    km, kc = start_new_kernel(kernel_name="sluice", startup_timeout=120)
    try:
        interrupt_during_fit(km, kc)
        input_is_asked_for(kc)
        stuck_cell_is_restarted(km, kc)
        wrong_signature_is_not_executed(km, kc)
        interrupt_on_a_cluster(km, kc)
        restart_and_shutdown(km, kc)
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
    return summary("interrupt_and_signature")


if __name__ == "__main__":
    sys.exit(main())
