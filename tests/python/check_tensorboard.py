"""Reads a Sluice run with TensorBoard's own code and checks it against what Sluice says it
wrote.

    check_tensorboard.py LOGDIR EXPECTED.json [--http]

EXPECTED.json holds {"scalars": {tag: [[step, value], ...]}, "histograms": {tag: [[step,
count, min, max], ...]}, "text": {tag: [[step, text], ...]}, "graph": {name: device},
"run_metadata": {tag: {device: node count}}}; a missing key is not checked. Without --http the run is read by TensorBoard's
EventAccumulator; with --http, `tensorboard --logdir LOGDIR` is started on loopback and the
scalars and the graph are read through its HTTP API. Prints one line per check and exits 1
if one failed.
"""

import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def close(a, b):
    # Scalars travel as float32.
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def check_scalars(tag, expected, got):
    """`got`: [(step, value)] as TensorBoard read them."""
    steps = [s for s, _ in got]
    check(steps == [s for s, _ in expected], f"scalar {tag}: steps {steps[:5]}... ({len(steps)}) as written")
    check(
        len(got) == len(expected) and all(close(v, w) for (_, v), (_, w) in zip(got, expected)),
        f"scalar {tag}: {len(got)} values as written",
    )


def check_graph(expected, nodes):
    """`nodes`: {name: device} as TensorBoard read them."""
    check(len(nodes) == len(expected), f"graph: {len(nodes)} nodes, Sluice has {len(expected)}")
    missing = sorted(set(expected) - set(nodes))[:5]
    check(not missing, f"graph: every Sluice node is there (missing {missing})")
    wrong = [(n, nodes.get(n), d) for n, d in expected.items() if n in nodes and nodes[n] != d][:5]
    check(not wrong, f"graph: devices as Sluice placed them (differ: {wrong})")


def by_accumulator(logdir, expected):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={"scalars": 0, "histograms": 0, "tensors": 0}
    )
    acc.Reload()
    tags = acc.Tags()
    for tag, want in expected.get("scalars", {}).items():
        check(tag in tags["scalars"], f"scalar {tag} is listed ({tags['scalars']})")
        if tag in tags["scalars"]:
            check_scalars(tag, want, [(e.step, e.value) for e in acc.Scalars(tag)])
    for tag, want in expected.get("histograms", {}).items():
        check(tag in tags["histograms"], f"histogram {tag} is listed ({tags['histograms']})")
        if tag not in tags["histograms"]:
            continue
        got = acc.Histograms(tag)
        check([e.step for e in got] == [w[0] for w in want], f"histogram {tag}: steps {[e.step for e in got]}")
        fine = all(
            e.histogram_value.num == count
            and close(e.histogram_value.min, lo)
            and close(e.histogram_value.max, hi)
            and sum(e.histogram_value.bucket) == count
            for e, (_, count, lo, hi) in zip(got, want)
        )
        check(fine, f"histogram {tag}: counts, min and max as written")
    for tag, want in expected.get("text", {}).items():
        check(tag in tags["tensors"], f"text {tag} is listed ({tags['tensors']})")
        if tag in tags["tensors"]:
            got = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors(tag)]
            check(got == [tuple(w) for w in want], f"text {tag}: {got[:2]}")
    if "graph" in expected:
        check(tags["graph"], "a graph is there")
        if tags["graph"]:
            graph = acc.Graph()
            check_graph(expected["graph"], {n.name: n.device for n in graph.node})
    for tag, want in expected.get("run_metadata", {}).items():
        check(tag in tags["run_metadata"], f"run metadata {tag!r} is there ({tags['run_metadata']})")
        if tag in tags["run_metadata"]:
            stats = acc.RunMetadata(tag).step_stats.dev_stats
            got = {d.device: len(d.node_stats) for d in stats}
            check(got == want, f"run metadata {tag!r}: kernels per device {got}")
            if "graph" in expected:
                timed = {n.node_name for d in stats for n in d.node_stats}
                known = timed & set(expected["graph"])
                check(len(known) > len(timed) / 2, f"run metadata {tag!r} times the graph's nodes ({len(known)} of {len(timed)})")


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as reply:
        return reply.read().decode()


def by_http(logdir, expected):
    # The Python loader, read once before serving: the first request sees the whole run.
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1",
         "--port", "0", "--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = None
        said = []
        started = time.monotonic()
        while port is None and time.monotonic() - started < 120:
            line = server.stderr.readline()
            if not line:
                break
            said.append(line)
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            port = found and int(found.group(1))
        check(port is not None, f"tensorboard serves on loopback ({''.join(said)[-300:]!r})")
        if port is None:
            return
        runs = json.loads(get(port, "/data/runs"))
        check(runs == ["."], f"one run ({runs})")
        for tag, want in expected.get("scalars", {}).items():
            rows = json.loads(get(port, f"/data/plugin/scalars/scalars?run=.&tag={tag}"))
            check_scalars(tag, want, [(step, value) for _, step, value in rows])
        if "graph" in expected:
            text = get(port, "/data/plugin/graphs/graph?run=.&conceptual=false")
            nodes = {}
            for block in re.findall(r"node \{(.*?)\n\}", text, re.S):
                name = re.search(r'^\s*name: "(.*)"', block, re.M)
                device = re.search(r'^\s*device: "(.*)"', block, re.M)
                if name:
                    nodes[name.group(1)] = device.group(1) if device else ""
            check_graph(expected["graph"], nodes)
        for tag, want in expected.get("run_metadata", {}).items():
            quoted = urllib.parse.quote(tag)
            text = get(port, f"/data/plugin/graphs/run_metadata?run=.&tag={quoted}")
            timed = text.count("node_name:")
            check(timed == sum(want.values()), f"run metadata {tag!r} over HTTP: {timed} kernels")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    logdir, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "--http" in sys.argv[3:]:
        by_http(logdir, expected)
    else:
        by_accumulator(logdir, expected)
    print("check_tensorboard: all passed" if not failures else f"check_tensorboard: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
