"""The GPU as PyCUDA sees it: contexts, memory, compiled kernels, launches, and the c2 device object.

Imported only when PyCUDA and a GPU are there (``c2ops_cuda.availability``
decides). Each GPU is used through its *primary* context, the one the CUDA
runtime (and so cuBLAS) also uses, made current on whichever thread runs an
operator (the DAG executor runs ops on worker threads). Tensors are PyCUDA
``GPUArray`` objects allocated from one memory pool per GPU; kernels come
from ``kernels/*.cu`` through :mod:`c2ops_cuda.templates`, compiled once per
(file, types, GPU) and launched with prepared calls.
"""
from __future__ import annotations

import atexit
import contextlib
import threading

import numpy as np
import pycuda.driver as drv
from pycuda import gpuarray
from pycuda.compiler import SourceModule
from pycuda.tools import DeviceMemoryPool

from c2core.errors import C2Error, OperatorError
from c2ops_cuda import templates

GPUArray = gpuarray.GPUArray
BLOCK = 256

drv.init()
_local = threading.local()
_lock = threading.RLock()
_contexts: dict[int, object] = {}
_pools: dict[int, DeviceMemoryPool] = {}
_modules: dict[tuple, object] = {}
_kernels: dict[tuple, Kernel] = {}
_sm_count: dict[int, int] = {}
_graveyard: dict[int, list] = {}   # objects to free once their GPU is current (release_later)
_device_objects: dict[tuple, object] = {}


def num_devices() -> int:
    return drv.Device.count()


def _context(ordinal: int):
    """GPU `ordinal`'s primary context (retained once, shared by every thread)."""
    with _lock:
        ctx = _contexts.get(ordinal)
        if ctx is None:
            count = drv.Device.count()
            if not 0 <= ordinal < count:
                raise C2Error(f"CUDA device {ordinal} does not exist: this machine has {count} GPU(s)")
            dev = drv.Device(ordinal)
            ctx = _contexts[ordinal] = dev.retain_primary_context()
            _sm_count[ordinal] = dev.get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT)
            _graveyard[ordinal] = []
        return ctx


@contextlib.contextmanager
def on_device(ordinal: int):
    """GPU `ordinal`'s primary context current on this thread for the block, pushed and popped.

    Scoped, because PyCUDA keeps a context stack per thread and aborts the process when a
    thread ends with a context still on it (the DAG executor's worker threads end when
    their net goes away). Nested blocks on the same GPU push nothing.
    """
    previous = getattr(_local, "ordinal", None)
    if previous == ordinal:
        if _graveyard.get(ordinal):
            _bury(ordinal)
        yield
        return
    ctx = _context(ordinal)
    ctx.push()
    _local.ordinal = ordinal
    try:
        _bury(ordinal)
        yield
    finally:
        _local.ordinal = previous
        drv.Context.pop()


def current() -> int:
    """The GPU current on this thread. Outside ``on_device`` (a script calling the runtime
    directly, on the main thread) GPU 0 is made current for good; ``_release`` pops it."""
    ordinal = getattr(_local, "ordinal", None)
    if ordinal is None:
        _context(0).push()
        _local.ordinal = ordinal = 0
        _local.sticky = True
    return ordinal


def release_later(ordinal: int, obj):
    """Free `obj` (a cuRAND generator, anything owning driver objects) the next time GPU `ordinal`
    is current on some thread: freed elsewhere, PyCUDA could not reach its context."""
    with _lock:
        _graveyard.setdefault(ordinal, []).append(obj)


def device_object(key, make):
    """A per-GPU object built once by make() with the GPU current (a shared cuRAND generator);
    freed at exit with the GPU current."""
    full = (current(), key)
    with _lock:
        obj = _device_objects.get(full)
    if obj is None:
        obj = make()
        with _lock:
            obj = _device_objects.setdefault(full, obj)
    return obj


def _bury(ordinal):
    with _lock:
        dead, _graveyard[ordinal] = _graveyard.get(ordinal, []), []
    dead.clear()


