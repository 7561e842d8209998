"""Runs every examples/*.ipynb with `jupyter execute` on the Sluice kernel and checks what the
executed notebooks hold: no errors; the seed notebook's accuracy of at least 0.91; each
training notebook's loss curve updated in place and holding the last step; the graph
notebook's drawing; the Monte Carlo estimate.

    python run_notebooks.py EXAMPLES_DIR OUT_DIR
"""

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from client import check, summary


def outputs(nb):
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            yield from cell.get("outputs", [])


def text(nb):
    parts = []
    for o in outputs(nb):
        if o["output_type"] == "stream":
            parts.append(o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
        elif o["output_type"] in ("execute_result", "display_data"):
            t = o.get("data", {}).get("text/plain", "")
            parts.append(t if isinstance(t, str) else "".join(t))
    return "\n".join(parts)


def curves(nb):
    """The live loss-curve displays: (metadata, plain text)."""
    found = []
    for o in outputs(nb):
        meta = o.get("metadata", {}).get("sluice")
        if o["output_type"] == "display_data" and meta:
            t = o["data"].get("text/plain", "")
            found.append((meta, t if isinstance(t, str) else "".join(t)))
    return found


def figure(pattern, body):
    m = re.search(pattern, body)
    return float(m.group(1)) if m else None


def check_curve(name, nb, steps):
    cs = curves(nb)
    check(len(cs) >= 1, f"{name}: a live loss curve is shown")
    if cs:
        meta, plain = cs[-1]
        check(meta.get("updates", 0) >= 1, f"{name}: the curve was updated in place ({meta})")
        check(
            meta.get("last_step") == steps and plain.startswith(f"step {steps}"),
            f"{name}: the curve holds the last step {steps} ({plain[:80]!r})",
        )


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main():
    examples, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    jupyter = Path(sys.executable).parent / "jupyter"
    notebooks = sorted(examples.glob("*.ipynb"))
    check(len(notebooks) >= 4, f"{len(notebooks)} example notebooks found")
    executed = {}
    for source in notebooks:
        target = out_dir / source.name
        shutil.copy(source, target)
        started = time.monotonic()
        run = subprocess.run(
            [
                str(jupyter), "execute", "--inplace", "--kernel_name=sluice",
                "--timeout=900", "--startup_timeout=300", str(target),
            ],
            capture_output=True, text=True,
        )
        took = time.monotonic() - started
        check(run.returncode == 0, f"{source.name}: jupyter execute ran it top to bottom ({took:.0f} s)")
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
            continue
        nb = json.loads(target.read_text())
        errors = [o for o in outputs(nb) if o["output_type"] == "error"]
        check(not errors, f"{source.name}: no cell failed")
        executed[source.name] = nb

    seed = executed.get("mnist_softmax.ipynb")
    if seed:
        acc = figure(r"test accuracy: ([0-9.]+)", text(seed))
        check(acc is not None and acc >= 0.91, f"seed notebook: test accuracy {acc} >= 0.91")
        check_curve("seed notebook", seed, 1000)
    mlp = executed.get("fashion_mlp.ipynb")
    if mlp:
        acc = figure(r"test accuracy: ([0-9.]+)", text(mlp))
        check(acc is not None and acc >= 0.8, f"MLP notebook: test accuracy {acc} >= 0.8")
        steps = figure(r"training steps: ([0-9]+)", text(mlp))
        check_curve("MLP notebook", mlp, int(steps or -1))
    graph = executed.get("graph_tour.ipynb")
    if graph:
        svgs = [o for o in outputs(graph) if "image/svg+xml" in o.get("data", {})]
        check(len(svgs) >= 2, f"graph notebook: {len(svgs)} drawings of the graph")
    mc = executed.get("monte_carlo.ipynb")
    if mc:
        pi = figure(r"pi is about ([0-9.]+)", text(mc))
        check(pi is not None and abs(pi - 3.14159) < 0.05, f"Monte Carlo notebook: pi ~ {pi}")

    rich = executed.get("rich_output.ipynb")
    if rich:
        outs = list(outputs(rich))
        pngs = [o for o in outs if o["output_type"] == "display_data" and "image/png" in o.get("data", {})]
        check(len(pngs) == 1, f"rich-output notebook: the digit as a picture ({len(pngs)})")
        tables = [o for o in outs if o["output_type"] == "execute_result" and "text/html" in o.get("data", {})]
        summary_html = "".join("".join(t["data"]["text/html"]) for t in tables)
        check("7,850" in summary_html, "rich-output notebook: the summary table counts 7,850 parameters")
        # plotters' evcxr_figure shows its SVG inside HTML.
        results = [o.get("data", {}) for o in outs if o["output_type"] == "execute_result"]
        plots = [d for d in results if "image/svg+xml" in d or "<svg" in "".join(d.get("text/html", ""))]
        check(len(plots) == 1, f"rich-output notebook: plotters' own evcxr figure shows as an image ({len(plots)})")
        order = [o["output_type"] for o in list(rich["cells"])[1].get("outputs", [])]
        check(order == ["display_data", "stream", "display_data"], f"rich-output notebook: outputs in order ({order})")

    parallel = executed.get("model_parallel.ipynb")
    if parallel:
        said = text(parallel)
        acc = figure(r"test accuracy: ([0-9.]+)", said)
        check(acc is not None and acc >= 0.9, f"model-parallel notebook: test accuracy {acc} >= 0.9")
        wire = {p: figure(rf"{p}: ([0-9]+) bytes on the wire", said) for p in ("f32", "bf16", "int8")}
        ok = all(wire.values()) and abs(wire["bf16"] / wire["f32"] - 0.5) < 0.01 and abs(wire["int8"] / wire["f32"] - 0.25) < 0.01
        check(ok, f"model-parallel notebook: bf16 halves and int8 quarters the bytes ({wire})")
        svgs = [o["data"]["image/svg+xml"] for o in outputs(parallel) if "image/svg+xml" in o.get("data", {})]
        svg = "".join("".join(s) if isinstance(s, list) else s for s in svgs)
        check("task:0" in svg and "task:1" in svg, "model-parallel notebook: the drawing colours both tasks")
        # `:trace`: the step's timeline, a lane per worker and an arrow per tensor between them.
        timelines = [s for s in ("".join(x) if isinstance(x, list) else x for x in svgs) if "sluice-timeline" in s]
        check(len(timelines) == 1, f"model-parallel notebook: one step timeline ({len(timelines)})")
        timeline = timelines[0] if timelines else ""
        lanes = re.findall(r'<text[^>]*class="lane"[^>]*>([^<]*)<', timeline)
        check(len(lanes) == 2 and "task:0" in lanes[0] and "task:1" in lanes[1], f"model-parallel notebook: a lane per worker ({lanes})")
        arrows = timeline.count('class="arrow"')
        check(arrows >= 2, f"model-parallel notebook: the tensors between the workers as arrows ({arrows})")
        check("layer1/MatMul" in timeline and "placement estimated" in timeline, "model-parallel notebook: kernels with the cost model's estimate")
        found = re.search(r"Chrome trace: (\S+)", said)
        trace_file = found.group(1) if found else None
        check(trace_file is not None and Path(trace_file).is_file(), f"model-parallel notebook: its Chrome trace file ({trace_file})")
        # The notebook's workers end with its kernel (whose cell process never dropped them).
        spec = next((line for line in said.splitlines() if line.startswith('{"cluster"')), "")
        addrs = re.findall(r"127\.0\.0\.1:([0-9]+)", spec)
        check(len(addrs) == 2, f"model-parallel notebook: its cluster's addresses ({addrs})")
        deadline = time.monotonic() + 10
        alive = addrs
        while alive and time.monotonic() < deadline:
            alive = [a for a in addrs if listening(int(a))]
            time.sleep(0.2)
        check(not alive, f"model-parallel notebook: its workers stopped with the kernel (still up: {alive})")

    dp = executed.get("data_parallel.ipynb")
    if dp:
        said = text(dp)
        for name, least in (("sync", 0.9), ("async", 0.88)):
            acc = figure(rf"{name}: test accuracy ([0-9.]+)", said)
            check(acc is not None and acc >= least, f"data-parallel notebook: {name} test accuracy {acc} >= {least}")
        check(said.count("staleness") >= 4, "data-parallel notebook: per-worker throughput and staleness")
        chart = [c for c in curves(dp) if c[0].get("session") == "chart sync vs async"]
        ok = bool(chart) and chart[-1][0].get("updates", 0) >= 1 and "sync" in chart[-1][1] and "async" in chart[-1][1]
        check(ok, f"data-parallel notebook: one live chart with both curves ({chart[-1] if chart else None})")
    faults = executed.get("data_parallel_faults.ipynb")
    if faults:
        said = text(faults)
        check("lost /job:worker/task:1" in said, "faults notebook: the killed worker is reported lost")
        back = figure(r"going on from step ([0-9]+)", said)
        check(back is not None and 180 <= back <= 230, f"faults notebook: went on from step {back} (killed at 230; at most a checkpoint interval back)")
        acc = figure(r"finished at step 600; test accuracy ([0-9.]+)", said)
        check(acc is not None and acc >= 0.9, f"faults notebook: finished all 600 steps, test accuracy {acc} >= 0.9")
        last = figure(r"async finished at step ([0-9]+)", said)
        acc = figure(r"async finished at step [0-9]+; test accuracy ([0-9.]+)", said)
        ok = last is not None and last >= 800 and acc is not None and acc >= 0.88
        check(ok, f"faults notebook: async went on and finished (step {last}, test accuracy {acc})")
        check("the other replicas go on" in said, "faults notebook: async replicas went on without the lost worker")
        chart = [c for c in curves(faults) if c[0].get("session") == "chart worker 1 killed at step 230"]
        check(bool(chart) and chart[-1][0].get("last_step") == 600, f"faults notebook: the loss curve went on to step 600 ({chart[-1][0] if chart else None})")

    return summary("notebooks")


if __name__ == "__main__":
    sys.exit(main())
