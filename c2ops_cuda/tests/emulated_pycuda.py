"""PyCUDA (and cuBLAS, cuRAND) emulated on the host, so the GPU tests check real numbers without a GPU.

``install()`` puts emulated ``pycuda`` modules in ``sys.modules`` before
c2ops_cuda is imported; ``patch_cublas()`` replaces the pack's cuBLAS calls
after. Then the pack's own host code runs unchanged:

- device memory is host memory (filled with 0xFF bytes when allocated, as a
  GPU's memory holds garbage, so a kernel that reads what nobody wrote gives
  NaNs); every transfer and cuBLAS call is checked to stay inside the
  allocations it addresses;
- every kernel source instantiation is compiled by g++ with ``cuda_emu.h``
  (the CUDA built-ins on the host) into a shared library, and each launch runs
  the whole grid on the CPU; the launch's argument types are checked against
  the kernel's parameters first (count, pointer/integer/float, float versus
  double);
- libcublas is emulated at its C API (column-major, ctypes arguments) with
  NumPy on the same buffers, so the pack's own cuBLAS wrapper runs; cuRAND draws
  come from NumPy's generator (so random ops match in distribution only).

What this does not cover: PyCUDA's real API (the stand-ins follow the
documented calls the pack makes), data races and warp-level effects inside a
kernel (threads run one after another), cuBLAS itself, timing.
"""
from __future__ import annotations

import bisect
import ctypes
import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
EMU_HEADER = HERE / "cuda_emu.h"
LAUNCHES: list[tuple] = []            # (kernel, grid, block) of every launch, for tests of the host path
DEVICE_COUNT = 2                      # two GPUs, so the tests can place work on a second one
SM_COUNT = 2                          # small, so the kernels' grid-stride loops take more than one turn
# blocks and threads run last to first: a kernel whose result depends on its threads' order (a race) gives
# another result than in the usual first-to-last order, which the parity tests then catch
REVERSE = os.environ.get("C2_EMU_REVERSE") == "1"

_ALLOCS: dict[int, np.ndarray] = {}   # base address -> backing bytes
_BASES: list[int] = []                # sorted keys of _ALLOCS
_OWNERS: dict[int, int] = {}          # base address -> the GPU whose memory it is
_ALLOC_LOCK = threading.Lock()
_LAUNCH_LOCK = threading.Lock()       # the emulated thread indices are globals: one launch at a time


class EmulatedAlloc:
    """Device memory: a host buffer at its real address, released when the last reference goes."""

    def __init__(self, nbytes):
        _require_context("allocating device memory")
        self.nbytes = max(int(nbytes), 1)
        self.buffer = np.full(self.nbytes, 0xFF, np.uint8)
        self.base = self.buffer.ctypes.data
        with _ALLOC_LOCK:
            _ALLOCS[self.base] = self.buffer
            _OWNERS[self.base] = self.gpu = _stack()[-1].ordinal
            bisect.insort(_BASES, self.base)

    def __int__(self):
        return self.base

    __index__ = __int__

    def __del__(self):
        base = getattr(self, "base", None)   # None when __init__ failed
        with _ALLOC_LOCK:
            _OWNERS.pop(base, None)
            if base is not None and _ALLOCS.pop(base, None) is not None:
                del _BASES[bisect.bisect_left(_BASES, base)]


def _allocation(addr, nbytes=0) -> int:
    """The base address of the allocation holding [addr, addr + nbytes), or an error naming the overrun."""
    addr, nbytes = int(addr), int(nbytes)
    with _ALLOC_LOCK:
        i = bisect.bisect_right(_BASES, addr) - 1
        base = _BASES[i] if i >= 0 else None
        size = _ALLOCS[base].size if base is not None else 0
    if base is None or not (addr < base + size or (nbytes == 0 and addr == base + size)):
        raise AssertionError(f"device address {addr:#x} is in no allocation")
    if addr + nbytes > base + size:
        raise AssertionError(f"device access of {nbytes} bytes at +{addr - base} overruns an allocation of "
                             f"{size} bytes")
    return base


