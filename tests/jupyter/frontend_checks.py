"""What a notebook user meets in cells, checked through a real jupyter_client:

1. A cell whose `?` returns an error replies `status: error` naming the error, and the
   queued cells after it are aborted (Run All stops there).
2. Rich output printed during a cell arrives as display_data of its own, in order with the
   cell's text, every one of them (two of one type included); evcxr's raw block format too;
   only the final value is the execute_result; a cell ending in a loop shows no `()`.
3. Completions from the standard library (`std::mem::sw` offers `swap`) and the prelude
   name what they insert, without parameter snippets, with their kinds for JupyterLab.
4. A panic says at which line of the cell it happened, not where in evcxr's generated code.
5. Live curves: a loop of runs that fetches the loss draws one curve over runs, and an
   accuracy run after it draws none; a fit after earlier training counts its own steps
   ("step 300 of 300", not the session's global step).
6. An interrupted fit says its earlier steps' updates stay (not that nothing changed).
7. The graph drawing is titled by the graph's size, not by an internal handle; the summary
   is a table.
8. History search finds the cells of an earlier kernel (after a restart).
9. A panic the cell catches fails nothing; a printed line that looks like a frontend
   directive is text; evcxr's `:clear` restarts the cell process and `sess` comes back.

Run with JUPYTER_PATH pointing at the `sluice` kernelspec:  python frontend_checks.py
"""

import base64
import sys
import time

from jupyter_client.manager import start_new_kernel

WARMUP_TIMEOUT = 900
from client import check, iopub_of, run, summary, text_of, wait


def kinds(outputs):
    """Each output as a short tag: stream text, display/result with their MIME types.
    Consecutive stream messages are one tag, as notebooks show them: how printed text is cut
    into messages depends on timing."""
    tags = []
    for m in outputs:
        c = m["content"]
        if m["msg_type"] == "stream":
            if tags and tags[-1][0] == "stream":
                tags[-1] = ("stream", tags[-1][1] + c["text"])
            else:
                tags.append(("stream", c["text"]))
        elif m["msg_type"] in ("display_data", "execute_result"):
            mimes = sorted(k for k in c["data"] if k != "text/plain")
            tags.append((m["msg_type"], ",".join(mimes) or c["data"].get("text/plain", "")))
        elif m["msg_type"] == "error":
            tags.append(("error", c["ename"]))
    return [(kind, text.strip()) if kind == "stream" else (kind, text) for kind, text in tags]


def question_mark(kc):
    run(kc, 'let p = graph.placeholder("p", DType::F32, &[-1, 3]);')
    msg_id = kc.execute("let q = sess.run(&[p], &[])?;", allow_stdin=False, stop_on_error=True)
    queued = kc.execute('println!("queued after the error");', allow_stdin=False)
    reply, outputs = wait(kc, msg_id)
    check(reply["status"] == "error", f"a `?` error replies status error ({reply['status']})")
    check("placeholder 'p' needs a value" in reply.get("evalue", ""),
          f"the reply names the error ({reply.get('evalue')!r})")
    check(any(m["msg_type"] == "error" for m in outputs), "an error output is shown")
    reply, _ = wait(kc, queued)
    check(reply["status"] == "aborted", f"the queued cell after it was aborted ({reply['status']})")
    # A cell sent the moment the client sees the error reply is a new request: it runs.
    ran = []
    for _ in range(5):
        failing = kc.execute("let q = sess.run(&[p], &[])?;", allow_stdin=False, stop_on_error=True)
        reply = kc.get_shell_msg(timeout=180)
        while reply["parent_header"].get("msg_id") != failing:
            reply = kc.get_shell_msg(timeout=180)
        reply = reply["content"]
        sent_after = kc.execute("40 + 2", allow_stdin=False)
        iopub_of(kc, failing)
        after, outputs = wait(kc, sent_after)
        ran.append(reply["status"] == "error" and after["status"] == "ok" and "42" in text_of(outputs))
    check(all(ran), f"a cell sent right after an error reply runs ({ran})")


PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def rich_output(kc):
    png = ", ".join(str(b) for b in PNG_1X1)
    code = f"""
println!("before");
display_html("<b>first</b>");
println!("between");
display_svg("<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>");
display_html("<i>second</i>");
display_png(&[{png}]);
println!("EVCXR_BEGIN_CONTENT text/html\\n<u>raw block</u>\\nEVCXR_END_CONTENT");
println!("after");
"""
    reply, outputs = run(kc, code)
    check(reply["status"] == "ok", f"the rich-output cell ran ({reply.get('evalue', '')})")
    expected = [
        ("stream", "before"),
        ("display_data", "text/html"),
        ("stream", "between"),
        ("display_data", "image/svg+xml"),
        ("display_data", "text/html"),
        ("display_data", "image/png"),
        ("display_data", "text/html"),
        ("stream", "after"),
    ]
    check(kinds(outputs) == expected, f"outputs in order, each its own ({kinds(outputs)})")
    htmls = [m["content"]["data"]["text/html"] for m in outputs
             if m["msg_type"] == "display_data" and "text/html" in m["content"]["data"]]
    check(htmls == ["<b>first</b>", "<i>second</i>", "<u>raw block</u>"], f"both HTML outputs kept ({htmls})")

    reply, outputs = run(kc, 'println!("x");\n1 + 2')
    check(kinds(outputs) == [("stream", "x"), ("execute_result", "3")],
          f"the final value is the result ({kinds(outputs)})")
    reply, outputs = run(kc, "let t = Tensor::new(&[2], vec![1.0f32, 2.0]).unwrap();\nt")
    check(kinds(outputs) == [("execute_result", "text/html")], f"a tensor's table is the result ({kinds(outputs)})")
    reply, outputs = run(kc, "let t2 = t.clone();\nt2")
    check(reply["status"] == "ok", "a variable shown at the end is not moved")
    reply, outputs = run(kc, 'for i in 0..2 { println!("row {i}"); }')
    check(all(m["msg_type"] != "execute_result" for m in outputs),
          f"a cell ending in a loop shows no () ({kinds(outputs)})")


def completions(kc):
    def complete(code):
        msg_id = kc.complete(code, len(code))
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        return reply["content"]

    # The first completion loads the standard library's sources (rust-src): give it time.
    reply = complete("std::mem::sw")
    check("swap" in reply["matches"], f"std::mem::sw offers swap ({reply['matches'][:8]})")
    check(all("(" not in m for m in reply["matches"]), f"no parameter snippets ({reply['matches'][:8]})")
    types = reply["metadata"].get("_jupyter_types_experimental", [])
    check(any(t.get("text") == "swap" and t.get("type") == "function" for t in types),
          "JupyterLab gets each completion's kind")
    reply = complete("let m = reduce_me")
    check("reduce_mean" in reply["matches"], f"the prelude's reduce_mean completes ({reply['matches'][:8]})")


def panic_location(kc):
    reply, outputs = run(kc, 'let a = 1;\nif a == 1 { panic!("at the second line"); }\nlet b = 2;')
    traceback = "\n".join(reply.get("traceback", []))
    check(reply["status"] == "error" and "line 2 of the cell" in traceback,
          f"the panic names the cell's line ({traceback!r})")
    check("src/lib.rs" not in traceback, "not evcxr's generated file")


SEED = """
let x = graph.placeholder("x", DType::F32, &[-1, 784]);
let w = graph.variable("W", &[784, 10], Initializer::Zeros);
let b = graph.variable("b", &[10], Initializer::Zeros);
let y = softmax(matmul(x, w) + b);
let y_ = graph.placeholder("y_", DType::F32, &[-1, 10]);
let xent = (-reduce_sum(y_ * log(y))).named("cross_entropy");
let train = GradientDescent::new(0.01).minimize(xent)?;
let accuracy = reduce_mean(cast(equal(argmax(y, 1), argmax(y_, 1)), DType::F32)).named("accuracy");
sess.init_variables()?;
let digits = mnist_digits()?;
"""

LOOP = """
for batch in digits.train.batches(100, 0).take(40) {
    sess.run_with_targets(&[xent], &[(x, batch.inputs), (y_, batch.one_hot)], &[train])?;
}
let acc = sess.run(&[accuracy], &[(x, digits.test.inputs_tensor()), (y_, digits.test.one_hot_tensor())])?;
println!("accuracy {:.3}", acc[0].scalar_f64().unwrap_or(0.0));
"""

FIT = """
let mut config = FitConfig::new(x, y_, xent, train);
config.steps = 300;
config.report_every = 50;
sess.fit("mnist-digits", &config, &mut |_| {})?;
"""


def curves_of(outputs):
    shown = {}
    for m in outputs:
        c = m["content"]
        meta = c.get("metadata", {}).get("sluice")
        if meta and m["msg_type"] in ("display_data", "update_display_data"):
            key = c.get("transient", {}).get("display_id")
            shown[key] = (meta, c["data"].get("text/plain", ""))
    return list(shown.values())


