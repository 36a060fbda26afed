#!/usr/bin/env bash
# The CUDA checks in one run: the GPU tests (compiled Triton LIF against the eager CPU reference, the fused LIF
# on CUDA against the step-by-step reference, the MSG masks), then the neuron benchmarks (the matrix of every
# neuron setting, bench_neuron_matrix.py) and the MSG benchmarks on the GPU.
#
#   bash benchmarks/gpu_check.sh [OUTPUT_DIR]        (default: gpu_check/; one log file per step)
#
# Uses the `python3` on PATH (set PYTHON to choose another), which must have a CUDA build of torch, pytest and
# numpy; the C extension is built in place, so no install is needed. SpikingJelly (with CuPy for its cupy
# backend) and snnTorch join the neuron benchmark when they can be imported, else it runs without them.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${1:-gpu_check}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

step() {  # step NAME COMMAND...: run, log to OUT_DIR/NAME.log, remember a failure
    local name=$1; shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$OUT_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
}

step environment "$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"
[ "$status" -eq 0 ] || { echo "gpu_check: no CUDA device for $PY (see $OUT_DIR/environment.log)" >&2; exit 2; }
step build "$PY" setup.py build_ext --inplace
step tests "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_kernels.py tests/test_neurons.py -rs
step tests-masks "$PY" -m pytest -q -p no:cacheprovider tests/test_masks.py tests/test_methods_msg.py
libraries=()
"$PY" -c "import spikingjelly, snntorch" 2>/dev/null || libraries=(--no-libraries)
step bench-neuron "$PY" benchmarks/bench_neuron.py --device cuda --threads 1 --reps 21 --T 4 8 16 "${libraries[@]}"
sj=()
"$PY" -c "import spikingjelly" 2>/dev/null || sj=(--no-libraries)
step bench-neuron-matrix "$PY" benchmarks/bench_neuron_matrix.py --device cuda --threads 1 --reps 21 "${sj[@]}"
step bench-msg "$PY" benchmarks/bench_msg.py --device cuda --threads 1 --reps 21
step bench-msg-compile "$PY" benchmarks/bench_msg.py --device cuda --threads 1 --reps 21 --backend compile
exit $status