def _span(addr, nbytes):
    """The backing bytes [addr, addr + nbytes) of one allocation."""
    base = _allocation(addr, nbytes)
    start = int(addr) - base
    return _ALLOCS[base][start: start + int(nbytes)]


class GPUArray:
    def __init__(self, shape, dtype, allocator=None, base=None, gpudata=None, strides=None, order="C"):
        self.shape = tuple(int(d) for d in (shape if isinstance(shape, tuple | list) else (shape,)))
        self.dtype = np.dtype(dtype)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.ndim = len(self.shape)
        self.nbytes = self.size * self.dtype.itemsize
        self.base = base
        if gpudata is None:
            assert base is None, "GPUArray: a base without gpudata (PyCUDA asserts this too)"
            gpudata = (allocator or EmulatedAlloc)(self.nbytes) if self.size else None
        self.gpudata = gpudata

    def view_host(self):
        return _span(int(self.gpudata), self.nbytes).view(self.dtype).reshape(self.shape)

    def get(self):
        _require_context("GPUArray.get")
        return self.view_host().copy() if self.size else np.empty(self.shape, self.dtype)


def empty(shape, dtype, allocator=None, order="C"):
    return GPUArray(shape if isinstance(shape, tuple | list) else (shape,), dtype, allocator=allocator)


def to_gpu(ary, allocator=None):
    ary = np.ascontiguousarray(ary)
    out = empty(ary.shape, ary.dtype, allocator)
    if out.size:
        out.view_host()[...] = ary
    return out


# -- kernels: compiled by g++ against cuda_emu.h, run on the CPU ------------------------------

# C2_EMU_ASAN=1: kernels built with AddressSanitizer, so a kernel reading or writing outside its buffers stops
# the run with a report (the interpreter must run with libasan preloaded: see asan_environment)
ASAN = os.environ.get("C2_EMU_ASAN") == "1"
_CACHE = Path(tempfile.gettempdir()) / f"c2_emulated_cuda_{os.getuid()}"
_ERROR_SIZE = 512


def _compiler():
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("the emulated GPU needs a C++ compiler (g++) to build the kernels")
    flags = [compiler, "-std=c++17", "-include", str(EMU_HEADER)]
    if ASAN:
        flags += ["-fsanitize=address", "-fno-omit-frame-pointer"]
    return flags


def _gxx(args, what):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}   # the ASan run-time is for Python only
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{what} for the emulated GPU failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


@functools.cache
def _toolchain_key() -> str:
    """What else decides the compiled code: the compiler (its version), the flags, the header."""
    compiler = _compiler()
    version = _gxx([compiler[0], "--version"], "asking the compiler its version")
    return "\n".join([version, *compiler, EMU_HEADER.read_text()])


def _headers(include_dirs) -> str:
    """The text of every header the source could include."""
    paths = [p for d in include_dirs for pattern in ("*.cuh", "*.h") for p in sorted(Path(d).glob(pattern))]
    return "".join(p.read_text() for p in paths)


def _compile(source: str, include_dirs) -> tuple[Path, list[str]]:
    """The shared library of one kernel source instantiation and its kernels' names (cached by content: the
    source, the headers it can include, the toolchain). Processes building the same one take turns."""
    key = hashlib.sha1((source + _headers(include_dirs) + _toolchain_key()).encode()).hexdigest()
    out, names_file = _CACHE / f"{key}.so", _CACHE / f"{key}.kernels"
    if out.exists() and names_file.exists():
        return out, names_file.read_text().split()
    _CACHE.mkdir(parents=True, exist_ok=True)
    with open(_CACHE / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out.exists() and names_file.exists()):
            tag = f"{key}.{os.getpid()}.{threading.get_ident()}"
            src = _CACHE / f"{tag}.cpp"
            src.write_text(source)
            includes = [f"-I{d}" for d in include_dirs]
            # the kernels are the extern "C" void functions once KERNEL and the kernel-making macros expand
            expanded = _gxx([*_compiler(), "-E", "-P", *includes, str(src)], "preprocessing the kernels")
            names = re.findall(r'extern\s+"C"\s+void\s+([A-Za-z]\w*)\s*\(', expanded)
            src.write_text(source + "\n" + "".join(f"C2EMU_EXPORT({n})\n" for n in names))
            tmp = _CACHE / f"{tag}.so"
            _gxx([*_compiler(), "-O1", "-fPIC", "-shared", "-w", *includes, str(src), "-o", str(tmp)],
                 "compiling the kernels")
            (_CACHE / f"{tag}.kernels").write_text("\n".join(names))
            os.replace(_CACHE / f"{tag}.kernels", names_file)
            os.replace(tmp, out)   # atomic: no process loads a half-written library
            src.unlink(missing_ok=True)
    return out, names_file.read_text().split()


