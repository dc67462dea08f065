import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))           # the parity helper
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))   # the pack, installed or not


@pytest.fixture(autouse=True)
def clean_workspace():
    from c2core import workspace
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


EMULATED = os.environ.get("C2_CUDA_EMULATED") == "1"   # emulated_pycuda: the kernels run on the CPU


def gpu_reason():
    """Why GPU tests cannot run here (None when they can)."""
    import c2ops_cuda
    if not c2ops_cuda.AVAILABLE:
        return f"no GPU for c2ops-cuda: {c2ops_cuda.REASON}"
    from c2core import registry
    from c2core.proto import caffe2_pb2
    reg = registry.get().ensure_loaded()
    if EMULATED:
        import emulated_pycuda
        if "c2ops-cuda" not in reg.packs:        # not installed: register it in-process
            reg.register(c2ops_cuda, name="c2ops-cuda")
        emulated_pycuda.patch_cublas()           # installed or not, cuBLAS is emulated too
    if caffe2_pb2.CUDA not in reg.devices:
        return "c2ops-cuda is usable but not registered (install it: pip install ./c2ops_cuda)"
    return None


@pytest.fixture
def gpu():
    reason = gpu_reason()
    if reason:
        pytest.skip(reason)


# -- which CUDA kernels the emulated GPU tests ran (test_emulated_gpu.py checks every one did) ----

_RAN_ON_GPU: set[str] = set()


def pytest_configure(config):
    if not (EMULATED and os.environ.get("C2_CUDA_RAN_FILE")):
        return
    from c2core import registry
    from c2core.proto import caffe2_pb2
    lookup = registry.Registry.kernel

    def recording_kernel(self, op_type, device_type=0, engine="", where=""):
        cls = lookup(self, op_type, device_type, engine, where)
        if int(device_type) == caffe2_pb2.CUDA:
            _RAN_ON_GPU.add(op_type)
        return cls

    registry.Registry.kernel = recording_kernel


def pytest_sessionfinish(session):
    if not EMULATED:
        return
    path = os.environ.get("C2_CUDA_RAN_FILE")
    if path:
        Path(path).write_text("\n".join(sorted(_RAN_ON_GPU)))
    import emulated_pycuda
    finish_worker_threads()
    if emulated_pycuda.CONTEXT_ERRORS:   # on a real GPU each of these would have aborted the process
        print("\n".join(["", "CUDA context errors:", *emulated_pycuda.CONTEXT_ERRORS]))
        session.exitstatus = 1


def finish_worker_threads(prefix="c2-", timeout=10.0):
    """Let the DAG executors' worker threads end (they do once their net is garbage)."""
    import gc
    import threading
    gc.collect()
    for t in threading.enumerate():
        if t.name.startswith(prefix):
            t.join(timeout)
