"""Conv and ConvTranspose (2D, NCHW, groups, dilation) and their gradients: im2col + cuBLAS GEMM.

Both ops share one filter layout (M, C/group, KH, KW) between a "grid" side
of M channels and an "image" side of C channels (c2ops-cpu's ``Plan``), so
three primitives cover all six computations: grid from image (Conv forward,
ConvTranspose's dX), image from grid (ConvTranspose forward, Conv's dX) and
the filter gradient. Images go through im2col in chunks whose column buffer
stays under ``COL_BYTES``; each group is one strided-batched GEMM per chunk.
"""
from __future__ import annotations

import numpy as np

from c2core.errors import OperatorError
from c2ops_cpu._conv_shapes import ConvArgs, conv_plan, conv_transpose_plan
from c2ops_cuda import cublas, runtime
from c2ops_cuda.linalg import ones
from c2ops_cuda.ops_base import CudaOp, kernel, scalar
from c2ops_cuda.runtime import at

COL_BYTES = 256 << 20


def _check_2d(op, plan):
    if plan.nd != 2 or plan.nhwc:
        raise OperatorError(f"{op.type} on the GPU supports 2D NCHW only (this is {plan.nd}D "
                            f"{'NHWC' if plan.nhwc else 'NCHW'})")


class _Geometry:
    """Sizes of one plan, in the order the conv.cu kernels take them."""

    def __init__(self, plan):
        self.plan = plan
        self.H, self.W = plan.image
        self.GH, self.GW = plan.grid
        self.KH, self.KW = plan.kernel
        self.G = self.GH * self.GW
        self.kk = self.KH * self.KW
        self.Cg, self.Mg = plan.c // plan.group, plan.m // plan.group
        self.K = self.Cg * self.kk
        self.args = (plan.c, self.H, self.W, self.KH, self.KW, plan.stride[0], plan.stride[1], plan.pads[0],
                     plan.pads[1], plan.dilation[0], plan.dilation[1], self.GH, self.GW)
        # a 1x1 kernel with stride 1 and no padding: the image already is its column matrix
        self.identity = self.kk == 1 and tuple(plan.stride) == (1, 1) and not any(plan.pads)
        self.depthwise = plan.group > 1 and plan.group == plan.c == plan.m

    def chunks(self, dtype):
        per = max(1, self.plan.c * self.kk * self.G * np.dtype(dtype).itemsize)
        nb = max(1, min(self.plan.n, COL_BYTES // per))
        for b0 in range(0, self.plan.n, nb):
            yield b0, min(nb, self.plan.n - b0)


class _ConvBase(CudaOp):
    def prepare(self):
        self.transpose = self.type.startswith("ConvTranspose")
        self.conv_args = ConvArgs(self.type, self.args, transpose=self.transpose)
        self._col = None

    def output_side(self, geo):
        """(shape, channels, spatial size) of the forward output: the grid for Conv, the image for
        ConvTranspose (dY has that shape; the bias and its gradient run over those channels)."""
        p = geo.plan
        if self.transpose:
            return p.image_shape, p.c, geo.H * geo.W
        return p.grid_shape, p.m, geo.G

    def plan(self, x, w, b=None):
        make = conv_transpose_plan if self.transpose else conv_plan
        plan = make(self.conv_args, x.shape, w.shape, None if b is None else b.shape,
                    names=tuple(self.inputs[i].name if i < len(self.inputs) else "bias" for i in range(3)))
        _check_2d(self, plan)
        return _Geometry(plan)

    def col(self, geo, nb, dtype):
        size = max(1, nb * geo.plan.c * geo.kk * geo.G)
        if self._col is None or self._col.size < size or self._col.dtype != dtype:
            self._col = runtime.empty((size,), dtype)
        return self._col

    # -- the three primitives ------------------------------------------------------
    def columns(self, geo, image, b0, nb):
        """The column matrices of images b0..b0+nb (the images themselves for an identity im2col)."""
        p, dt = geo.plan, image.dtype
        if geo.identity:
            return at(image, b0 * p.c * geo.H * geo.W)
        col = self.col(geo, nb, dt)
        kernel("conv.cu", "im2col", T=dt)(nb * p.c * geo.G, at(image, b0 * p.c * geo.H * geo.W), col, nb, *geo.args)
        return at(col, 0)

    def grid_from_image(self, geo, image, w, grid, bias=None):
        p, dt = geo.plan, image.dtype
        if geo.depthwise:
            kernel("conv.cu", "depthwise_fwd", T=dt)(grid.size, image, w, bias, grid, grid.size, *geo.args)
            return True
        for b0, nb in geo.chunks(dt):
            col = self.columns(geo, image, b0, nb)
            for g in range(p.group):
                cublas.gemm_batched(False, False, geo.Mg, geo.G, geo.K, 1.0, at(w, g * geo.Mg * geo.K), geo.K, 0,
                                    col + g * geo.K * geo.G * dt.itemsize, geo.G, p.c * geo.kk * geo.G, 0.0,
                                    at(grid, (b0 * p.m + g * geo.Mg) * geo.G), geo.G, p.m * geo.G, nb, dt)
        return False

    def image_from_grid(self, geo, grid, w, image):
        p, dt = geo.plan, grid.dtype
        for b0, nb in geo.chunks(dt):
            # an identity im2col: the GEMM writes the image directly
            col = image if geo.identity else self.col(geo, nb, dt)
            base = b0 * p.c * geo.H * geo.W if geo.identity else 0
            for g in range(p.group):
                cublas.gemm_batched(True, False, geo.K, geo.G, geo.Mg, 1.0, at(w, g * geo.Mg * geo.K), geo.K, 0,
                                    at(grid, (b0 * p.m + g * geo.Mg) * geo.G), geo.G, p.m * geo.G, 0.0,
                                    at(col, base + g * geo.K * geo.G), geo.G, p.c * geo.kk * geo.G, nb, dt)
            if geo.identity:
                continue
            kernel("conv.cu", "col2im", T=dt)(nb * p.c * geo.H * geo.W, col, at(image, b0 * p.c * geo.H * geo.W),
                                              nb, *geo.args)

    def filter_grad(self, geo, grid, image, dw):
        """dW_g = sum over images of dgrid[n, g] @ col[n, g]^T: one batched GEMM per chunk and group into
        per-image products, summed over the images by a GEMV with a ones vector."""
        p, dt = geo.plan, grid.dtype
        if p.n == 0:
            kernel("unary.cu", "fill", T=dt)(dw.size, dw, dw.size, scalar(dt, 0))
            return
        per = geo.Mg * geo.K
        for b0, nb in geo.chunks(dt):
            col = self.columns(geo, image, b0, nb)
            tmp = self.scratch("_dw_parts", nb * per, dt)
            for g in range(p.group):
                cublas.gemm_batched(False, True, geo.Mg, geo.K, geo.G, 1.0,
                                    at(grid, (b0 * p.m + g * geo.Mg) * geo.G), geo.G, p.m * geo.G,
                                    col + g * geo.K * geo.G * dt.itemsize, geo.G, p.c * geo.kk * geo.G, 0.0,
                                    at(tmp, 0), geo.K, per, nb, dt)
                cublas.gemv(True, nb, per, 1.0, at(tmp, 0), per, at(ones(nb, dt), 0), 0.0 if b0 == 0 else 1.0,
                            at(dw, g * per), dt)

    def scratch(self, name, size, dtype):
        v = getattr(self, name, None)
        if v is None or v.size < size or v.dtype != dtype:
            v = runtime.empty((max(size, 1),), dtype)
            setattr(self, name, v)
        return v

    @staticmethod
    def add_bias(y, b, channels, spatial):
        kernel("conv.cu", "add_channel_bias", T=y.dtype)(y.size, y, b, y.size, channels, spatial)

    @staticmethod
    def bias_grad(dy, db, n, channels, spatial):
        kernel("conv.cu", "channel_sum", T=dy.dtype).launch((channels, 1), (runtime.row_threads(n * spatial), 1, 1),
                                                            dy, db, n, channels, spatial)

    def grad_outputs(self):
        """(dW, db or None, dX or None) output indices, as Caffe2's ConvGradient lays them out."""
        no_bias = bool(self.args.get("no_bias", 0))
        k = 1 if no_bias else 2
        return 0, (None if no_bias else 1), (k if len(self.outputs) > k else None)


class ConvOp(_ConvBase):
    """Conv, or ConvTranspose (the same primitives the other way round), picked by type at setup."""

    def compute(self):
        x = self.gpu_float(0)
        w = self.gpu_float(1, like=x)
        b = self.gpu_float(2, like=x) if len(self.inputs) > 2 else None
        geo = self.plan(x, w, b)
        shape, channels, spatial = self.output_side(geo)
        y = self.out(0, shape, x.dtype)
        if not y.size:
            return
        if self.transpose:
            self.image_from_grid(geo, x, w, y)
            fused_bias = False
        else:
            fused_bias = self.grid_from_image(geo, x, w, y, b)
        if b is not None and not fused_bias:
            self.add_bias(y, b, channels, spatial)


class ConvGradientOp(_ConvBase):
    """(X, filter, dY) -> (dfilter, [dbias], [dX]) of Conv or ConvTranspose, picked by type at setup."""

    def compute(self):
        x = self.gpu_float(0)
        w = self.gpu_float(1, like=x)
        dy = self.gpu_float(2, like=x)
        geo = self.plan(x, w)
        shape, channels, spatial = self.output_side(geo)
        if tuple(dy.shape) != tuple(shape):
            raise OperatorError(f"input 2 '{self.inputs[2].name}' (dY) has shape {list(dy.shape)}; the forward "
                                f"output had {list(shape)}")
        iw, ib, ix = self.grad_outputs()
        grid, image = (x, dy) if self.transpose else (dy, x)
        self.filter_grad(geo, grid, image, self.out_like(iw, w))
        if ib is not None:
            self.bias_grad(dy, self.out(ib, (channels,), x.dtype), geo.plan.n, channels, spatial)
        if ix is not None:
            dx = self.out_like(ix, x)
            if dx.size:   # the forward's primitive the other way round
                if self.transpose:
                    self.grid_from_image(geo, dy, w, dx)
                else:
                    self.image_from_grid(geo, dy, w, dx)


def register(registrar):
    from c2core.proto import caffe2_pb2
    for op_type, cls in (("Conv", ConvOp), ("ConvGradient", ConvGradientOp), ("ConvTranspose", ConvOp),
                         ("ConvTransposeGradient", ConvGradientOp)):
        registrar.kernel(op_type, cls, device=caffe2_pb2.CUDA)
