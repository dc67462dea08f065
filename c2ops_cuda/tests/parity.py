"""Device parity: an op (and its gradient ops) computes on the GPU what it computes on the CPU.

``check_parity`` runs the op in two private workspaces, one with everything
on the host and one with the inputs fed to the GPU (except those named in
``host``) and the op under a CUDA DeviceOption, compares every output, then
does the same for the gradient operators the op's gradient maker emits, fed
with the CPU forward outputs and random output gradients.
"""
from __future__ import annotations

import numpy as np

from c2core import device
from c2core.gradient import GradientRegistry, GradientSlice
from c2core.proto import caffe2_pb2
from c2core.workspace_impl import Workspace

GPU = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.CUDA, cuda_gpu_id=0)


def _on(op, option):
    moved = caffe2_pb2.OperatorDef()
    moved.CopyFrom(op)
    if option is not None:
        moved.device_option.CopyFrom(option)
    return moved


def run_on(ops, feeds, option=None, host=()):
    """{blob: host value} of every op output after running `ops` with `feeds` on `option`'s device."""
    ws = Workspace("parity")
    dev = device.device_object(option.device_type) if option is not None else None
    for name, value in feeds.items():
        value = np.array(value, copy=True)
        if dev is None or name in host:
            ws.feed(name, value)
        else:
            ws.feed(name, dev.feed(value, option), option)
    for op in ops:
        ws.run_operator_once(_on(op, option))
    names = dict.fromkeys(o for op in ops for o in op.output)
    return {n: device.to_host(ws.get_blob(n).value, ws.get_blob(n).device) for n in names}


def _compare(what, got, want, rtol, atol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: GPU shape {got.shape}, CPU shape {want.shape}"
    assert got.dtype == want.dtype, f"{what}: GPU dtype {got.dtype}, CPU dtype {want.dtype}"
    if want.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def check_parity(op, feeds, grad_of=(0,), host=(), rtol=1e-4, atol=1e-5, skip=(), seed=0):
    """Forward and gradient parity of `op` (an OperatorDef) on `feeds` ({input blob: array}).

    grad_of: output indices given a gradient (empty: no gradient check); host: inputs kept in host
    memory on the GPU side; skip: output blobs not compared (e.g. random ones).
    """
    cpu = run_on([op], feeds)
    gpu = run_on([op], feeds, GPU, host)
    label = f"{op.type} ({', '.join(op.input)} -> {', '.join(op.output)})"
    for name in op.output:
        if name not in skip:
            _compare(f"{label}: output '{name}'", gpu[name], cpu[name], rtol, atol)
    if not grad_of:
        return cpu, gpu
    rng = np.random.default_rng(seed)
    g_output = [f"{o}_grad" if i in grad_of else None for i, o in enumerate(op.output)]
    grad_ops, g_input = GradientRegistry.GetGradientForOp(op, g_output)
    gfeeds = dict(feeds)
    gfeeds.update({o: cpu[o] for o in op.output})
    for i, g in enumerate(g_output):
        if g is not None:
            like = np.asarray(cpu[op.output[i]])
            gfeeds[g] = rng.standard_normal(like.shape).astype(like.dtype)
    gcpu = run_on(grad_ops, gfeeds)
    ggpu = run_on(grad_ops, gfeeds, GPU, host)
    for g in g_input:
        names = [] if g is None else ([g.values] if isinstance(g, GradientSlice) else [g])
        for name in names:
            if name in gcpu:
                _compare(f"{label}: gradient '{name}'", ggpu[name], gcpu[name], rtol, atol)
    return cpu, gpu
