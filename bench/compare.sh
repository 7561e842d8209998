#!/usr/bin/env bash
# Sluice vs TensorFlow graph mode, same programs, same data, one invocation, one machine.
#
# Usage: bench/compare.sh [--self-test | --help]
#
# Environment:
#   REPEATS          runs per program and engine, alternating Sluice and TF (default 3)
#   THREADS          TensorFlow intra-op threads (default 2)
#   SLUICE_TF_VENV   venv with tensorflow-cpu, outside the repo (default ~/.cache/sluice-tf-venv)
#   SLUICE_TF_INSTALL_LOG log of a background TF install to wait for (default /tmp/tfvenv.log)
#   PYTHON           interpreter used to create that venv (default python3)
#   CARGO_TARGET_DIR where cargo puts the built examples (default <repo>/target)
#   SLUICE_BENCH_LOGS folder for the raw output of every run (default: a new /tmp/sluice-bench.*)
#
# Programs (both on the MNIST digits in engine/data/mnist-digits-10k):
#   seed  softmax regression, GD 0.01, 1000 steps of 100   examples/mnist_softmax.rs
#   mlp   MLP 784-256-10, GD 0.001, 6000 steps of 100      examples/fashion_mlp.rs
# The TF side is bench/tf_seed_program.py (ONLY=seed|mlp). Run r of each engine uses seed r-1
# (initial values and batch order), so accuracies are medians over the same seeds.
set -euo pipefail

DATA=engine/data/mnist-digits-10k
PEER=bench/tf_seed_program.py