_CTYPES = {"P": ctypes.c_void_p, "q": ctypes.c_longlong, "i": ctypes.c_int, "f": ctypes.c_float,
           "d": ctypes.c_double}


# what a CUDA device accepts (compute capability 7.0 and later)
_MAX_GRID, _MAX_BLOCK = (2 ** 31 - 1, 65535, 65535), (1024, 1024, 64)


def _check_launch_shape(name, grid, block):
    threads = int(np.prod(block))
    bad = (not 0 < threads <= 1024 or any(not 0 < int(b) <= m for b, m in zip(block, _MAX_BLOCK))
           or any(not 0 < int(g) <= m for g, m in zip(grid, _MAX_GRID)))
    if bad:
        raise AssertionError(f"kernel {name}: grid {grid} and block {block} exceed what a GPU launches (grid up to "
                             f"{_MAX_GRID}, block up to {_MAX_BLOCK} and 1024 threads)")


class Function:
    def __init__(self, library, name):
        self.name, self.sig = name, None
        self._launch = getattr(library, f"c2emu_launch_{name}")
        self._launch.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                 ctypes.c_int]
        params = getattr(library, f"c2emu_signature_{name}")
        params.restype = ctypes.c_char_p
        self.params = params().decode()

    def prepare(self, sig):
        if sig != self.params:
            raise AssertionError(f"kernel {self.name}: launched with argument types {sig!r}, but its parameters "
                                 f"are {self.params!r} (P pointer, q int64, i int32, f float, d double)")
        self.sig = sig

    def prepared_call(self, grid, block, *args, shared_size=0):
        assert self.sig is not None, f"kernel {self.name} launched before prepare()"
        _require_context(f"launching kernel {self.name}")
        assert len(args) == len(self.sig), f"kernel {self.name}: {len(args)} arguments for signature {self.sig}"
        assert len(block) == 3, f"kernel {self.name}: block {block} must be a 3-tuple (PyCUDA requires it)"
        assert 1 <= len(grid) <= 3, f"kernel {self.name}: grid {grid} must have 1 to 3 dimensions"
        grid, block = (tuple(grid) + (1, 1))[:3], tuple(block)
        _check_launch_shape(self.name, grid, block)
        values = []
        for c, a in zip(self.sig, args):
            if c == "P" and int(a):
                _check_owner(int(a), f"kernel {self.name}")   # a pointer into this GPU's memory (or null)
            values.append(_CTYPES[c](int(a) if c in "Pqi" else float(a)))
        pointers = (ctypes.c_void_p * max(len(values), 1))(*[ctypes.addressof(v) for v in values])
        dims = (ctypes.c_uint * 7)(*grid, *block, int(REVERSE))
        error = ctypes.create_string_buffer(_ERROR_SIZE)
        with _LAUNCH_LOCK:
            failed = self._launch(dims, pointers, error, _ERROR_SIZE)
        LAUNCHES.append((self.name, grid, block))
        if failed:
            raise RuntimeError(f"kernel {self.name}: {error.value.decode()}")


