"""The emulated GPU itself: its barriers, launch checks and cuBLAS stand-in must be right for the
emulated GPU tests (test_emulated_gpu.py) to mean anything."""
import shutil
import subprocess
import sys

import emulated_pycuda as emu
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulated GPU needs g++")

SOURCE = r"""
typedef long long index_t;
// reverse each block's slice through shared memory: wrong unless __syncthreads is a real barrier
extern "C" __global__ void reverse_blocks(const float* x, float* y, int n) {
  __shared__ float tile[128];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  tile[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  const int j = blockIdx.x * blockDim.x + (blockDim.x - 1 - threadIdx.x);
  if (j < n) y[j] = tile[threadIdx.x];
}
// the barrier only in odd blocks: a divergent barrier
extern "C" __global__ void odd_barrier(float* y) {
  if (blockIdx.x % 2) __syncthreads();
  y[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}
// half the threads leave before the barrier
extern "C" __global__ void early_exit(float* y) {
  if (threadIdx.x < 16) return;
  __syncthreads();
  y[threadIdx.x] = 1.0f;
}
extern "C" __global__ void count(int* hits, index_t n) {
  for (index_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) atomicAdd(hits, 1);
}
"""


@pytest.fixture(autouse=True)
def context():
    """A current context, as PyCUDA needs for every allocation, copy and launch."""
    ctx = emu.Context()
    ctx.push()
    yield ctx
    emu.Context.pop()


@pytest.fixture(scope="module")
def module():
    return emu.SourceModule(SOURCE)


def _fn(module, name, sig):
    f = module.get_function(name)
    f.prepare(sig)
    return f


def test_shared_memory_and_barriers_across_blocks(module):
    x = np.arange(256, dtype=np.float32)
    gx, gy = emu.to_gpu(x), emu.empty(256, np.float32)
    _fn(module, "reverse_blocks", "PPi").prepared_call((2, 1), (128, 1, 1), int(gx.gpudata), int(gy.gpudata), 256)
    np.testing.assert_array_equal(gy.get(), np.concatenate([x[:128][::-1], x[128:][::-1]]))


def test_grid_stride_loops_and_atomics(module):
    hits = emu.to_gpu(np.zeros(1, np.int32))
    _fn(module, "count", "Pq").prepared_call((3, 1), (64, 1, 1), int(hits.gpudata), 1000)
    assert hits.get()[0] == 1000


@pytest.mark.parametrize("name", ["odd_barrier", "early_exit"])
def test_a_divergent_barrier_is_an_error(module, name):
    y = emu.empty(4 * 32, np.float32)
    with pytest.raises(RuntimeError, match=rf"kernel {name}: __syncthreads .*divergent barrier"):
        _fn(module, name, "P").prepared_call((4, 1), (32, 1, 1), int(y.gpudata))


def test_launch_arguments_are_checked_against_the_parameters(module):
    with pytest.raises(AssertionError, match=r"reverse_blocks: launched with argument types 'PPq'.*'PPi'"):
        module.get_function("reverse_blocks").prepare("PPq")
    with pytest.raises(AssertionError, match="no kernel missing"):
        module.get_function("missing")


def test_transfers_outside_an_allocation_are_errors():
    g = emu.empty(4, np.float32)
    with pytest.raises(AssertionError, match="overruns an allocation of 16 bytes"):
        emu.memcpy_htod(int(g.gpudata), np.zeros(5, np.float32))
    assert np.isnan(g.get()).all(), "fresh device memory should read as garbage (NaN), not zeros"


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cublas_gemm_follows_the_column_major_c_api(ta, tb):
    import ctypes
    rng = np.random.default_rng(0)
    m, n, k = 3, 4, 5
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)   # op(A) is m x k
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    # column-major storage of M is the row-major storage of M.T
    ga, gb, gc = emu.to_gpu(a.T.copy()), emu.to_gpu(b.T.copy()), emu.to_gpu(c.T.copy())
    lib = emu.EmulatedCublas()
    h = ctypes.c_void_p()
    assert lib.cublasCreate_v2(ctypes.byref(h)) == 0
    P, F32 = ctypes.c_void_p, ctypes.c_float
    status = lib.cublasSgemm_v2(h, ta, tb, m, n, k, ctypes.byref(F32(2.0)), P(int(ga.gpudata)), a.shape[0],
                                P(int(gb.gpudata)), b.shape[0], ctypes.byref(F32(0.5)), P(int(gc.gpudata)), m)
    assert status == 0
    want = 2 * ((a.T if ta else a) @ (b.T if tb else b)) + 0.5 * c
    np.testing.assert_allclose(gc.get().T, want, rtol=1e-5)
    garbage = emu.empty((n, m), np.float32)   # beta 0: C is not read (it holds NaN garbage here)
    lib.cublasSgemm_v2(h, ta, tb, m, n, k, ctypes.byref(ctypes.c_float(1.0)), P(int(ga.gpudata)), a.shape[0],
                       P(int(gb.gpudata)), b.shape[0], ctypes.byref(ctypes.c_float(0.0)), P(int(garbage.gpudata)), m)
    np.testing.assert_allclose(garbage.get().T, (a.T if ta else a) @ (b.T if tb else b), rtol=1e-5)