@atexit.register
def _release():
    """Free what holds GPU memory and driver objects with each GPU's context current, and leave no
    context pushed on this thread."""
    for ordinal, ctx in list(_contexts.items()):
        try:
            ctx.push()
            try:
                _bury(ordinal)
                for cache in (_kernels, _modules, _device_objects):
                    for key in [k for k in list(cache) if k[0] == ordinal]:
                        cache.pop(key, None)
                pool = _pools.pop(ordinal, None)
                if pool is not None:
                    pool.stop_holding()
            finally:
                drv.Context.pop()
        except Exception:
            pass
    if getattr(_local, "sticky", False):
        try:
            drv.Context.pop()
        except Exception:
            pass
        _local.ordinal, _local.sticky = None, False


# -- memory -------------------------------------------------------------------------------

def _allocator():
    ordinal = current()
    pool = _pools.get(ordinal)
    if pool is None:
        with _lock:
            pool = _pools.get(ordinal)
            if pool is None:
                pool = _pools[ordinal] = DeviceMemoryPool()
    return pool.allocate


def empty(shape, dtype) -> GPUArray:
    out = gpuarray.empty(tuple(int(d) for d in shape), np.dtype(dtype), allocator=_allocator())
    out.c2_gpu = current()   # the GPU whose memory it is: fetches and syncs go through its context
    return out


def owner(value) -> int:
    """The GPU a tensor's memory belongs to (the current one, else 0, for arrays made elsewhere)."""
    gpu = getattr(value, "c2_gpu", None)
    return gpu if gpu is not None else (getattr(_local, "ordinal", None) or 0)


def zeros(shape, dtype) -> GPUArray:
    out = empty(shape, dtype)
    if out.size:
        drv.memset_d8(out.gpudata, 0, out.nbytes)
    return out


def to_gpu(array: np.ndarray) -> GPUArray:
    array = np.ascontiguousarray(array)
    out = empty(array.shape, array.dtype)
    if out.size:
        drv.memcpy_htod(out.gpudata, array)
    return out


def to_host(value: GPUArray) -> np.ndarray:
    out = np.empty(value.shape, value.dtype)
    if value.size:
        drv.memcpy_dtoh(out, value.gpudata)
    return out


def copy_into(dst: GPUArray, src: GPUArray):
    if src.nbytes:
        drv.memcpy_dtod(dst.gpudata, src.gpudata, src.nbytes)


def ptr(value) -> int:
    """The device address of a GPUArray (0 for an empty one)."""
    if value is None or value.gpudata is None:
        return 0
    return int(value.gpudata)


def view(value: GPUArray, shape) -> GPUArray:
    """The same memory under another shape (no copy)."""
    shape = tuple(int(d) for d in shape)
    if value.shape == shape:
        return value
    if value.gpudata is None:      # an empty tensor has no memory to share (PyCUDA refuses a base then)
        out = GPUArray(shape, value.dtype)
    else:
        out = GPUArray(shape, value.dtype, gpudata=value.gpudata, base=value)
    out.c2_gpu = owner(value)
    return out


# -- kernels ------------------------------------------------------------------------------

def _module(filename: str, types: dict[str, str]):
    ordinal = current()
    key = (ordinal, filename, tuple(types.items()))
    mod = _modules.get(key)
    if mod is None:
        with _lock:   # one compile per module, whichever threads ask at once
            mod = _modules.get(key)
            if mod is None:
                mod = _modules[key] = SourceModule(templates.render(filename, types), no_extern_c=True,
                                                   options=list(templates.NVCC_OPTIONS),
                                                   include_dirs=[str(templates.KERNEL_DIR)])
    return mod


_ARG_CODES = {np.dtype(np.float32): "f", np.dtype(np.float64): "d", np.dtype(np.int32): "i",
              np.dtype(np.int64): "q", np.dtype(np.uintp): "P"}


class Ptr(int):
    """A raw device address as a kernel argument (an offset into a GPUArray: :func:`at`)."""


def at(value: GPUArray, offset: int) -> Ptr:
    """The address of element `offset` of a GPUArray."""
    return Ptr(ptr(value) + int(offset) * value.dtype.itemsize)


