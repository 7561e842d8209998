#!/usr/bin/env bash
# word2vec throughput: corpus words per second of skip-gram training on the King James Bible
# (examples/word2vec.rs), in one process and with 1 and 2 worker processes whose embedding
# tables live on 2 parameter servers (sync and async). Medians of --repeats runs.
#
#   bash bench/word2vec.sh [--repeats 3]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repeats=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --repeats) repeats=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
cargo build --release --quiet --bin sluice-engine --example word2vec
export TARGET=${CARGO_TARGET_DIR:-target}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
run() {
    local label=$1; shift
    local rates=()
    for _ in $(seq "$repeats"); do
        rates+=("$("$TARGET/release/examples/word2vec" --neighbours seven "$@" \
            | sed -n 's/^throughput: \([0-9]*\) words\/s.*/\1/p')")
    done
    local median
    median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '| %s | %s | %s |\n' "$label" "$median" "${rates[*]}"
}
echo "| setup | words/s (median) | runs |"
echo "| --- | --- | --- |"
run "one process" --steps 6000
run "1 worker, 2 ps, sync" --workers 1 --ps 2 --steps 1000
run "2 workers, 2 ps, sync" --workers 2 --ps 2 --steps 2000
run "2 workers, 2 ps, async" --workers 2 --ps 2 --async --steps 2000