class SourceModule:
    def __init__(self, source, no_extern_c=False, options=None, include_dirs=(), **kw):
        path, self.names = _compile(source, include_dirs)
        self.library = ctypes.CDLL(str(path))
        self.functions = {}

    def get_function(self, name):
        if name not in self.names:
            raise AssertionError(f"no kernel {name} in the module (has {self.names[:8]}...)")
        if name not in self.functions:
            self.functions[name] = Function(self.library, name)
        return self.functions[name]


# -- the driver ------------------------------------------------------------------------------

def memcpy_htod(dest, src):
    _require_context("memcpy_htod")
    src = np.ascontiguousarray(src)
    _span(dest, src.nbytes)[...] = src.reshape(-1).view(np.uint8)


def memcpy_dtoh(dest, src):
    _require_context("memcpy_dtoh")
    dest.reshape(-1).view(np.uint8)[...] = _span(src, dest.nbytes)


def memcpy_dtod(dest, src, size):
    _require_context("memcpy_dtod")
    _span(dest, size)[...] = _span(src, size)


def memset_d8(dest, value, count):
    _require_context("memset_d8")
    _span(dest, count)[...] = value


def memset_d32(dest, value, count):
    _require_context("memset_d32")
    _span(dest, 4 * count).view(np.uint32)[...] = value


# PyCUDA's context stack is per thread, and a thread that ends with a context still pushed makes PyCUDA
# abort the process; here the thread's stack records that in CONTEXT_ERRORS instead
CONTEXT_ERRORS: list[str] = []
_threads = threading.local()


class _ThreadStack(list):
    def __init__(self):
        super().__init__()
        self.thread = threading.current_thread().name

    def __del__(self):   # runs when the thread ends and its thread-local data goes
        if self:
            CONTEXT_ERRORS.append(f"thread {self.thread} ended with {len(self)} CUDA context(s) pushed "
                                  "(PyCUDA aborts the process there)")


def _stack():
    stack = getattr(_threads, "stack", None)
    if stack is None:
        stack = _threads.stack = _ThreadStack()
    return stack


def _owner(addr) -> int:
    return _OWNERS[_allocation(addr)]


def _check_owner(addr, what):
    """A kernel or cuBLAS call may only touch the current GPU's memory (no peer access here)."""
    gpu, current = _owner(addr), _stack()[-1].ordinal
    if gpu != current:
        raise AssertionError(f"{what} on GPU {current} addresses memory of GPU {gpu} (an illegal address on a "
                             "real GPU without peer access)")


def _require_context(what):
    if not _stack():
        raise RuntimeError(f"{what} with no CUDA context current on thread {threading.current_thread().name} "
                           "(PyCUDA raises LogicError here)")


class Context:
    def __init__(self, ordinal=0):
        self.ordinal = ordinal

    def push(self):
        _stack().append(self)

    @staticmethod
    def pop():
        stack = _stack()
        if not stack:
            raise RuntimeError("cannot pop non-current context (PyCUDA's context stack of this thread is empty)")
        stack.pop()

    @staticmethod
    def synchronize():
        _require_context("Context.synchronize")


class Device:
    def __init__(self, ordinal):
        self.ordinal = ordinal

    @staticmethod
    def count():
        return DEVICE_COUNT

    def retain_primary_context(self):
        return Context(self.ordinal)

    def get_attribute(self, attr):
        return SM_COUNT


class DeviceMemoryPool:
    def allocate(self, nbytes):
        return EmulatedAlloc(nbytes)

    def stop_holding(self):
        pass


class XORWOWRandomNumberGenerator:
    """cuRAND's generator as the pack uses it: seeded from `seed_getter`, uniform in (0, 1], normal."""

    def __init__(self, seed_getter=None, offset=0):
        seeds = seed_getter(64).get() if seed_getter is not None else np.arange(64)
        self.rng = np.random.default_rng(int(seeds[0]))

    def fill_uniform(self, data):
        _require_context("fill_uniform")
        data.view_host()[...] = 1.0 - self.rng.random(data.shape)

    def fill_normal(self, data):
        _require_context("fill_normal")
        data.view_host()[...] = self.rng.standard_normal(data.shape)


