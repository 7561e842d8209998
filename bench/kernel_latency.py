"""Notebook latency of a Jupyter kernel, as a client measures it.

Reports, for each kernel named (default: sluice):
  - start: from starting the kernel process to its first kernel_info reply;
  - first cell: the first `let` cell after that (evcxr's own start-up, the prelude);
  - let cell: median execute_request -> execute_reply of a one-line `let` cell, after warm-up;
  - expression: the same for a one-line expression (its value is displayed);
  - graph let: the same for a `let` cell that adds a node to the prelude's `graph` (a value
    made in an earlier cell; "n/a" where the kernel cannot use it).

    python bench/kernel_latency.py [--cells N] [KERNEL_NAME ...]
    # e.g. sluice-after-install sluice rust rust+sluice

`rust+sluice` is evcxr_jupyter (kernelspec `rust`) given what Sluice's kernel gives its cells
first: the engine's client crate as a dependency, its prelude and a graph. Its "first cell"
is that setup. `sluice-after-install` is Sluice's kernel on a cache of its own that
`sluice-kernel install` has just filled (the binary the `sluice` kernelspec names): what a
newcomer meets after installing; the install's own time is printed first. JUPYTER_PATH must let jupyter_client find the kernelspecs
(`sluice-kernel install`; `evcxr_jupyter --install` writes `rust`).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager


def timed_execute(kc, code, timeout=900):
    start = time.perf_counter()
    msg_id = kc.execute(code)
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    took = time.perf_counter() - start
    status = reply["content"]["status"]
    if status != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content']}")
    return took


ENGINE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine")
SLUICE_SETUP = [
    f':dep sluice = {{ path = "{ENGINE_DIR}", default-features = false }}',
    "use sluice::prelude::*;\nlet graph = Graph::new();",
]


def fresh_install():
    """A new cache filled by `sluice-kernel install`; returns the kernel's environment."""
    exe = KernelSpecManager().get_kernel_spec("sluice").argv[0]
    cache = tempfile.mkdtemp(prefix="sluice-bench-cache-")
    prefix = tempfile.mkdtemp(prefix="sluice-bench-prefix-")
    env = dict(os.environ, SLUICE_CELL_CACHE=cache)
    start = time.perf_counter()
    subprocess.run([exe, "install", "--prefix", prefix], env=env, check=True, capture_output=True)
    print(f"sluice-kernel install into an empty cache: {time.perf_counter() - start:.1f} s", flush=True)
    return env


def measure(name, cells):
    setup = []
    env = None
    if name == "rust+sluice":
        name, setup = "rust", SLUICE_SETUP
    if name == "sluice-after-install":
        name, env = "sluice", fresh_install()
    km = KernelManager(kernel_name=name)
    start = time.perf_counter()
    if env:
        km.start_kernel(env=env)
    else:
        km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        while True:
            kc.kernel_info()
            try:
                kc.get_shell_msg(timeout=0.5)
                break
            except Exception:
                if time.perf_counter() - start > 300:
                    raise
        first_reply = time.perf_counter() - start
        first_cell = sum(timed_execute(kc, code) for code in setup)
        first_cell += timed_execute(kc, "let warm_0 = 0;")
        for i in range(1, 3):
            timed_execute(kc, f"let warm_{i} = {i};")
        lets = [timed_execute(kc, f"let a_{i} = {i};") for i in range(cells)]
        exprs = [timed_execute(kc, f"{i} + 1") for i in range(cells)]
        try:
            graph_lets = statistics.median(
                timed_execute(kc, f'let p_{i} = graph.placeholder("p_{i}", DType::F32, &[1]);')
                for i in range(cells)
            )
        except RuntimeError:
            graph_lets = None
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return first_reply, first_cell, statistics.median(lets), statistics.median(exprs), graph_lets


def main(argv):
    cells = 10
    names = []
    it = iter(argv)
    for arg in it:
        if arg == "--cells":
            cells = int(next(it))
        else:
            names.append(arg)
    names = names or ["sluice"]
    print(
        f"{'kernel':<14} {'start->reply':>13} {'first cell':>11} {'let cell':>9} "
        f"{'expression':>11} {'graph let':>10}"
    )
    for name in names:
        start, first, let_cell, expr, graph_let = measure(name, cells)
        graph_let = f"{graph_let:.3f}s" if graph_let is not None else "n/a"
        print(
            f"{name:<14} {start:>12.2f}s {first:>10.2f}s {let_cell:>8.3f}s "
            f"{expr:>10.3f}s {graph_let:>10}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
