"""What the Jupyter client scripts share: checks that report and are counted, and cells run
through a jupyter_client kernel client with their reply and iopub messages."""

failures = []


def check(condition, what):
    """Prints `ok` or `FAIL` with `what`; failures are counted for `summary`."""
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def summary(name):
    """The script's last line, and its exit code."""
    print(f"{name}: all passed" if not failures else f"{name}: {len(failures)} failed")
    return 1 if failures else 0


def run(kc, code, timeout=180, msg_id=None, **execute_args):
    """Executes `code` (or waits for the cell `msg_id`); returns (reply content, the cell's
    iopub messages up to its idle, status and execute_input left out)."""
    execute_args.setdefault("allow_stdin", False)
    msg_id = msg_id or kc.execute(code, **execute_args)
    return wait(kc, msg_id, timeout)


def wait(kc, msg_id, timeout=180):
    """The reply to the cell `msg_id` and its iopub messages."""
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return reply["content"], iopub_of(kc, msg_id, timeout)


def iopub_of(kc, msg_id, timeout=180):
    """The iopub messages of the cell `msg_id`, up to its idle."""
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return outputs
        if msg["msg_type"] not in ("status", "execute_input"):
            outputs.append(msg)


def text_of(outputs):
    """What the outputs say as text: streams, plain forms of results, errors."""
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
