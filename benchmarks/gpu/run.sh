#!/usr/bin/env bash
# The whole GPU check in one call on a machine with an NVIDIA GPU, the CUDA toolkit (nvcc) and no
# package registry: build PyCUDA from the carried sdist, install c2core and the packs into a venv
# that sees the image's packages (NumPy, SciPy, Cython, PyTorch), run the GPU tests, run the GPU
# benchmarks against PyTorch CUDA, and leave the logs and results in $OUT.
#
# Before it, on a machine with PyPI:  bash benchmarks/gpu/fetch_deps.sh   (fills .gpu_deps/)
# Then with the device tool:          run(command="bash benchmarks/gpu/run.sh", carry=[".gpu_deps"])
# Steps already done on a still-warm machine (.gpu_venv/ kept) are skipped. Phases can be chosen:
#   bash benchmarks/gpu/run.sh [build] [test] [bench]     (default: all three)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/benchmarks/gpu/results}
mkdir -p "$OUT"
LOG="$OUT/run.log"
PHASES=${*:-build test bench}
PY=${PYTHON:-python3}
VENV="$ROOT/.gpu_venv"
DEPS="$ROOT/.gpu_deps"
JOBS=$(nproc 2>/dev/null || echo 4)
export PYTHONUNBUFFERED=1

say() { echo "== $(date +%H:%M:%S) $*" | tee -a "$LOG"; }
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

: > "$LOG"
say "GPU check of c2 in $ROOT, phases: $PHASES, results in $OUT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true; } | tee -a "$LOG"

# the toolkit: the folder holding bin/nvcc and include/cuda.h (nvcc on PATH may be a wrapper script)
NVCC_ON_PATH=$(command -v nvcc || true)
for c in "${CUDA_ROOT:-}" /usr/local/cuda ${NVCC_ON_PATH:+"$(dirname "$(dirname "$(readlink -f "$NVCC_ON_PATH")")")"} \
         /usr/local/cuda-*; do
  if [ -n "$c" ] && [ -x "$c/bin/nvcc" ] && [ -f "$c/include/cuda.h" ]; then export CUDA_ROOT=$c; break; fi
done
[ -n "${CUDA_ROOT:-}" ] && [ -x "$CUDA_ROOT/bin/nvcc" ] || { say "FAILED: no CUDA toolkit (bin/nvcc + include/cuda.h)"; exit 2; }
NVCC="$CUDA_ROOT/bin/nvcc"
export PATH="$CUDA_ROOT/bin:$PATH"
say "nvcc: $NVCC ($("$NVCC" --version | tail -1)); CUDA_ROOT=$CUDA_ROOT"