die() {
    echo "compare.sh: error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- parsing
# Each parser reads one run's output file and prints "US_PER_STEP ACCURACY",
# or returns 1 if either number is missing.

# Sluice examples print lines `test accuracy: A` and `us/step: T` (last one wins).
parse_sluice() {
    awk '
        function num(s) { sub(/^[ \t]+/, "", s); sub(/[^0-9.eE+-].*$/, "", s); return s }
        /test accuracy:/ { s = $0; sub(/.*test accuracy:/, "", s); acc = num(s) }
        /us\/step:/      { s = $0; sub(/.*us\/step:/, "", s);      us  = num(s) }
        END {
            if (acc !~ /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/) exit 1
            if (us  !~ /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/) exit 1
            print us, acc
        }' "$1"
}

# TF prints `NAME: test accuracy 0.9135, 1000 steps in 0.80 s = 798 us/step (batch 100)`.
parse_tf() {
    awk '
        /test accuracy [0-9.]+,.* us\/step/ {
            for (i = 2; i <= NF; i++) {
                if ($(i - 1) == "accuracy" && $(i - 2) == "test") { acc = $i; sub(/,$/, "", acc) }
                if ($i == "us/step") us = $(i - 1)
            }
        }
        END {
            if (acc !~ /^[0-9]*\.?[0-9]+$/) exit 1
            if (us  !~ /^[0-9]*\.?[0-9]+$/) exit 1
            print us, acc
        }' "$1"
}

# median V... : median of numbers (mean of the middle two for an even count).
median() {
    printf '%s\n' "$@" | awk '
        { v[NR] = $1 + 0 }
        END {
            if (NR == 0) exit 1
            for (i = 2; i <= NR; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# ratio A B : A / B with two decimals, "n/a" if B is zero.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

self_test() {
    local t
    t=$(mktemp -d)
    printf '%s\n' 'loading data' 'step 900 loss 31.2' 'test accuracy: 0.9165' 'us/step: 123.45' >"$t/s1"
    printf '%s\n' '  test accuracy:0.95' 'us/step:   87' >"$t/s2"
    printf '%s\n' 'test accuracy: 0.9' >"$t/s3" # no us/step
    printf '%s\n' '2025-11-26 14:00:00 I tensorflow/core/... some log' \
        'seed softmax 1000x100 lr0.01: test accuracy 0.9135, 1000 steps in 0.80 s = 798 us/step (batch 100)' \
        'tensorflow 2.21.0' >"$t/t1"
    printf '%s\n' 'mlp 784-256-10 6000x100 lr0.001: test accuracy 0.9525, 6000 steps in 15.29 s = 2549 us/step (batch 100)' \
        'tensorflow 2.21.0' >"$t/t2"
    printf '%s\n' 'Traceback (most recent call last):' >"$t/t3"
    local fails=0
    check() { # name got want
        if [[ "$2" == "$3" ]]; then echo "ok   $1: $2"; else echo "FAIL $1: got '$2', want '$3'"; fails=$((fails + 1)); fi
    }
    check "sluice normal" "$(parse_sluice "$t/s1")" "123.45 0.9165"
    check "sluice spacing" "$(parse_sluice "$t/s2")" "87 0.95"
    check "sluice missing us/step" "$(parse_sluice "$t/s3" || echo FAILED)" "FAILED"
    check "tf seed" "$(parse_tf "$t/t1")" "798 0.9135"
    check "tf mlp" "$(parse_tf "$t/t2")" "2549 0.9525"
    check "tf crash" "$(parse_tf "$t/t3" || echo FAILED)" "FAILED"
    check "tf on sluice output" "$(parse_tf "$t/s1" || echo FAILED)" "FAILED"
    check "median odd" "$(median 798 512 2549)" "798"
    check "median even" "$(median 4 1 3 2)" "2.5"
    check "median one" "$(median 0.9135)" "0.9135"
    check "median floats" "$(median 123.45 99.5 101)" "101"
    check "ratio" "$(ratio 399 798)" "0.50"
    check "ratio zero" "$(ratio 1 0)" "n/a"
    rm -rf "$t"
    [[ $fails -eq 0 ]] || die "$fails self-test check(s) failed"
    echo "self-test passed"
}

# ---------------------------------------------------------------- TensorFlow venv
ensure_tf() {
    VENV=${SLUICE_TF_VENV:-$HOME/.cache/sluice-tf-venv}
    local bg_log=${SLUICE_TF_INSTALL_LOG:-/tmp/tfvenv.log}
    tf_ok() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import tensorflow' >/dev/null 2>&1; }
    tf_ok && return 0

    # A background job may be installing TF into this venv, logging to /tmp/tfvenv.log and
    # writing a last line `done` when finished. Wait for it while it looks alive.
    if [[ -f "$bg_log" && "$(tail -n 1 "$bg_log")" != done ]]; then
        echo "== waiting for the background TensorFlow install ($bg_log) to print 'done'"
        local waited=0 limit=${SLUICE_TF_WAIT:-2400}
        while [[ "$(tail -n 1 "$bg_log")" != done ]]; do
            local age=$(($(date +%s) - $(stat -c %Y "$bg_log")))
            if ! pgrep -f 'pip.* install' >/dev/null 2>&1 && ((age > 600)); then
                echo "   (no pip running and the log is stale; installing here instead)"
                break
            fi
            ((waited < limit)) || die "background TensorFlow install did not finish in ${limit}s (see $bg_log)"
            sleep 10
            waited=$((waited + 10))
        done
        tf_ok && return 0
    fi

    if [[ ! -x "$VENV/bin/python" ]]; then
        echo "== creating venv $VENV"
        mkdir -p "$(dirname "$VENV")"
        "${PYTHON:-python3}" -m venv "$VENV" || die "could not create venv $VENV with ${PYTHON:-python3}"
    fi
    echo "== pip install tensorflow-cpu into $VENV (about 260 MB)"
    "$VENV/bin/python" -m pip install --quiet tensorflow-cpu || die "pip install tensorflow-cpu failed"
    tf_ok || die "tensorflow still does not import in $VENV"
}

# ---------------------------------------------------------------- runs
# run_one LOG CMD... : run CMD with output to LOG; die with the log's tail if it fails.
run_one() {
    local log=$1
    shift
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if ((rc != 0)); then
        echo "---- last lines of $log:" >&2
        tail -n 25 "$log" >&2
        die "run failed (exit $rc): $*"
    fi
}

main() {
    case "${1:-}" in
    --self-test) self_test; return ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; return ;;
    "") ;;
    *) die "unknown argument: $1 (try --help)" ;;
    esac

    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    local repeats=${REPEATS:-3} threads=${THREADS:-2}
    [[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "REPEATS must be a positive integer, got '$repeats'"
    [[ -d "$DATA" ]] || die "data folder $DATA not found"
    if [[ ! -f "$PEER" ]]; then
        local src=/work/shared/bench/tf_seed_program.py
        [[ -f "$src" ]] || die "$PEER missing (and no $src to copy it from)"
        { echo "# Peer baseline (TensorFlow graph mode), copied from shared/bench/tf_seed_program.py (add its SEED variable by hand); run by bench/compare.sh."; cat "$src"; } >"$PEER"
    fi

    ensure_tf
    local py="$VENV/bin/python"

    echo "== cargo build --release --examples (not timed)"
    cargo build --release --examples || die "cargo build --release --examples failed"
    local target=${CARGO_TARGET_DIR:-target}
    local bins="$target/release/examples"
    for b in mnist_softmax fashion_mlp; do
        [[ -x "$bins/$b" ]] || die "built example $bins/$b not found"
    done

    local logs=${SLUICE_BENCH_LOGS:-$(mktemp -d /tmp/sluice-bench.XXXXXX)}
    mkdir -p "$logs"
    echo "== logs of every run in $logs"

    local prog r out table="" raw=""
    for prog in seed mlp; do
        local s_us=() s_acc=() t_us=() t_acc=()
        for ((r = 1; r <= repeats; r++)); do
            echo "== $prog run $r/$repeats: sluice"
            if [[ $prog == seed ]]; then
                run_one "$logs/$prog-sluice-$r.log" "$bins/mnist_softmax" --seed $((r - 1))
            else
                run_one "$logs/$prog-sluice-$r.log" "$bins/fashion_mlp" --data "$DATA" --steps 6000 --seed $((r - 1))
            fi
            out=$(parse_sluice "$logs/$prog-sluice-$r.log") ||
                die "no 'test accuracy:' / 'us/step:' lines in $logs/$prog-sluice-$r.log"
            s_us+=("${out% *}") s_acc+=("${out#* }")

            echo "== $prog run $r/$repeats: tensorflow"
            run_one "$logs/$prog-tf-$r.log" env FMNIST="$DATA" ONLY="$prog" THREADS="$threads" SEED=$((r - 1)) \
                TF_CPP_MIN_LOG_LEVEL=2 "$py" "$PEER"
            out=$(parse_tf "$logs/$prog-tf-$r.log") ||
                die "no 'test accuracy ..., ... us/step' line in $logs/$prog-tf-$r.log"
            t_us+=("${out% *}") t_acc+=("${out#* }")
        done
        local sm tm label
        sm=$(median "${s_us[@]}")
        tm=$(median "${t_us[@]}")
        case $prog in
        seed) label="seed softmax 1000x100" ;;
        mlp) label="mlp 784-256-10 6000x100" ;;
        esac
        table+=$(printf '%-24s %14.1f %14.1f %10s %11.4f %11.4f' "$label" "$sm" "$tm" "$(ratio "$sm" "$tm")" \
            "$(median "${s_acc[@]}")" "$(median "${t_acc[@]}")")$'\n'
        raw+="$label: sluice us/step ${s_us[*]} acc ${s_acc[*]} | tf us/step ${t_us[*]} acc ${t_acc[*]}"$'\n'
    done

    local tfver cpu
    tfver=$(grep -h '^tensorflow ' "$logs"/*-tf-1.log | tail -n 1 | awk '{print $2}' || true)
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    echo
    echo "Sluice vs TensorFlow ${tfver:-?} graph mode (THREADS=$threads), data $DATA"
    echo "machine: $(nproc) CPUs${cpu:+, $cpu}; medians over $repeats runs each, alternating"
    echo
    printf '%-24s %14s %14s %10s %11s %11s\n' program "sluice us/step" "tf us/step" "sluice/tf" "sluice acc" "tf acc"
    printf '%s' "$table"
    echo
    echo "per-run values:"
    printf '%s' "$raw"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