OVERRUN_CHILD = r"""
import numpy as np, emulated_pycuda as emu
emu.Context().push()
m = emu.SourceModule('extern "C" __global__ void shift(const float* x, float* y, int n) {'
                     '  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = x[i + 1]; }')
f = m.get_function("shift")
f.prepare("PPi")
x, y = emu.to_gpu(np.ones(64, np.float32)), emu.empty(64, np.float32)
f.prepared_call((1, 1), (64, 1, 1), int(x.gpudata), int(y.gpudata), 64)
print("no overrun reported")
"""


def test_kernels_reading_outside_their_buffers_are_caught_under_asan():
    extra = emu.asan_environment()
    if extra is None:
        pytest.skip("g++ has no libasan here")
    env = emu.child_environment(**extra)
    proc = subprocess.run([sys.executable, "-c", OVERRUN_CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and "heap-buffer-overflow" in proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert "in shift_" in proc.stderr or "in shift" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("grid,block", [((1, 70000), (32, 1, 1)), ((1, 1), (2048, 1, 1)), ((1, 1), (32, 32, 2))])
def test_launch_shapes_a_gpu_refuses_are_errors(module, grid, block):
    y = emu.empty(1, np.float32)
    with pytest.raises(AssertionError, match="exceed what a GPU launches"):
        _fn(module, "odd_barrier", "P").prepared_call(grid, block, int(y.gpudata))


RACY = r"""
extern "C" __global__ void last_writer(int* y) { y[0] = blockIdx.x * blockDim.x + threadIdx.x; }
"""


def test_reverse_order_changes_what_a_race_computes(monkeypatch):
    f = _fn(emu.SourceModule(RACY), "last_writer", "P")
    results = []
    for reverse in (False, True):
        monkeypatch.setattr(emu, "REVERSE", reverse)
        y = emu.empty(1, np.int32)
        f.prepared_call((3, 1), (32, 1, 1), int(y.gpudata))
        results.append(int(y.get()[0]))
    assert results == [95, 0]


def test_barriers_hold_in_reverse_order(module, monkeypatch):
    monkeypatch.setattr(emu, "REVERSE", True)
    test_shared_memory_and_barriers_across_blocks(module)


def test_device_work_needs_a_current_context_and_threads_must_pop_theirs(context):
    import threading
    emu.Context.pop()
    try:
        with pytest.raises(RuntimeError, match="no CUDA context current"):
            emu.empty(4, np.float32)
    finally:
        context.push()
    before = len(emu.CONTEXT_ERRORS)
    worker = threading.Thread(target=emu.Context().push, name="forgets-to-pop")
    worker.start()
    worker.join()
    assert emu.CONTEXT_ERRORS[before:] == ["thread forgets-to-pop ended with 1 CUDA context(s) pushed (PyCUDA "
                                           "aborts the process there)"]
    del emu.CONTEXT_ERRORS[before:]


UNWRITTEN_SHARED = r"""
extern "C" __global__ void partial_sum(float* y, int n) {
  __shared__ float buf[64];
  if ((int)threadIdx.x < n) buf[threadIdx.x] = 1.0f;   // the other entries are never written
  __syncthreads();
  if (threadIdx.x == 0) { float s = 0; for (int i = 0; i < 64; ++i) s += buf[i]; y[blockIdx.x] = s; }
}
"""


def test_shared_memory_nobody_wrote_reads_as_garbage():
    f = _fn(emu.SourceModule(UNWRITTEN_SHARED), "partial_sum", "Pi")
    y = emu.empty(2, np.float32)
    f.prepared_call((2, 1), (64, 1, 1), int(y.gpudata), 10)
    assert np.isnan(y.get()).all(), y.get()
    f.prepared_call((2, 1), (64, 1, 1), int(y.gpudata), 64)
    np.testing.assert_array_equal(y.get(), [64, 64])


def test_kernels_and_cublas_may_not_touch_another_gpus_memory(module):
    x = emu.to_gpu(np.zeros(4, np.float32))    # on GPU 0 (the fixture's context)
    other = emu.Context(1)
    other.push()
    try:
        with pytest.raises(AssertionError, match="on GPU 1 addresses memory of GPU 0"):
            _fn(module, "odd_barrier", "P").prepared_call((1, 1), (4, 1, 1), int(x.gpudata))
    finally:
        emu.Context.pop()


def test_the_compile_cache_follows_the_headers(tmp_path):
    (tmp_path / "value.cuh").write_text("#define VALUE 1.0f\n")
    src = '#include "value.cuh"\nextern "C" __global__ void value(float* y) { y[0] = VALUE; }\n'
    y = emu.empty(1, np.float32)
    _fn(emu.SourceModule(src, include_dirs=[str(tmp_path)]), "value", "P").prepared_call((1,), (1, 1, 1),
                                                                                       int(y.gpudata))
    assert y.get()[0] == 1.0
    (tmp_path / "value.cuh").write_text("#define VALUE 2.0f\n")
    _fn(emu.SourceModule(src, include_dirs=[str(tmp_path)]), "value", "P").prepared_call((1,), (1, 1, 1),
                                                                                       int(y.gpudata))
    assert y.get()[0] == 2.0
