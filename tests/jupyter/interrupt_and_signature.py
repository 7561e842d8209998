"""Interrupt and message signing, as a Jupyter client sees them.

1. An interrupt during a long Fit gives control back within 2 s: the cell ends with an
   error, and the next cell still sees the variables defined before it.
2. A message signed with the wrong key is not executed (and gets no reply).

Run with JUPYTER_PATH pointing at the `sluice` kernelspec:  python interrupt_and_signature.py
"""

import sys
import time
from queue import Empty

import zmq
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session

WARMUP_TIMEOUT = 900
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def run(kc, code, timeout=120):
    """Executes `code`; returns (reply content, iopub messages of the cell)."""
    msg_id = kc.execute(code)
    outputs = []
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        outputs.append(msg)
    return reply["content"], outputs


def text_of(outputs):
    parts = []
    for m in outputs:
        c = m["content"]
        if m["msg_type"] == "stream":
            parts.append(c["text"])
        elif m["msg_type"] in ("execute_result", "display_data"):
            parts.append(c["data"].get("text/plain", ""))
        elif m["msg_type"] == "error":
            parts.append(c["ename"] + ": " + c["evalue"])
    return "".join(parts)


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


def main():
    km, kc = start_new_kernel(kernel_name="sluice", startup_timeout=120)
    try:
        interrupt_during_fit(km, kc)
        wrong_signature_is_not_executed(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    passed = "all" if not failures else f"{len(failures)} failed"
    print(f"interrupt_and_signature: {passed}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
