"""FC, FCGradient, MatMul and BatchMatMul: cuBLAS products on row-major GPU tensors."""
from __future__ import annotations

import numpy as np

from c2core import device
from c2core.errors import OperatorError
from c2ops_cuda import cublas, runtime
from c2ops_cuda.ops_base import CudaOp, canonical_axis, kernel, prod, scalar


def ones(n, dtype):
    """A cached GPU vector of n ones (bias broadcast and bias gradients as products)."""
    def make():
        v = runtime.empty((int(n),), dtype)
        kernel("unary.cu", "fill", T=dtype)(v.size, v, v.size, scalar(dtype, 1))
        return v
    return runtime.device_object(("ones", int(n), np.dtype(dtype)), make)


def fc_dims(op, x, w, axis, axis_w):
    """(M, K, N) of FC: X as [M, K] split at 'axis', W as [N, K] split at 'axis_w'."""
    a = canonical_axis(axis, x.ndim, "axis")
    aw = canonical_axis(axis_w, w.ndim, "axis_w")
    m, k = prod(x.shape[:a]), prod(x.shape[a:])
    n, kw = prod(w.shape[:aw]), prod(w.shape[aw:])
    if k != kw:
        raise OperatorError(f"input 0 '{op.inputs[0].name}' {list(x.shape)} gives K = {k} at axis {a}, but input 1 "
                            f"'{op.inputs[1].name}' (W) {list(w.shape)} gives K = {kw} at axis_w {aw}")
    return m, k, n, a


class FCOp(CudaOp):
    """Y = X @ W^T + b."""

    def compute(self):
        x = self.gpu_float(0)
        w = self.gpu_float(1, like=x)
        b = self.gpu_float(2, like=x)
        m, k, n, a = fc_dims(self, x, w, self.args["axis"], self.args["axis_w"])
        if b.size != n:
            raise OperatorError(f"input 2 '{self.inputs[2].name}' (b) has {b.size} elements; W has N = {n} rows")
        y = self.out(0, x.shape[:a] + (n,), x.dtype)
        if m == 0:
            return
        dt = x.dtype
        # Y = 1 b^T, then Y += X W^T
        cublas.gemm(False, False, m, n, 1, 1.0, runtime.ptr(ones(m, dt)), 1, runtime.ptr(b), n, 0.0,
                    runtime.ptr(y), n, dt)
        if k:
            cublas.gemm(False, True, m, n, k, 1.0, runtime.ptr(x), k, runtime.ptr(w), k, 1.0, runtime.ptr(y), n, dt)


class FCGradientOp(CudaOp):
    """(X, W, dY) -> (dW, db[, dX])."""

    def compute(self):
        x = self.gpu_float(0)
        w = self.gpu_float(1, like=x)
        dy = self.gpu_float(2, like=x)
        m, k, n, a = fc_dims(self, x, w, self.args["axis"], self.args["axis_w"])
        if dy.size != m * n:
            raise OperatorError(f"input 2 '{self.inputs[2].name}' (dY) has shape {list(dy.shape)}; expected "
                                f"{m} x {n} elements")
        dt = x.dtype
        dw = self.out_like(0, w)
        db = self.out(1, (n,), dt)
        if m == 0:
            for t in (dw, db):
                kernel("unary.cu", "fill", T=dt)(t.size, t, t.size, scalar(dt, 0))
        else:
            cublas.gemm(True, False, n, k, m, 1.0, runtime.ptr(dy), n, runtime.ptr(x), k, 0.0, runtime.ptr(dw), k, dt)
            cublas.gemv(True, m, n, 1.0, runtime.ptr(dy), n, runtime.ptr(ones(m, dt)), 0.0, runtime.ptr(db), dt)
        if len(self.outputs) > 2:
            dx = self.out_like(2, x)
            if m and k:
                cublas.gemm(False, False, m, k, n, 1.0, runtime.ptr(dy), n, runtime.ptr(w), k, 0.0,
                            runtime.ptr(dx), k, dt)