# -- cuBLAS: the C API (column-major, as libcublas) computed with NumPy on the device buffers ----
# The pack's cublas.py runs unchanged on top of it, so its row-major to column-major translation
# (swapped operands, flipped transposes) is what the parity tests check.

def _col_major(addr, trans, rows, cols, ld, dtype):
    """op(M) of rows x cols for the column-major matrix stored at addr with leading dimension ld."""
    dtype = np.dtype(dtype)
    s = dtype.itemsize
    stored_rows, stored_cols = (cols, rows) if trans else (rows, cols)
    assert ld >= max(1, stored_rows), f"cuBLAS: leading dimension {ld} < {stored_rows} rows"
    if not stored_rows or not stored_cols:
        return np.zeros((rows, cols), dtype)
    nbytes = ((stored_cols - 1) * ld + stored_rows) * s
    m = np.lib.stride_tricks.as_strided(_span(addr, nbytes).view(dtype), (stored_rows, stored_cols), (s, ld * s))
    return m.T if trans else m


def _vector(addr, n, inc, dtype):
    dtype = np.dtype(dtype)
    assert inc >= 1, f"cuBLAS: increment {inc}"
    s = dtype.itemsize
    return np.lib.stride_tricks.as_strided(_span(addr, ((n - 1) * inc + 1) * s).view(dtype), (n,), (inc * s,))


def _product(alpha, a, b, beta, c):
    result = (a @ b) * c.dtype.type(alpha)
    if beta != 0:             # cuBLAS does not read C when beta is 0
        result = result + c.dtype.type(beta) * c
    c[...] = result


_P, _I, _Q = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
# cuBLAS's C prototypes (cublas_api.h), independent of the argtypes the pack declares: a call whose
# declared argument types disagree with these reaches the emulation with wrong values
_PROTOTYPES = {
    "gemm_v2": [_P, _I, _I, _I, _I, _I, _P, _P, _I, _P, _I, _P, _P, _I],
    "gemmStridedBatched": [_P, _I, _I, _I, _I, _I, _P, _P, _I, _Q, _P, _I, _Q, _P, _P, _I, _Q, _I],
    "gemv_v2": [_P, _I, _I, _I, _P, _P, _I, _P, _I, _P, _P, _I],
}


