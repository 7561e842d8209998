#!/usr/bin/env bash
# Runs on a GPU machine what bench/gpu-bundle.sh packed here, once per GPU backend (CUDA
# first, then Vulkan): the GPU op suite (forward values and gradients against the CPU, on the
# real GPU), the seed program to its accuracy, the step-time benchmark; then PyTorch's and
# JAX's figures on the same GPU. Builds nothing; writes one report, $OUT/gpu-report.md (or
# ./gpu-report.md), and fits in 10 minutes. BACKENDS="vulkan" runs one backend only.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPORT=${OUT:-.}/gpu-report.md
WORK=$(mktemp -d)
tar -C "$WORK" -xJf .gpu/bundle.tar.xz || { echo "no .gpu/bundle.tar.xz: run bench/gpu-bundle.sh first" >&2; exit 1; }
BIN=$WORK/bin
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# A real GPU only: a software device must not stand in for one, except in a dry run here
# (DRY_RUN=1: lavapipe, small sizes) that checks the script and the bundle.
BENCH_ARGS=()
if [[ ${DRY_RUN:-0} == 1 ]]; then
    export SLUICE_GPU_ALLOW_SOFTWARE=1
    BENCH_ARGS=(--quick --steps 20)
else
    export SLUICE_GPU_ALLOW_SOFTWARE=0
fi
export CI=true
# NVRTC and ptxas for the CUDA check of every generated kernel: the system's CUDA 13.0 there,
# the venv of .ci/run here; without them that check is skipped (and said so in the report).
nvrtc=${SLUICE_NVRTC:-$(ls /usr/local/cuda*/targets/x86_64-linux/lib/libnvrtc.so.13 \
    "$HOME"/.cache/sluice-cuda-venv/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13 2>/dev/null | head -1)}
ptxas=${SLUICE_PTXAS:-$(command -v ptxas || ls /usr/local/cuda*/bin/ptxas \
    "$HOME"/.cache/sluice-cuda-venv/lib/python3*/site-packages/nvidia/cu13/bin/ptxas 2>/dev/null | head -1)}
if [[ -n $nvrtc && -n $ptxas ]]; then
    export SLUICE_NVRTC=$nvrtc SLUICE_PTXAS=$ptxas
    cuda_check="NVRTC $nvrtc, ptxas $ptxas"
else
    export SLUICE_CUDA_CHECK=0
    cuda_check="skipped: no NVRTC or ptxas found"
fi

if ! ldconfig -p | grep -q libvulkan.so.1; then
    for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" /; done
    ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [[ -z "${VK_DRIVER_FILES:-}" && -f $nvidia_icd ]] && ! ls /usr/share/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$nvidia_icd
fi

{
    echo "# Sluice on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'an unknown GPU')"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "CUDA check of the generated kernels: $cuda_check"
    echo
} > "$REPORT"

section() {
    local title=$1 limit=$2
    shift 2
    echo "## $title" >> "$REPORT"
    echo '```' >> "$REPORT"
    local start=$SECONDS
    timeout "$limit" "$@" >> "$REPORT" 2>&1
    local rc=$?
    echo '```' >> "$REPORT"
    echo "exit $rc in $((SECONDS - start)) s" >> "$REPORT"
    echo >> "$REPORT"
    echo "$title: exit $rc"
}

# The software device has no CUDA; a dry run checks the Vulkan half.
default_backends="cuda vulkan"
[[ ${DRY_RUN:-0} == 1 ]] && default_backends=vulkan
for backend in ${BACKENDS:-$default_backends}; do
    export SLUICE_GPU_BACKEND=$backend
    for t in gpu_kernels gpu_ops gpu_session gpu_fusion; do
        section "op suite: $t ($backend)" 90 "$BIN/$t" --test-threads=4
    done
    section "the seed program on the GPU ($backend)" 45 "$BIN/mnist_softmax" --device gpu
    section "step times (Sluice, $backend)" 150 "$BIN/gpu_benchmark" --device gpu "${BENCH_ARGS[@]}"
done
unset SLUICE_GPU_BACKEND
if [[ ${DRY_RUN:-0} != 1 && -f $WORK/peers/torch_best_gpu.py ]]; then
    section "peers: PyTorch with a CUDA graph, JAX jit" 120 python3 "$WORK/peers/torch_best_gpu.py"
fi
if [[ ${DRY_RUN:-0} != 1 && -f $WORK/peers/torch_mlp_gpu.py ]]; then
    section "peers: PyTorch eager" 120 python3 "$WORK/peers/torch_mlp_gpu.py"
fi
rm -rf "$WORK"
cat "$REPORT"
