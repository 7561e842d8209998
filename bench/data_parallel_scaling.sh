#!/usr/bin/env bash
# Data-parallel scaling: examples/s of the MLP 784-256-10 at batch 100 per worker with 1, 2, 4
# and 8 worker processes (one kernel thread each), and the efficiency R(N) / (N x R(1)).
# With a Python that has torch (SLUICE_TORCH_PY), the peer, PyTorch DDP on gloo, runs in the
# same invocation (../shared/bench/torch_ddp_cpu_scaling.py).
#
#   bash bench/data_parallel_scaling.sh [--mode allreduce|ps|async] [--ps M] [--steps S] [--workers "1 2 4 8"]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=allreduce
ps=1
steps=400
counts="1 2 4 8"
while [[ $# -gt 0 ]]; do
    case $1 in
        --mode) mode=$2; shift 2 ;;
        --ps) ps=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --workers) counts=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
case $mode in
    allreduce) flags=(--allreduce) ;;
    ps) flags=(--ps "$ps") ;;
    async) flags=(--ps "$ps" --async) ;;
    *) echo "--mode is allreduce, ps or async" >&2; exit 2 ;;
esac
cargo build --release --quiet --bin sluice-engine --example mnist_data_parallel
export TARGET=${CARGO_TARGET_DIR:-target}
# One kernel thread per worker process, as the peer runs.
export RAYON_NUM_THREADS=1
echo "machine: $(nproc) CPUs; mode $mode; $steps steps; MLP 784-256-10, batch 100 per worker"
base=""
for n in $counts; do
    out=$("$TARGET/release/examples/mnist_data_parallel" --model mlp --workers "$n" "${flags[@]}" \
        --steps "$steps" --quiet)
    rate=$(grep '^examples/s:' <<<"$out" | awk '{print $2}')
    accuracy=$(grep '^test accuracy:' <<<"$out" | awk '{print $3}')
    base=${base:-$rate}
    efficiency=$(awk -v r="$rate" -v b="$base" -v n="$n" 'BEGIN { printf "%.2f", r / (b * n) }')
    echo "sluice $mode workers=$n: $rate examples/s, efficiency $efficiency (test accuracy $accuracy)"
done
if [[ -n ${SLUICE_TORCH_PY:-} ]] && "$SLUICE_TORCH_PY" -c "import torch" 2>/dev/null; then
    "$SLUICE_TORCH_PY" ../shared/bench/torch_ddp_cpu_scaling.py
else
    echo "(the peer, PyTorch DDP, needs SLUICE_TORCH_PY: a Python with torch)"
fi