class EmulatedCublas:
    """libcublas as the pack's ctypes wrapper calls it: C function pointers with cuBLAS's prototypes
    (so the wrapper's own argtypes, set on them by ``cublas._declare``, go through a real C call)."""

    def __init__(self):
        def c_function(argtypes, fn):
            return ctypes.CFUNCTYPE(ctypes.c_int, *argtypes)(fn)

        self._keep = []
        for prefix, dtype in (("S", np.float32), ("D", np.float64)):
            for name, make in (("gemm_v2", self._gemm), ("gemmStridedBatched", self._gemm_batched),
                               ("gemv_v2", self._gemv)):
                f = c_function(_PROTOTYPES[name], make(dtype))
                self._keep.append(f)
                setattr(self, f"cublas{prefix}{name}", f)
        self.cublasCreate_v2 = c_function([_P], self._create)
        self.cublasSetMathMode = c_function([_P, _I], lambda handle, mode: 0)

    @staticmethod
    def _create(handle_address):
        _require_context("cublasCreate")
        ctypes.c_void_p.from_address(handle_address).value = 1
        return 0

    @staticmethod
    def _scalar(address, dtype):
        return (ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double).from_address(address).value

    def _gemm(self, dtype):
        def gemm(handle, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            _require_context("cuBLAS gemm")
            for ptr in (a, b, c) if m and n else ():
                _check_owner(ptr, "cuBLAS gemm")
            if m and n:
                _product(self._scalar(alpha, dtype), _col_major(a, ta, m, k, lda, dtype),
                         _col_major(b, tb, k, n, ldb, dtype), self._scalar(beta, dtype),
                         _col_major(c, 0, m, n, ldc, dtype))
            LAUNCHES.append(("cublas_gemm", (m, n, k), ()))
            return 0
        return gemm

    def _gemm_batched(self, dtype):
        def gemm_batched(handle, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch):
            _require_context("cuBLAS gemmStridedBatched")
            s = np.dtype(dtype).itemsize
            for ptr in (a, b, c) if m and n and batch else ():
                _check_owner(ptr, "cuBLAS gemmStridedBatched")
            alpha, beta = self._scalar(alpha, dtype), self._scalar(beta, dtype)
            for i in range(batch if m and n else 0):
                _product(alpha, _col_major(a + i * sa * s, ta, m, k, lda, dtype),
                         _col_major(b + i * sb * s, tb, k, n, ldb, dtype), beta,
                         _col_major(c + i * sc * s, 0, m, n, ldc, dtype))
            LAUNCHES.append(("cublas_gemm_batched", (m, n, k, batch), ()))
            return 0
        return gemm_batched

    def _gemv(self, dtype):
        def gemv(handle, trans, m, n, alpha, a, lda, x, incx, beta, y, incy):
            _require_context("cuBLAS gemv")
            for ptr in (a, x, y) if m and n else ():
                _check_owner(ptr, "cuBLAS gemv")
            if m and n:
                matrix = _col_major(a, 0, m, n, lda, dtype)
                if trans:
                    matrix = matrix.T
                rows, cols = matrix.shape
                _product(self._scalar(alpha, dtype), matrix, _vector(x, cols, incx, dtype).reshape(cols, 1),
                         self._scalar(beta, dtype), _vector(y, rows, incy, dtype).reshape(rows, 1))
            LAUNCHES.append(("cublas_gemv", (m, n), ()))
            return 0
        return gemv


def install():
    """Emulated pycuda modules in sys.modules; call before importing c2ops_cuda."""
    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    drv = module("pycuda.driver", init=lambda: None, Device=Device, Context=Context,
                 device_attribute=types.SimpleNamespace(MULTIPROCESSOR_COUNT=16), memcpy_htod=memcpy_htod,
                 memcpy_dtoh=memcpy_dtoh, memcpy_dtod=memcpy_dtod, memset_d8=memset_d8, memset_d32=memset_d32)
    ga = module("pycuda.gpuarray", GPUArray=GPUArray, empty=empty, to_gpu=to_gpu)
    module("pycuda", driver=drv, gpuarray=ga)
    module("pycuda.compiler", SourceModule=SourceModule)
    module("pycuda.tools", DeviceMemoryPool=DeviceMemoryPool)
    module("pycuda.curandom", XORWOWRandomNumberGenerator=XORWOWRandomNumberGenerator)
    os.environ["C2_CUDA_EMULATED"] = "1"


def patch_cublas():
    """Give the pack's cuBLAS wrapper the emulated library (after c2ops_cuda is imported)."""
    from c2ops_cuda import cublas
    lib = EmulatedCublas()
    cublas._declare(lib)      # the pack's own argtypes, as on the real library
    cublas._lib = lib
    cublas._handles.clear()


def real_pycuda_installed() -> bool:
    """A PyCUDA (not the emulation) can be imported here: a GPU machine's set-up."""
    if os.environ.get("C2_CUDA_EMULATED") == "1":
        return False
    try:
        import pycuda.driver  # noqa: F401
    except Exception:       # ImportError, or a PyCUDA built against a libcuda that is not there
        return False
    return True


def child_environment(**extra) -> dict:
    """os.environ for a child interpreter that imports this module and the pack from its source folder."""
    path = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, **extra)


def asan_environment() -> dict | None:
    """Environment for a child interpreter running the emulated GPU under AddressSanitizer (None when g++ has
    no libasan): the kernels are built with it and the interpreter preloads its run-time."""
    compiler = os.environ.get("CXX") or shutil.which("g++")
    if compiler is None:
        return None
    proc = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True)
    path = proc.stdout.strip()
    if proc.returncode or not os.path.isabs(path) or not os.path.exists(path):
        return None
    return {"C2_EMU_ASAN": "1", "LD_PRELOAD": os.path.realpath(path),
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1"}
