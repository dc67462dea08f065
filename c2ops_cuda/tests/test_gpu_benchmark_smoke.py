"""benchmarks/gpu/bench_cuda.py runs end to end (tiny shapes) on the emulated GPU, so the one GPU call a
session with a GPU makes does not die on a script error. PyTorch's side runs on the CPU here (its
``.cuda()`` is the identity); the script's own check that c2 and PyTorch agree still applies."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import emulated_pycuda
import pytest
from emulated_pycuda import real_pycuda_installed

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CHILD = """
import sys, emulated_pycuda
emulated_pycuda.install()
import c2ops_cuda
emulated_pycuda.patch_cublas()
import torch
torch.Tensor.cuda = lambda self, *a, **k: self
torch.cuda.synchronize = lambda *a, **k: None
torch.cuda.get_device_name = lambda *a, **k: "emulated GPU (CPU)"
sys.path.insert(0, sys.argv[1])
from benchmarks.gpu import bench_cuda
bench_cuda.main(["--smoke", "--out", sys.argv[2]])
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulated GPU needs g++")
def test_gpu_benchmark_script_runs_on_the_emulated_gpu(tmp_path):
    pytest.importorskip("torch")
    if real_pycuda_installed():
        pytest.skip("PyCUDA is installed: benchmarks/gpu/run.sh runs the real benchmark")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(tmp_path)], capture_output=True, text=True,
                          env=emulated_pycuda.child_environment(), timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    rows = json.loads((tmp_path / "bench.json").read_text())
    failed = [r["what"] for r in rows if r["what"].startswith("FAILED")]
    assert not failed, failed
    groups = {r["group"] for r in rows}
    assert groups == {"fc", "conv", "bandwidth", "sls"}, groups
    assert (tmp_path / "bench.md").read_text().count("\n") == len(rows) + 2