# Libraries PyCUDA links (-lcuda -lcudart -lcurand) and c2ops-cuda loads (libcublas), gathered with
# unversioned names in one folder: the driver's libcuda, the toolkit's or the nvidia-* wheels' others.
LIBS="$ROOT/.gpu_venv/cuda-libs"
find_lib() {  # find_lib NAME -> first path of NAME.so* in the usual places
  local name=$1 p
  for p in $(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 ~ "^"n"\\.so" {print $NF}') \
           "$CUDA_ROOT"/lib64/"$name".so* "$CUDA_ROOT"/targets/*/lib/"$name".so* \
           /usr/local/nvidia/lib64/"$name".so* /usr/lib/x86_64-linux-gnu/"$name".so* \
           $("$PY" -c 'import site,sys; print(" ".join(site.getsitepackages()+[site.getusersitepackages()]))' 2>/dev/null \
             | tr ' ' '\n' | sed "s|\$|/nvidia/*/lib/$name.so*|"); do
    for f in $p; do [ -e "$f" ] && { echo "$f"; return 0; }; done
  done
  return 1
}

build() {
  say "build: venv $VENV (with the image's site packages)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV" >>"$LOG" 2>&1
  local P="$VENV/bin/python"
  mkdir -p "$LIBS"
  for lib in libcuda libcudart libcurand libcublas libcublasLt; do
    f=$(find_lib "$lib") && ln -sf "$f" "$LIBS/$lib.so" && say "  $lib: $f" || say "  $lib: NOT FOUND"
  done
  [ -d "$DEPS" ] || { say "FAILED: $DEPS missing: run benchmarks/gpu/fetch_deps.sh first and carry .gpu_deps"; return 1; }
  "$P" -m pip install -q --no-index --no-deps "$DEPS"/*.whl >>"$LOG" 2>&1 || { say "FAILED: wheels"; return 1; }
  if ! "$P" -c "import pycuda.driver" >/dev/null 2>&1; then
    say "build: PyCUDA from $(ls "$DEPS"/pycuda-*.tar.gz)"
    rm -rf "$VENV/pycuda-src" && mkdir -p "$VENV/pycuda-src"
    tar xzf "$DEPS"/pycuda-*.tar.gz -C "$VENV/pycuda-src" --strip-components=1
    local curand_flag=""
    [ -e "$LIBS/libcurand.so" ] || curand_flag="--no-cuda-enable-curand"
    (cd "$VENV/pycuda-src" && "$P" configure.py --cuda-root="$CUDA_ROOT" --cudadrv-lib-dir="$LIBS" \
        --cudart-lib-dir="$LIBS" --curand-lib-dir="$LIBS" $curand_flag >>"$LOG" 2>&1 \
      && "$P" setup.py build_ext -j "$JOBS" >>"$LOG" 2>&1 \
      && "$P" -m pip install -q --no-build-isolation --no-deps --no-index . >>"$LOG" 2>&1) \
      || { say "FAILED: PyCUDA build (see $LOG)"; tail -30 "$LOG"; return 1; }
  fi
  say "build: c2core and the packs (Cython, $JOBS jobs)"
  for pkg in . c2ops_cpu c2ops_sparse c2ops_cuda; do
    if [ -f "$pkg/setup.py" ] && [ "$pkg" != "c2ops_cuda" ]; then
      (cd "$pkg" && "$P" setup.py build_ext --inplace -j "$JOBS" >>"$LOG" 2>&1) || { say "FAILED: build_ext $pkg"; return 1; }
    fi
    "$P" -m pip install -q --no-build-isolation --no-deps --no-index --config-settings editable_mode=compat -e "$pkg" \
      >>"$LOG" 2>&1 || { say "FAILED: install $pkg"; tail -30 "$LOG"; return 1; }
  done
  "$P" - <<'PYEOF' 2>&1 | tee -a "$LOG"
import c2ops_cuda
from c2core import workspace
print("c2ops_cuda available:", c2ops_cuda.AVAILABLE, c2ops_cuda.REASON, "| GPUs:", workspace.NumCudaDevices())
PYEOF
}

run_tests() {
  local P="$VENV/bin/python"
  # only what needs the GPU: the nvcc compile test and the emulated-GPU tests already run in CI
  say "test: pack registration, GPU parity of every op and LeNet on the GPU"
  (cd c2ops_cuda && timeout 900 "$P" -m pytest tests/test_cuda_pack.py tests/test_gpu_ops.py tests/test_gpu_lenet.py \
     -p no:cacheprovider -q -o addopts="" -rs \
     --junitxml="$OUT/gpu-tests.xml" 2>&1 | tee "$OUT/gpu-tests.log" | tail -40)
  say "test: core device tests (fake GPU pack) with the real pack installed"
  timeout 300 "$P" -m pytest tests/test_devices.py -p no:cacheprovider -q -o addopts="" 2>&1 | tail -5 | tee -a "$LOG"
}

run_bench() {
  local P="$VENV/bin/python"
  say "bench: c2ops-cuda against PyTorch CUDA"
  timeout 900 "$P" benchmarks/gpu/bench_cuda.py --out "$OUT" 2>&1 | tee "$OUT/bench.log" | tail -60
}

export LD_LIBRARY_PATH="$LIBS:${LD_LIBRARY_PATH:-}"
export C2_CUBLAS_LIB=${C2_CUBLAS_LIB:-$LIBS/libcublas.so}
status=0
if has_phase build; then build || status=1; fi
if [ $status = 0 ] && has_phase test; then run_tests || status=1; fi
if [ $status = 0 ] && has_phase bench; then run_bench || status=1; fi
say "done (status $status); files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $status
