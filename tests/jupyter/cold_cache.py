"""A newcomer's first hour, from empty caches, as Jupyter clients meet it:

1. A kernel started on an empty build folder builds what cells need and answers its first
   cell (the cell process must find the libraries built after it started).
2. A second kernel opened while the first runs (a second notebook) gets a build folder of
   its own, seeded from the first one's: it answers its first cell without a full rebuild.
3. `sluice-kernel install` from an empty cache, run as an installed binary would be (a copy
   outside the checkout, started from another folder), writes the kernelspec with its logos
   and builds; its cells compile against sources it carries, not the checkout's.
4. A notebook whose cell returns an error (`?`) stops `jupyter execute` with that error.

    python cold_cache.py KERNEL_BINARY WORK_DIR
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

COLD_TIMEOUT = 1800
from client import check, summary


def first_cell(km, code="let first = 1;", timeout=COLD_TIMEOUT):
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=timeout)
    started = time.monotonic()
    msg_id = kc.execute(code, allow_stdin=False)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return kc, reply["content"], time.monotonic() - started


def kernel(env, log):
    km = KernelManager(kernel_name="sluice")
    km.start_kernel(env=env, stderr=log)
    return km


def two_kernels_on_an_empty_cache(work):
    cache = work / "cache-kernels"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, SLUICE_CELL_CACHE=str(cache), RUST_LOG="sluice_frontend=info")
    with open(work / "kernel-a.log", "w") as log_a, open(work / "kernel-b.log", "w") as log_b:
        a = kernel(env, log_a)
        try:
            kc_a, reply, took = first_cell(a)
            check(reply["status"] == "ok",
                  f"a kernel on an empty build folder answers its first cell ({took:.0f} s; {reply.get('evalue', '')})")
            b = kernel(env, log_b)
            try:
                kc_b, reply, took = first_cell(b)
                check(reply["status"] == "ok",
                      f"a second kernel beside it answers its first cell ({took:.0f} s)")
                kc_b.stop_channels()
            finally:
                b.shutdown_kernel(now=True)
            kc_a.stop_channels()
        finally:
            a.shutdown_kernel(now=True)
    said = (work / "kernel-b.log").read_text(errors="replace")
    check("seeded from" in said, "the second kernel's build folder was seeded, not rebuilt")
    slots = sorted(p.name for p in (cache / "builds").glob("slot-*") if p.is_dir())
    check(len(slots) == 2, f"each kernel had a build folder of its own ({slots})")


def install_as_installed(binary, work, repo):
    home = work / "installed"
    shutil.rmtree(home, ignore_errors=True)
    (home / "bin").mkdir(parents=True)
    installed = home / "bin" / "sluice-kernel"
    shutil.copy2(binary, installed)
    cache = home / "cache"
    prefix = home / "prefix"
    env = dict(os.environ, SLUICE_CELL_CACHE=str(cache))
    run = subprocess.run([str(installed), "install", "--prefix", str(prefix)],
                         cwd=str(home), env=env, capture_output=True, text=True,
                         timeout=COLD_TIMEOUT)
    check(run.returncode == 0, f"install from an empty cache succeeds ({run.stderr[-2000:]})")
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "sluice"
    spec = json.loads((spec_dir / "kernel.json").read_text()) if (spec_dir / "kernel.json").exists() else {}
    check(spec.get("argv", [""])[0] == str(installed.resolve()), f"the kernelspec runs the installed binary ({spec.get('argv')})")
    logos = sorted(p.name for p in spec_dir.glob("logo-*.png"))
    check(logos == ["logo-32x32.png", "logo-64x64.png"], f"with its logos ({logos})")
    manifests = list((cache / "builds").glob("slot-*/Cargo.toml"))
    text = "".join(m.read_text() for m in manifests)
    check(bool(manifests) and str(repo) not in text and str(cache) in text,
          "cells compile against the sources the binary carries, not the checkout")
    check((cache / "builds").glob("template-*") is not None and any((cache / "builds").glob("template-*")),
          "install leaves a warm template for further kernels")


NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": 'let p = graph.placeholder("p", DType::F32, &[-1, 3]);'},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "let fetched = sess.run(&[p], &[])?;"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": 'println!("never printed");'},
    ],
    "metadata": {"kernelspec": {"name": "sluice", "display_name": "Rust (Sluice)", "language": "rust"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def failing_notebook_stops(work):
    path = work / "fails.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    jupyter = Path(sys.executable).parent / "jupyter"
    run = subprocess.run([str(jupyter), "execute", "--kernel_name=sluice", "--timeout=600",
                          "--startup_timeout=600", str(path)],
                         capture_output=True, text=True, timeout=COLD_TIMEOUT)
    said = run.stdout + run.stderr
    check(run.returncode != 0, "jupyter execute fails on the cell that returned an error")
    check("placeholder 'p' needs a value" in said, f"and names the error ({said[-1500:]!r})")
    check("never printed" not in said, "the cells after it did not run")


def main():
    binary, work = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    repo = Path(__file__).resolve().parents[2]
    work.mkdir(parents=True, exist_ok=True)
    two_kernels_on_an_empty_cache(work)
    install_as_installed(binary, work, repo)
    failing_notebook_stops(work)
    return summary("cold_cache")


if __name__ == "__main__":
    sys.exit(main())