def _arg(a):
    if isinstance(a, GPUArray) or a is None:
        return "P", ptr(a)
    if isinstance(a, Ptr):
        return "P", int(a)
    if isinstance(a, np.generic):
        code = _ARG_CODES.get(a.dtype)
        if code is None:
            raise TypeError(f"kernel argument of dtype {a.dtype} (pass float32/64, int32/64 scalars)")
        return code, a
    if isinstance(a, bool):
        return "i", np.int32(a)
    if isinstance(a, int):
        return "q", np.int64(a)
    raise TypeError(f"kernel argument {a!r}: pass GPUArrays or NumPy scalars of the kernel's C type")


class Kernel:
    """One compiled kernel; the first launch fixes its argument types (a prepared call)."""

    def __init__(self, function, name):
        self.function, self.name, self.signature = function, name, None
        self.sm_count = _sm_count.get(current(), 80)

    def __call__(self, n: int, *args):
        """Launch over n elements (the kernel's GRID_LOOP); nothing for n == 0."""
        n = int(n)
        if n <= 0:
            return
        blocks = min((n + BLOCK - 1) // BLOCK, self.sm_count * 16)
        self.launch((blocks, 1), (BLOCK, 1, 1), *args)

    def launch(self, grid, block, *args, shared: int = 0):
        codes, values = zip(*(_arg(a) for a in args)) if args else ((), ())
        sig = "".join(codes)
        if self.signature is None:
            self.function.prepare(sig)
            self.signature = sig
        elif sig != self.signature:
            raise TypeError(f"kernel {self.name}: launched with argument types {sig}, prepared as {self.signature}")
        grid = tuple(int(g) for g in grid)
        if any(g <= 0 for g in grid):
            return
        self.function.prepared_call(grid, tuple(int(b) for b in block), *values, shared_size=shared)


def kernel(filename: str, name: str, **dtypes) -> Kernel:
    """Kernel `name` of `filename` built for the given dtypes (``T=np.float32``, ``I=indices.dtype``)."""
    types = {k: templates.token(v) for k, v in dtypes.items()}
    key = (current(), filename, name, tuple(types.items()))
    k = _kernels.get(key)
    if k is None:
        fname = templates.function_name(name, types)
        k = _kernels[key] = Kernel(_module(filename, types).get_function(fname), fname)
    return k


def row_threads(width: int) -> int:
    """Threads of a one-block-per-row kernel: a power of two up to the row width, at most 256."""
    t = 32
    while t < width and t < 256:
        t *= 2
    return t


def synchronize(ordinal: int | None = None):
    """Wait for the work queued on GPU `ordinal` (the current one by default)."""
    if ordinal is None:
        ordinal = getattr(_local, "ordinal", None) or 0
    with on_device(ordinal):
        drv.Context.synchronize()


# -- the device object c2core's FeedBlob / FetchBlob / copy kernels use -----------------------

class CudaDevice:
    """What ``c2core_device_types`` returns for CUDA: GPU count, host <-> GPU transfers."""

    def num_devices(self):
        return num_devices()

    def feed(self, value, device_option):
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind in "SUV":
            raise C2Error(f"only numeric tensors can be put on the GPU, not {type(value).__name__} "
                          f"of dtype {arr.dtype}")
        with on_device(device_option.cuda_gpu_id):
            return to_gpu(arr)

    def fetch(self, value):
        if isinstance(value, GPUArray):
            with on_device(owner(value)):   # its own GPU's context: the copy waits for that GPU's work
                return to_host(value)
        return np.array(value, copy=True) if isinstance(value, np.ndarray) else value

    def copy(self, value, device_option):
        if not isinstance(value, GPUArray):
            raise OperatorError(f"expected a GPU tensor, got {type(value).__name__}")
        source, target = owner(value), device_option.cuda_gpu_id
        if source != target:
            synchronize(source)          # the source GPU's queued work must have written it
        with on_device(target):
            out = empty(value.shape, value.dtype)
            copy_into(out, value)
            return out
