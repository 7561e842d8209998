#!/usr/bin/env bash
# Workers reading their own data: the seed program (softmax regression, batch 100 per worker)
# on 2 worker processes, with batches sent by the client or read on the workers, one step per
# order or K per order (all-reduce). Prints the median examples/s and the client's CPU use
# (share of one core over the training) of N runs of each.
#
#   bash bench/worker_input.sh [--runs N] [--steps S] [--per-order K]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=5
steps=2000
per_order=50
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --per-order) per_order=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
cargo build --release --quiet --bin sluice-engine --example mnist_data_parallel
export TARGET=${CARGO_TARGET_DIR:-target}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "machine: $(nproc) CPUs; seed program, 2 workers, batch 100 each, $steps steps, median of $runs"
printf '%-44s %12s %12s\n' "set-up" "examples/s" "client CPU"
while IFS='|' read -r name flags; do
    rates=(); cpus=()
    for _ in $(seq "$runs"); do
        # shellcheck disable=SC2086
        out=$("$TARGET/release/examples/mnist_data_parallel" --workers 2 $flags --steps "$steps" --quiet)
        rates+=("$(grep '^examples/s:' <<<"$out" | awk '{print $2}')")
        cpus+=("$(grep '^client CPU:' <<<"$out" | awk '{print $3}' | tr -d '%')")
    done
    rate=$(printf '%s\n' "${rates[@]}" | median)
    cpu=$(printf '%s\n' "${cpus[@]}" | median)
    printf '%-44s %12.0f %11.1f%%\n' "$name" "$rate" "$cpu"
done <<EOF2
parameter server, client-fed|--ps 1
parameter server, read on workers|--ps 1 --read-on-workers
all-reduce, client-fed|--allreduce
all-reduce, read on workers|--allreduce --read-on-workers
all-reduce, read on workers, $per_order steps per order|--allreduce --read-on-workers --steps-per-order $per_order
EOF2
