"""The core's own operators (Sum, Free): reference, gradient, shape/cost inference, docs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from c2core import core, registry, workspace
from c2core.schema import TensorInfo
from c2core.shape_inference import infer_op

SUM_DTYPES = [np.float32, np.float64, np.int32, np.int64]


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(SUM_DTYPES),
       shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
       n=st.integers(1, 5), inplace=st.booleans(), data=st.data())
def test_sum_matches_numpy(dtype, shape, n, inplace, data):
    workspace.ResetWorkspace()
    elems = st.integers(-100, 100)
    arrays = [data.draw(hnp.arrays(dtype, shape, elements=elems)) for _ in range(n)]
    names = [f"x{i}" for i in range(n)]
    for name, a in zip(names, arrays):
        workspace.FeedBlob(name, a)
    out = "x0" if inplace else "y"
    workspace.RunOperatorOnce(core.CreateOperator("Sum", names, [out]))
    got = workspace.FetchBlob(out)
    assert got.dtype == dtype and got.shape == tuple(shape)
    np.testing.assert_array_equal(got, np.sum(arrays, axis=0).astype(dtype))


def test_sum_large_tensor_releases_gil_path():
    a = np.random.rand(100_000).astype(np.float32)
    workspace.FeedBlob("a", a)
    workspace.FeedBlob("b", a)
    workspace.RunOperatorOnce(core.CreateOperator("Sum", ["a", "b", "a"], ["c"]))
    np.testing.assert_allclose(workspace.FetchBlob("c"), 3 * a, rtol=1e-6)


def test_sum_noncontiguous_input_is_handled():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    workspace.FeedBlob("a", a)
    workspace.current().get_blob("a").value = a.T       # bypass FeedBlob's copy on purpose
    workspace.FeedBlob("b", np.ones((4, 3), np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("Sum", ["a", "b"], ["c"]))
    np.testing.assert_array_equal(workspace.FetchBlob("c"), a.T + 1)


def test_sum_rejects_unsupported_dtype():
    workspace.FeedBlob("h", np.ones(2, np.float16))
    with pytest.raises(Exception, match="dtype float16; Sum supports float32, float64, int32 and int64"):
        workspace.RunOperatorOnce(core.CreateOperator("Sum", ["h", "h"], ["o"]))


def test_sum_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((3, 4))
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("w", w)
    net = core.Net("grad")
    net.Sum(["x", "w", "x"], "y")
    gy = rng.standard_normal((3, 4))
    workspace.FeedBlob("y_grad", gy)
    grads = net.AddGradientOperators({"y": "y_grad"})
    workspace.RunNetOnce(net)
    # loss = <gy, y>; dloss/dx by central differences
    eps = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        for sign in (1, -1):
            xp = x.copy()
            xp[idx] += sign * eps
            num[idx] += sign * np.sum(gy * (xp + w + xp)) / (2 * eps)
    np.testing.assert_allclose(workspace.FetchBlob(str(grads["x"])), num, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(workspace.FetchBlob(str(grads["w"])), gy)


def test_sum_shape_and_cost_inference_match_the_run():
    workspace.FeedBlob("a", np.ones((2, 5), np.float64))
    workspace.FeedBlob("b", np.ones((2, 5), np.float64))
    op = core.CreateOperator("Sum", ["a", "b"], ["c"])
    workspace.RunOperatorOnce(op)
    infos = [TensorInfo((2, 5), np.float64)] * 2
    (out,) = infer_op(op, infos)
    real = workspace.FetchBlob("c")
    assert out.shape == real.shape and out.dtype == real.dtype
    shapes, types = workspace.InferShapesAndTypes([core.Net(_net_of(op))])
    assert shapes["c"] == [2, 5]
    cost = registry.get().schema("Sum").cost_fn(op, {}, infos)
    assert cost.flops == 10 and cost.bytes_read == 2 * 10 * 8 and cost.bytes_written == 80


def test_infer_shapes_from_given_dimensions_and_types():
    from c2core.proto import caffe2_pb2
    net = core.Net("inf")
    net.Sum(["p", "q"], "r")
    shapes, types = workspace.InferShapesAndTypes(
        [net], blob_dimensions={"p": [3, 1], "q": [3, 1]},
        blob_types={"p": caffe2_pb2.TensorProto.INT64, "q": caffe2_pb2.TensorProto.INT64})
    assert shapes["r"] == [3, 1] and types["r"] == caffe2_pb2.TensorProto.INT64


def _net_of(op):
    from c2core.proto import caffe2_pb2
    net = caffe2_pb2.NetDef(name="one_op")
    net.op.append(op)
    return net


def test_free_shape_inference_absent_and_runs():
    workspace.FeedBlob("a", np.ones(3))
    workspace.RunOperatorOnce(core.CreateOperator("Free", ["a"], ["a"]))
    assert workspace.current().get_blob("a").value is None


def test_every_registered_op_is_documented_and_its_examples_run():
    reg = registry.get().ensure_loaded()
    for name in reg.op_types():
        s = reg.schemas[name]
        assert s.doc_text, f"{name} has no description"
        for i, (iname, doc) in s.input_docs.items():
            assert iname and doc, f"{name} input {i} undocumented"
        for i, (oname, doc) in s.output_docs.items():
            assert oname and doc, f"{name} output {i} undocumented"
        for a in s.args.values():
            assert a.doc, f"{name} argument {a.name} undocumented"
        for example in s.examples:
            workspace.ResetWorkspace()
            assert example() is not None