class MatMulOp(CudaOp):
    """Y = op(A) @ op(B) with A, B flattened to 2D at axis_a / axis_b; a third input gives Y its shape."""
    device_inference = staticmethod(device.spec(any_in=(2,)))

    def compute(self):
        a = self.gpu_float(0)
        b = self.gpu_float(1, like=a)
        aa = canonical_axis(self.args["axis_a"], a.ndim, "axis_a")
        ab = canonical_axis(self.args["axis_b"], b.ndim, "axis_b")
        a0, a1 = prod(a.shape[:aa]), prod(a.shape[aa:])
        b0, b1 = prod(b.shape[:ab]), prod(b.shape[ab:])
        ta, tb = bool(self.args["trans_a"]), bool(self.args["trans_b"])
        m, k = (a1, a0) if ta else (a0, a1)
        kb, n = (b1, b0) if tb else (b0, b1)
        if k != kb:
            raise OperatorError(f"inner dimensions differ: A {list(a.shape)} (trans_a={int(ta)}) gives K = {k}, "
                                f"B {list(b.shape)} (trans_b={int(tb)}) gives K = {kb}")
        shape = (m, n)
        if len(self.inputs) > 2:
            shape = tuple(self.input(2).shape)
            if prod(shape) != m * n:
                raise OperatorError(f"input 2 '{self.inputs[2].name}' (shape_like) has shape {list(shape)} "
                                    f"({prod(shape)} elements) but the product has {m} x {n}")
        y = self.out(0, shape, a.dtype)
        gemm_or_zero(ta, tb, m, n, k, a, a1, b, b1, y, a.dtype)


def gemm_or_zero(ta, tb, m, n, k, a, lda, b, ldb, y, dt):
    if m and n and not k:
        kernel("unary.cu", "fill", T=dt)(y.size, y, y.size, scalar(dt, 0))
        return
    cublas.gemm(ta, tb, m, n, k, 1.0, runtime.ptr(a), lda, runtime.ptr(b), ldb, 0.0, runtime.ptr(y), n, dt)


class BatchMatMulOp(CudaOp):
    """Y[i] = op(A[i]) @ op(B[i]) over the leading (batch) dims; broadcast=1 also 1-D and broadcast batches."""

    def compute(self):
        a = self.gpu_float(0)
        b = self.gpu_float(1, like=a)
        ta, tb = bool(self.args["trans_a"]), bool(self.args["trans_b"])
        bcast = bool(self.args["broadcast"])
        a_shape, b_shape = tuple(a.shape), tuple(b.shape)
        drop_m = drop_n = False
        if bcast and len(a_shape) == 1:
            a_shape, ta, drop_m = (1,) + a_shape, False, True
        if bcast and len(b_shape) == 1:
            b_shape, tb, drop_n = b_shape + (1,), False, True
        if len(a_shape) < 2 or len(b_shape) < 2:
            raise OperatorError(f"inputs need rank >= 2 (A {list(a.shape)}, B {list(b.shape)}); 1-D inputs need "
                                "broadcast=1")
        m, k = (a_shape[-1], a_shape[-2]) if ta else a_shape[-2:]
        kb, n = (b_shape[-1], b_shape[-2]) if tb else b_shape[-2:]
        if k != kb:
            raise OperatorError(f"inner dimensions differ: A {list(a.shape)} (trans_a={int(ta)}) gives K = {k}, "
                                f"B {list(b.shape)} (trans_b={int(tb)}) gives K = {kb}")
        ba, bb = a_shape[:-2], b_shape[:-2]
        if not bcast and ba != bb:
            raise OperatorError(f"batch dims of A {list(ba)} and B {list(bb)} differ; pass broadcast=1 to "
                                "broadcast them")
        na, nb = prod(ba), prod(bb)
        if ba == bb or len(ba) == 0 or len(bb) == 0 or na == 1 or nb == 1:
            batch_shape = ba if na >= nb and len(ba) >= len(bb) else bb
        else:
            raise OperatorError(f"batch dims of A {list(ba)} and B {list(bb)}: the GPU kernel broadcasts only "
                                "equal batch dims or a single matrix against a batch")
        batch = prod(batch_shape)
        out = tuple(batch_shape) + ((() if drop_m else (m,)) + (() if drop_n else (n,)))
        y = self.out(0, out, a.dtype)
        if not y.size:
            return
        if not k:
            kernel("unary.cu", "fill", T=a.dtype)(y.size, y, y.size, scalar(a.dtype, 0))
            return
        cublas.gemm_batched(ta, tb, m, n, k, 1.0, runtime.ptr(a), a_shape[-1], m * k if na > 1 else 0,
                            runtime.ptr(b), b_shape[-1], k * n if nb > 1 else 0, 0.0, runtime.ptr(y), n, m * n,
                            batch, a.dtype)


def register(registrar):
    from c2core.proto import caffe2_pb2
    for op_type, cls in (("FC", FCOp), ("FCGradient", FCGradientOp), ("MatMul", MatMulOp),
                         ("BatchMatMul", BatchMatMulOp)):
        registrar.kernel(op_type, cls, device=caffe2_pb2.CUDA)
