#!/usr/bin/env bash
# What TensorBoard summaries cost the seed program: `mnist_softmax` with and without
# `--logdir` (the loss fetched and written every step, histograms of W and b every 100
# steps), alternated REPEATS times; prints each run's median us/step, the medians of both,
# and their ratio.
#
#     REPEATS=7 bench/summaries_overhead.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPEATS=${REPEATS:-7}
cargo build --release --quiet --example mnist_softmax
bin="${CARGO_TARGET_DIR:-target}/release/examples/mnist_softmax"
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
plain=(); summaries=()
for r in $(seq 1 "$REPEATS"); do
    p=$("$bin" | awk '/^us\/step:/ {print $2}')
    s=$("$bin" --logdir "$logdir/run$r" | awk '/^us\/step:/ {print $2}')
    echo "run $r: without $p us/step, with summaries $s us/step"
    plain+=("$p"); summaries+=("$s")
done
p=$(printf '%s\n' "${plain[@]}" | median)
s=$(printf '%s\n' "${summaries[@]}" | median)
echo "median us/step: without $p, with summaries $s, ratio $(awk -v a="$s" -v b="$p" 'BEGIN {printf "%.3f", a / b}')"
