#!/usr/bin/env bash
# What a notebook cell pays to build against sluice: the light client part (default features
# off) beside the full crate. For each, a small "cell" crate that builds the seed program's
# graph and runs it through connect_or_local is built from an empty target folder (sluice and
# every dependency, dev profile as evcxr's cells are), then rebuilt after its source changes
# (what each cell costs: compile + link). Prints seconds; REPEATS rebuilds, median.
#
#     bash bench/client_build.sh            # REPEATS=5 by default
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEATS=${REPEATS:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for variant in client full; do
    cell="$WORK/cell-$variant"
    mkdir -p "$cell/src"
    defaults=$([[ $variant == full ]] && echo true || echo false)
    cat >"$cell/Cargo.toml" <<TOML
[package]
name = "cell_$variant"
version = "0.1.0"
edition = "2021"

[dependencies]
sluice = { path = "$ROOT/engine", default-features = $defaults }

[workspace]
TOML
    cat >"$cell/src/main.rs" <<'RUST'
use sluice::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 784]);
    let w = g.variable("W", &[784, 10], Initializer::Zeros);
    let b = g.variable("b", &[10], Initializer::Zeros);
    let y = softmax(matmul(x, w) + b);
    let y_ = g.placeholder("y_", DType::F32, &[-1, 10]);
    let xent = -reduce_sum(y_ * log(y));
    let _train = GradientDescent::new(0.01).minimize(xent)?;
    if std::env::var("SLUICE_ENGINE").is_ok() {
        let mut sess = connect_or_local(&g)?;
        sess.init_variables()?;
    }
    println!("{} nodes", g.len());
    Ok(())
}
RUST
    export CARGO_TARGET_DIR="$WORK/target-$variant"
    start=$(now)
    (cd "$cell" && cargo build --quiet 2>&1)
    empty=$(echo "$(now) - $start" | bc)
    crates=$(cd "$cell" && cargo tree --prefix none -e normal | sort -u | wc -l)
    rebuilds=()
    for i in $(seq "$REPEATS"); do
        echo "// edit $i" >>"$cell/src/main.rs"
        start=$(now)
        (cd "$cell" && cargo build --quiet 2>&1)
        rebuilds+=("$(echo "$(now) - $start" | bc)")
    done
    rebuild=$(printf '%s\n' "${rebuilds[@]}" | median)
    size=$(du -k "$CARGO_TARGET_DIR/debug/cell_$variant" | cut -f1)
    printf '%-6s crates %4d   from empty %7.1f s   cell rebuild (median of %d) %5.2f s   binary %6d KiB\n' \
        "$variant" "$crates" "$empty" "$REPEATS" "$rebuild" "$size"
done
