"""Per-operator overhead of the executor: a net of chained tiny ops.

On 1-element tensors x_{i+1} = Add(x_i, c) is nearly all dispatch cost. The
wide rows (64K elements) let the kernel show; ``wide_reuse`` writes c2's
outputs into two blobs in turn, as the peers reuse buffers, to separate
kernel speed from the cache cost of 1,000 distinct outputs. ONNX Runtime runs
with graph optimizations off so it cannot fold the chain away.
"""
from __future__ import annotations

import contextlib

import numpy as np

from benchmarks.harness import Benchmark, Settings, c2_workspace, compare

TINY, WIDE = 1, 65536


def _chain_len(settings: Settings) -> int:
    return 200 if settings.quick else 1000


def _width(width: int, settings: Settings) -> int:
    return min(width, 4096) if settings.quick else width


def _c2_op() -> str:
    """The CPU pack's Add once installed; the core's Sum until then."""
    from c2core import core
    return "Add" if core.IsOperator("Add") else "Sum"


def _inputs(width: int):
    x0 = np.zeros(width, dtype=np.float32)
    c = np.full(width, 0.5, dtype=np.float32)
    return x0, c


def _expect(out, width: int, n_ops: int, who: str) -> None:
    """A benchmark of a wrong result measures nothing: check the chain once."""
    got = np.asarray(out, dtype=np.float32).reshape(-1)
    if got.shape != (width,) or not np.allclose(got, 0.5 * n_ops):
        raise AssertionError(f"{who}: chain result {got[:4]} != {0.5 * n_ops}")


def _output_name(i: int, reuse: bool) -> str:
    """Op i's output: a fresh blob per op, or two blobs in turn (what Caffe2's memonger
    makes of a chain), which keeps the working set in cache like the peers' buffer reuse."""
    return ("a", "b")[i % 2] if reuse else f"x{i + 1}"


def c2_setup(n_ops: int, width: int, net_type: str, threads: int, reuse: bool = False):
    @contextlib.contextmanager
    def setup():
        from c2core import core, workspace
        op = _c2_op()
        with c2_workspace("bench_executor"):
            x0, c = _inputs(width)
            workspace.FeedBlob("x0", x0)
            workspace.FeedBlob("c", c)
            net = core.Net("chain")
            src = "x0"
            for i in range(n_ops):
                src = getattr(net, op)([src, "c"], _output_name(i, reuse))
            if net_type:
                net.Proto().type = net_type
                net.Proto().num_workers = threads
            workspace.CreateNet(net)
            name = net.Name()          # Net() makes names unique per process: "chain", "chain_1", ...
            workspace.RunNet(name, 1)
            _expect(workspace.FetchBlob(str(src)), width, n_ops, f"c2 {net_type or 'simple'}")
            yield lambda n: workspace.RunNet(name, n)
    return setup


def ort_setup(n_ops: int, width: int, threads: int):
    @contextlib.contextmanager
    def setup():
        import onnxruntime as ort
        from onnx import TensorProto, helper

        nodes = [helper.make_node("Add", [f"x{i}", "c"], [f"x{i + 1}"]) for i in range(n_ops)]
        graph = helper.make_graph(
            nodes, "chain",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [width]) for n in ("x0", "c")],
            [helper.make_tensor_value_info(f"x{n_ops}", TensorProto.FLOAT, [width])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        x0, c = _inputs(width)
        feeds, fetch = {"x0": x0, "c": c}, [f"x{n_ops}"]
        _expect(sess.run(fetch, feeds)[0], width, n_ops, "onnxruntime")

        def run(n):
            for _ in range(n):
                sess.run(fetch, feeds)
        yield run
    return setup


def torch_setup(n_ops: int, width: int, threads: int):
    @contextlib.contextmanager
    def setup():
        import torch
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            x0, c = (torch.from_numpy(a) for a in _inputs(width))
            a, b = torch.empty_like(x0), torch.empty_like(x0)   # ping-pong: no allocation per op

            def run(n):
                with torch.inference_mode():
                    for _ in range(n):
                        torch.add(x0, c, out=a)
                        src, dst = a, b
                        for _ in range(n_ops - 1):
                            torch.add(src, c, out=dst)
                            src, dst = dst, src
            run(1)
            _expect((a if n_ops % 2 else b).numpy(), width, n_ops, "torch")
            yield run
        finally:
            torch.set_num_threads(previous)
    return setup


def _peers(n_ops: int, width: int, threads: int) -> dict:
    return {
        "ONNX Runtime (opt off)": ort_setup(n_ops, width, threads),
        "PyTorch eager (add out=)": torch_setup(n_ops, width, threads),
    }


def _benchmark(name: str, net_type: str, width: int, reuse: bool = False) -> Benchmark:
    def fn(settings: Settings):
        n_ops, w = _chain_len(settings), _width(width, settings)
        try:
            op = _c2_op()
        except Exception:   # c2 itself broken: compare() reports it in the row
            op = "?"
        detail = f"{n_ops} chained {op}, {w} float32, {net_type or 'simple'} executor"
        if reuse:
            detail += ", c2 outputs alternate between 2 blobs"
        return compare(name, detail, c2_setup(n_ops, w, net_type, settings.threads, reuse),
                       _peers(n_ops, w, settings.threads), n_ops, settings)
    return Benchmark(name, fn)


BENCHMARKS = [
    _benchmark("executor.simple", "", TINY),
    _benchmark("executor.dag", "dag", TINY),
    _benchmark("executor.wide", "", WIDE),
    _benchmark("executor.wide_reuse", "", WIDE, reuse=True),
]