def live_curves(kc):
    reply, _ = run(kc, SEED, timeout=WARMUP_TIMEOUT)
    check(reply["status"] == "ok", f"the seed graph builds ({reply.get('evalue', '')})")
    reply, outputs = run(kc, LOOP)
    check(reply["status"] == "ok", f"the loop of runs ran ({reply.get('evalue', '')})")
    curves = curves_of(outputs)
    check(len(curves) == 1, f"one curve for the loop, none for the single accuracy run ({curves})")
    if curves:
        meta, plain = curves[0]
        check(plain.startswith("run ") and "cross_entropy" in plain,
              f"over runs, named by the node ({plain!r})")
    reply, outputs = run(kc, FIT)
    curves = curves_of(outputs)
    check(len(curves) == 1 and curves[0][1].startswith("step 300 of 300"),
          f"the fit counts its own steps ({curves})")


def interrupted_fit(km, kc):
    code = FIT.replace("config.steps = 300;", "config.steps = 10_000_000;")
    msg_id = kc.execute(code, allow_stdin=False)
    time.sleep(5)
    km.interrupt_kernel()
    reply, outputs = wait(kc, msg_id, timeout=60)
    said = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    said += reply.get("evalue", "") + "".join(reply.get("traceback", []))
    check(reply["status"] == "error" and reply.get("ename") == "Interrupted",
          f"the interrupted fit ends as interrupted ({reply.get('ename')})")
    check("changed any variable" not in said or "what earlier steps trained stays" in said,
          f"it does not claim nothing changed ({said[-300:]!r})")


def graph_pictures(kc):
    reply, outputs = run(kc, ":graph")
    svgs = [m["content"]["data"]["image/svg+xml"] for m in outputs
            if m["msg_type"] == "display_data" and "image/svg+xml" in m["content"]["data"]]
    check(len(svgs) == 1, "`:graph` draws the graph")
    if svgs:
        check("session s-" not in svgs[0] and "trainable parameters" in svgs[0],
              "titled by the graph's size, not a handle")
    reply, outputs = run(kc, ":summary")
    tags = kinds(outputs)
    check(any(t[0] in ("display_data", "execute_result") and "text/html" in t[1] for t in tags),
          f"`:summary` shows a table ({tags})")
    text = "".join(m["content"]["data"].get("text/plain", "") for m in outputs
                   if m["msg_type"] in ("display_data", "execute_result"))
    check("7,850 trainable parameters" in text, f"the seed model has 7,850 parameters ({text[:200]!r})")


def odd_cells(kc):
    reply, outputs = run(kc, 'let caught = std::panic::catch_unwind(|| panic!("caught")).is_err();\ncaught')
    check(reply["status"] == "ok" and kinds(outputs)[-1:] == [("execute_result", "true")],
          f"a panic the cell catches fails nothing ({reply.get('evalue', '')}, {kinds(outputs)})")
    reply, outputs = run(kc, 'println!("SLUICE_CELL - panic a 1 b");\nprintln!("SLUICE_CELL - result");\n1 + 1')
    check(reply["status"] == "ok", f"look-alike directives do nothing ({reply.get('evalue', '')})")
    check(("stream", "SLUICE_CELL - panic a 1 b\nSLUICE_CELL - result") in kinds(outputs),
          f"and show as text ({kinds(outputs)})")
    reply, outputs = run(kc, ":clear")
    said = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    check("are back" in said, f"after :clear the kernel says sess and graph are back ({said!r})")
    reply, outputs = run(kc, "sess.handle().len() > 0")
    check(kinds(outputs) == [("execute_result", "true")], f"and sess works ({kinds(outputs)}, {reply.get('evalue', '')})")


def history_across_kernels(km, kc):
    marker = f"let history_marker_{int(time.time())} = 1;"
    run(kc, marker)
    km.restart_kernel(now=True)
    kc.wait_for_ready(timeout=WARMUP_TIMEOUT)
    msg_id = kc.history(hist_access_type="search", pattern="*history_marker_*", raw=True, output=False)
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    found = [h[2] for h in reply["content"]["history"]]
    check(marker in found, f"a restarted kernel's history search finds the earlier cell ({found[-3:]})")


def main():
    km, kc = start_new_kernel(kernel_name="sluice", startup_timeout=WARMUP_TIMEOUT)
    try:
        reply, _ = run(kc, "let warm = 1;", timeout=WARMUP_TIMEOUT)
        check(reply["status"] == "ok", "the kernel answers its first cell")
        question_mark(kc)
        rich_output(kc)
        completions(kc)
        panic_location(kc)
        live_curves(kc)
        graph_pictures(kc)
        interrupted_fit(km, kc)
        odd_cells(kc)
        history_across_kernels(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return summary("frontend_checks")


if __name__ == "__main__":
    sys.exit(main())
