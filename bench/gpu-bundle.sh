#!/usr/bin/env bash
# Prepares what bench/gpu.sh runs on a GPU machine, which has no Rust toolchain and no
# network: builds the GPU tests and examples here, strips and packs them with the Vulkan
# loader into .gpu/ (ignored by git), to carry with the device tool:
#
#   bench/gpu-bundle.sh            # here: builds, packs .gpu/bundle.tar.xz (under 64 MiB)
#   device run, carry [".gpu"], command "bash bench/gpu.sh", timeout_s 600
#
# Environment: CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/stage/bin .gpu/stage/debs .gpu/stage/peers

echo "== building the GPU tests and examples"
cargo build --release --example mnist_softmax --example gpu_benchmark
# The test binaries, by name, from cargo's own report of what it built.
tests=$(cargo test --release -p sluice --test gpu_ops --test gpu_session --test gpu_kernels --test gpu_fusion \
    --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])')
while read -r name exe; do
    strip -o ".gpu/stage/bin/$name" "$exe"
done <<< "$tests"
for ex in mnist_softmax gpu_benchmark; do
    strip -o ".gpu/stage/bin/$ex" "$TARGET/release/examples/$ex"
done

echo "== the Vulkan loader (the GPU machines may lack libvulkan1)"
lists=$(mktemp -d)
mkdir -p "$lists/partial"
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${apt_opts[@]}" update >/dev/null
(cd .gpu/stage/debs && apt-get "${apt_opts[@]}" download libvulkan1 >/dev/null)
rm -rf "$lists"

# The peers' GPU scripts, where this checkout has the shared bench folder beside it.
for peer in torch_best_gpu.py torch_mlp_gpu.py; do
    [[ -f ../shared/bench/$peer ]] && cp "../shared/bench/$peer" .gpu/stage/peers/
done

tar -C .gpu/stage -cJf .gpu/bundle.tar.xz .
rm -rf .gpu/stage
size=$(stat -c %s .gpu/bundle.tar.xz)
echo "== .gpu/bundle.tar.xz: $((size >> 20)) MiB (the device tool carries 64 MiB at most)"
(( size < 60 << 20 )) || { echo "gpu-bundle.sh: the bundle is too large to carry" >&2; exit 1; }
