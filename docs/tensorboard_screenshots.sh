#!/usr/bin/env bash
# Remakes docs/images/tensorboard-{scalars,graphs}.png: the data-parallel example (2 workers,
# 1 parameter server, synchronous) writes a TensorBoard run, `tensorboard` serves it on
# loopback, and headless Chromium takes each tab's picture. Not part of CI.
#
# Needs: a release build (cargo build --release -p sluice --bin sluice-engine --examples),
# chromium (apt-get install chromium), and a Python with tensorboard (SLUICE_PY, as .ci/run
# makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
python=${SLUICE_PY:-$HOME/.cache/sluice-py-venv/bin/python}
logdir=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$logdir"' EXIT
"$target/release/examples/mnist_data_parallel" --workers 2 --ps 1 --quiet \
    --logdir "$logdir/data_parallel"
port=6123
"$python" -m tensorboard.main --logdir "$logdir" --host 127.0.0.1 --port "$port" \
    >/dev/null 2>&1 &
server=$!
for _ in $(seq 60); do
    curl -sf "http://127.0.0.1:$port/data/runs" | grep -q data_parallel && break
    sleep 1
done
for tab in scalars graphs; do
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1400,900 --virtual-time-budget=20000 \
        --screenshot="docs/images/tensorboard-$tab.png" "http://127.0.0.1:$port/#$tab"
done
