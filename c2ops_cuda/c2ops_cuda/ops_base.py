"""CudaOp: the base of every GPU kernel class, and checked access to GPU inputs and outputs.

Validation happens in ``prepare`` (once, at net creation) and in the input
helpers (shape and dtype, on the host, before any launch); ``compute`` then
only launches kernels. Outputs reuse the blob's GPU buffer when shape and
dtype are unchanged, as the CPU pack's ``output_like`` does.
"""
from __future__ import annotations

import numpy as np

from c2core.errors import OperatorError
from c2core.operator import Operator
from c2ops_cuda import runtime
from c2ops_cuda.runtime import GPUArray, kernel  # noqa: F401  (re-exported for the families)

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


class CudaOp(Operator):
    """Subclasses implement ``compute()`` and optionally ``prepare()``."""

    def setup(self):
        self.ordinal = self.device_option.cuda_gpu_id
        with runtime.on_device(self.ordinal):
            self.prepare()

    def prepare(self):
        """Validate arguments and cache derived state (called once, at net creation)."""

    def run(self):
        with runtime.on_device(self.ordinal):
            self.compute()

    def compute(self):
        raise NotImplementedError(f"{type(self).__name__} defines no compute()")

    # -- inputs ------------------------------------------------------------------------
    def gpu(self, i) -> GPUArray:
        """Input i as a GPU tensor, or an error naming the blob."""
        v = self.input(i)
        if not isinstance(v, GPUArray):
            raise OperatorError(f"input {i} '{self.inputs[i].name}' holds a {type(v).__name__}, "
                                "not a GPU tensor (feed it with a CUDA DeviceOption or copy it with CopyCPUToGPU)")
        return v

    def gpu_float(self, i, like: GPUArray | None = None) -> GPUArray:
        """Input i as a float32/float64 GPU tensor (of `like`'s dtype when given)."""
        v = self.gpu(i)
        want = FLOATS if like is None else (like.dtype,)
        if v.dtype not in want:
            raise OperatorError(f"input {i} '{self.inputs[i].name}' has dtype {v.dtype}; expected "
                                + " or ".join(str(d) for d in want))
        return v

    def gpu_index(self, i) -> GPUArray:
        v = self.gpu(i)
        if v.dtype not in INDEX_TYPES:
            raise OperatorError(f"input {i} '{self.inputs[i].name}' has dtype {v.dtype}; expected int32 or int64")
        return v

    def same_shape(self, i, v: GPUArray, ref: GPUArray, ref_what="input 0"):
        if v.shape != ref.shape:
            raise OperatorError(f"input {i} '{self.inputs[i].name}' has shape {list(v.shape)}, but {ref_what} has "
                                f"{list(ref.shape)}; they must be equal")

    def host_input(self, i) -> np.ndarray:
        """A small input read on the host (a shape, a scalar), from host memory or the GPU."""
        v = self.input(i)
        return runtime.to_host(v) if isinstance(v, GPUArray) else np.asarray(v)

    # -- outputs -----------------------------------------------------------------------
    def out(self, i, shape, dtype) -> GPUArray:
        """Output i of `shape` and `dtype`, reusing the blob's GPU buffer when it fits."""
        shape = tuple(int(d) for d in shape)
        dtype = np.dtype(dtype)
        blob = self.outputs[i]
        v = blob.value
        if isinstance(v, GPUArray) and v.shape == shape and v.dtype == dtype:
            return v
        res = runtime.empty(shape, dtype)
        blob.value = res
        return res

    def out_like(self, i, like: GPUArray) -> GPUArray:
        return self.out(i, like.shape, like.dtype)

    def set_gpu(self, i, value: GPUArray):
        self.outputs[i].value = value

    # -- device-side input checks ------------------------------------------------------
    def error_flag(self, count: int = 1) -> GPUArray:
        """Zeroed int32s the kernels set to (position + 1) of the first bad element they meet."""
        flag = getattr(self, "_flag", None)
        if flag is None or flag.size != count:
            flag = self._flag = runtime.empty((count,), np.int32)
        runtime.drv.memset_d32(flag.gpudata, 0, count)
        return flag

    def check_flag(self, flag: GPUArray, i: int, what: str, values=None):
        """Raise, naming input i, if a kernel flagged position (flag - 1) of it; `what` says what was expected.

        `values` (the flags already read to the host) saves a second read.
        """
        bad = int((runtime.to_host(flag) if values is None else values)[0])
        if bad:
            raise OperatorError(f"input {i} '{self.inputs[i].name}' is out of range at position {bad - 1}: {what}")


def scalar(dtype, v):
    """A NumPy scalar of the kernel's C type for dtype."""
    return np.dtype(dtype).type(v)


def prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def canonical_axis(axis: int, ndim: int, what: str = "axis") -> int:
    a = axis + ndim if axis < 0 else axis
    if not 0 <= a < max(ndim, 1):
        raise OperatorError(f"argument '{what}' is {axis}, out of range for a tensor of rank {ndim}")
    return a
