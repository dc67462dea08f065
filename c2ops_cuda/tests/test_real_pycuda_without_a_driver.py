"""The real PyCUDA, built here the way benchmarks/gpu/run.sh builds it, with a stand-in CUDA driver that
has no GPU: the build recipe works against this CUDA toolkit, and c2ops-cuda fails softly on the real
PyCUDA's errors (the stand-ins of the emulated GPU cannot show either).

The sdist comes from .gpu_deps/ (benchmarks/gpu/fetch_deps.sh) or PyPI; the test skips when neither is
reachable or there is no CUDA toolkit. PyCUDA links against libcuda, which only a driver installs: here
a stand-in library whose every entry point answers CUDA_ERROR_NO_DEVICE is built from the symbols the
compiled PyCUDA needs.
"""
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from emulated_pycuda import real_pycuda_installed

ROOT = Path(__file__).resolve().parents[2]
PYCUDA = "pycuda==2026.1"          # as benchmarks/gpu/fetch_deps.sh
CACHE = Path(tempfile.gettempdir()) / f"c2_real_pycuda_{os.getuid()}"
NO_DEVICE = 100                    # CUDA_ERROR_NO_DEVICE


def _cuda_root():
    nvcc = shutil.which("nvcc")
    for root in (os.environ.get("CUDA_ROOT"), "/usr/local/cuda", nvcc and str(Path(nvcc).resolve().parents[1])):
        if root and Path(root, "bin", "nvcc").exists() and Path(root, "include", "cuda.h").exists():
            return root
    return None


def _sdist(work: Path) -> Path:
    carried = sorted(glob.glob(str(ROOT / ".gpu_deps" / "pycuda-*.tar.gz")))
    if carried:
        return Path(carried[-1])
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-build-isolation",
                               "--no-binary", ":all:", "-d", str(work), PYCUDA], capture_output=True, text=True,
                              timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("downloading the PyCUDA sdist timed out")
    found = sorted(work.glob("pycuda-*.tar.gz"))
    if proc.returncode or not found:
        pytest.skip(f"the PyCUDA sdist is not reachable ({proc.stderr.strip()[-300:]})")
    return found[-1]


def _run(cmd, cwd, env=None, what=""):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, f"{what} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc.stdout


def _stub_driver(libs: Path, symbols=()):
    """libcuda.so(.1) whose functions all return CUDA_ERROR_NO_DEVICE (error names answered properly)."""
    body = "".join(f"int {s}(void) {{ return {NO_DEVICE}; }}\n" for s in symbols
                   if s not in ("cuGetErrorName", "cuGetErrorString"))
    body += ('int cuGetErrorName(int e, const char** s) { *s = "CUDA_ERROR_NO_DEVICE"; return 0; }\n'
             'int cuGetErrorString(int e, const char** s) { *s = "no CUDA-capable device is detected"; return 0; }\n')
    (libs / "stub.c").write_text(body)
    _run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "stub.c", "-o", "libcuda.so.1"], libs,
         what="building the stand-in libcuda")
    (libs / "libcuda.so").unlink(missing_ok=True)
    (libs / "libcuda.so").symlink_to("libcuda.so.1")


@pytest.fixture(scope="module")
def real_pycuda():
    """(site folder holding the built PyCUDA, folder of the stand-in libcuda)."""
    if real_pycuda_installed():
        pytest.skip("PyCUDA is installed (a GPU machine): the GPU tests use it for real")
    root = _cuda_root()
    if root is None or shutil.which("gcc") is None:
        pytest.skip("no CUDA toolkit (bin/nvcc and include/cuda.h) or no gcc")
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = _sdist(CACHE)
    key = hashlib.sha1(sdist.read_bytes() + root.encode() + sys.version.encode()).hexdigest()[:16]
    work = CACHE / key
    site, libs = work / "site", work / "libs"
    if not (site / "pycuda" / "driver.py").exists():
        shutil.rmtree(work, ignore_errors=True)
        libs.mkdir(parents=True)
        _stub_driver(libs)                      # no symbols yet: enough to link against
        src = work / "src"
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        next(work.glob("pycuda-*")).rename(src)
        # the flags benchmarks/gpu/run.sh passes (curand off: this toolkit may not ship it)
        _run([sys.executable, "configure.py", f"--cuda-root={root}", f"--cudadrv-lib-dir={libs}",
              f"--cudart-lib-dir={root}/lib64", f"--curand-lib-dir={libs}", "--no-cuda-enable-curand"], src,
             what="PyCUDA's configure.py")
        # keep libcuda as a dependency although the link-time stand-in defines nothing yet
        env = dict(os.environ, LDFLAGS="-Wl,--no-as-needed")
        _run([sys.executable, "setup.py", "build_ext", "-j", str(os.cpu_count() or 2)], src, env, "PyCUDA's build")
        _run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--no-index",
              "--target", str(site), "."], src, env, "installing PyCUDA")
        driver = next(site.glob("pycuda/_driver*.so"))
        needed = _run(["nm", "-D", "--undefined-only", str(driver)], work, what="nm")
        _stub_driver(libs, sorted({line.split()[-1] for line in needed.splitlines()
                                   if line.split() and line.split()[-1].startswith("cu")}))
    return site, libs


CHILD = """
import pycuda.driver as drv
try:
    drv.init()
    raise SystemExit("drv.init() succeeded with the stand-in driver")
except drv.Error as e:
    print("PyCUDA says:", e)
import c2ops_cuda
from c2core import registry, workspace
from c2core.proto import caffe2_pb2
assert c2ops_cuda.AVAILABLE is False, c2ops_cuda.REASON
assert "cuInit failed" in c2ops_cuda.REASON, c2ops_cuda.REASON
reg = registry.get().ensure_loaded()
assert caffe2_pb2.CUDA not in reg.devices
assert not workspace.has_gpu_support and workspace.NumCudaDevices() == 0
print("c2ops-cuda:", c2ops_cuda.REASON)
"""


def test_real_pycuda_builds_and_c2ops_cuda_fails_softly_without_a_gpu(real_pycuda):
    site, libs = real_pycuda
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join([str(libs), os.environ.get("LD_LIBRARY_PATH", "")]),
               PYTHONPATH=os.pathsep.join([str(site), str(ROOT / "c2ops_cuda"), os.environ.get("PYTHONPATH", "")]))
    env.pop("C2_CUDA_DISABLE", None)
    out = _run([sys.executable, "-c", CHILD], ROOT, env, "importing the real PyCUDA and c2ops-cuda")
    assert "no CUDA-capable device" in out, out
