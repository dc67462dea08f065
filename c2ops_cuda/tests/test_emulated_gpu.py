"""The GPU tests on a machine without a GPU: every kernel runs, on the CPU, through emulated_pycuda.

test_gpu_ops.py (device parity of every CUDA operator with the CPU packs,
gradients included) and test_gpu_lenet.py (LeNet trained under a CUDA
DeviceOption to the CPU run's accuracy) run in a child interpreter whose
``pycuda`` is the emulation: the pack's host code is unchanged, its kernel
sources are compiled by g++ and launched over their whole grid, cuBLAS
products are NumPy's. Values are compared, so a wrong kernel fails CI, and
every operator in ``c2ops_cuda.catalogue.CUDA_OPS`` must have run on the
emulated GPU during the parity tests. Where g++ has AddressSanitizer, the
kernels are built with it, so one reading or writing outside its buffers stops
the run with a report naming the kernel; the parity tests run a second time
with blocks and threads in reverse order, so a kernel whose result depends on
the order its threads run in fails one of the two (a lost update, whose result
does not depend on the order, is not caught: threads never interleave).
Skipped where the real PyCUDA is installed (the GPU tests run for real there).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import emulated_pycuda
import pytest
from emulated_pycuda import real_pycuda_installed

HERE = Path(__file__).parent


# (test file, how the emulated GPU runs it): the parity tests once under AddressSanitizer (where g++ has it)
# and once with blocks and threads in reverse order; LeNet once (its kernels are the parity tests' kernels,
# and it would take three times as long under ASan)
RUNS = [("test_gpu_ops.py", "asan"), ("test_gpu_ops.py", "reverse"), ("test_gpu_lenet.py", "plain")]


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="the emulated GPU needs g++")
@pytest.mark.skipif(real_pycuda_installed(), reason="PyCUDA is installed: the GPU tests themselves run")
@pytest.mark.parametrize("tests,mode", RUNS)
def test_gpu_tests_on_the_emulated_gpu(tests, mode, tmp_path):
    script = ("import sys, emulated_pycuda; emulated_pycuda.install(); import pytest; "
              "sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', '-o', 'addopts=', sys.argv[1]]))")
    ran = tmp_path / "ran_on_gpu.txt"
    env = emulated_pycuda.child_environment(C2_CUDA_RAN_FILE=str(ran))
    if mode == "asan":
        asan = emulated_pycuda.asan_environment()
        if asan is None:
            pytest.skip("g++ has no AddressSanitizer here (the reverse-order run still runs the parity tests)")
        env.update(asan)   # a kernel leaving its buffers stops the run
    if mode == "reverse":
        env["C2_EMU_REVERSE"] = "1"
    proc = subprocess.run([sys.executable, "-c", script, tests], cwd=HERE, capture_output=True, text=True, env=env,
                          timeout=900)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    summary = tail.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, tail
    print(summary)
    if tests == "test_gpu_ops.py":   # every CUDA kernel the pack registers was run and compared
        from c2ops_cuda.catalogue import CUDA_OPS
        missing = sorted(set(CUDA_OPS) - set(ran.read_text().split()))
        assert not missing, f"CUDA kernels no GPU test runs: {missing}"
