"""GPU parity of every CUDA operator against the CPU packs, gradients included (skipped without a GPU).

Deterministic ops must match the CPU pack within float32 tolerance; the random
ones (fillers, Dropout) draw from cuRAND, so their tests check the
distribution, the seeding and the consistency of outputs instead.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parity import GPU, check_parity, run_on

from c2core import core, workspace
from c2core.proto import caffe2_pb2

pytestmark = pytest.mark.usefixtures("gpu")
R = np.random.default_rng(0)
F = np.float32


def f(*shape, lo=-2.0, hi=2.0, dtype=F):
    return R.uniform(lo, hi, size=shape).astype(dtype)


def pos(*shape):
    return f(*shape, lo=0.5, hi=3.0)


def op(t, inputs, outputs=("Y",), **args):
    return core.CreateOperator(t, list(inputs), list(outputs), **args)


X = f(3, 4, 5)

UNARY = ["Relu", "Sigmoid", "Tanh", "Softsign", "Softplus", "Swish", "Abs", "Negative", "Sin", "Cos", "Exp",
         "Sqr", "Sign", "Floor", "Ceil"]
UNARY_ARGS = [("Elu", {"alpha": 0.7}), ("LeakyRelu", {"alpha": 0.1}), ("Selu", {}), ("ThresholdedRelu", {"alpha": 0.5}),
              ("Scale", {"scale": -1.5}), ("Clip", {"min": -1.0, "max": 0.5}), ("Clip", {"min": 0.0}),
              ("ReplaceNaN", {"value": 1.0}), ("Pow", {"exponent": 3.0})]


@pytest.mark.parametrize("t", UNARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary(t, dtype):
    no_grad = t in ("Sign", "Floor", "Ceil")
    check_parity(op(t, ["X"]), {"X": X.astype(dtype)}, grad_of=() if no_grad else (0,))


@pytest.mark.parametrize("t,args", UNARY_ARGS)
def test_unary_with_arguments(t, args):
    x = X.copy()
    if t == "ReplaceNaN":
        x[0, 0, :2] = np.nan
    check_parity(op(t, ["X"], **args), {"X": x}, grad_of=() if t == "ReplaceNaN" else (0,))


@pytest.mark.parametrize("t", ["Log", "Sqrt"])
def test_unary_on_positive_inputs(t):
    check_parity(op(t, ["X"]), {"X": pos(4, 6)})


def test_logit_and_prelu():
    check_parity(op("Logit", ["X"], eps=1e-3), {"X": f(4, 5, lo=0.0, hi=1.0)})
    check_parity(op("PRelu", ["X", "W"]), {"X": f(2, 3, 4, 4), "W": f(3)})
    check_parity(op("PRelu", ["X", "W"]), {"X": f(2, 3, 4, 4), "W": f(1)})
    check_parity(op("PRelu", ["X", "W"], order="NHWC"), {"X": f(2, 4, 4, 3), "W": f(3)})


BROADCASTS = [((3, 4, 5), (3, 4, 5), {}), ((3, 4, 5), (5,), {}), ((3, 1, 5), (4, 1), {}),
              ((2, 3, 4, 5), (3, 4), dict(broadcast=1, axis=1)), ((2, 3, 4), (1,), dict(broadcast=1)),
              ((1, 7), (6, 1), {}), ((2, 1, 3, 1, 4, 1), (1, 5, 3, 2, 1, 6), {})]


@pytest.mark.parametrize("t", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("a,b,args", BROADCASTS)
def test_binary_arithmetic_broadcasts_and_gradients(t, a, b, args):
    feeds = {"A": f(*a), "B": pos(*b) if t == "Div" else f(*b)}
    check_parity(op(t, ["A", "B"], **args), feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("t", ["EQ", "NE", "LT", "LE", "GT", "GE", "Add", "Mul"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_ops(t, dtype):
    a = R.integers(-3, 3, size=(4, 5)).astype(dtype)
    b = R.integers(-3, 3, size=(5,)).astype(dtype)
    check_parity(op(t, ["A", "B"]), {"A": a, "B": b}, grad_of=())


@pytest.mark.parametrize("t", ["And", "Or", "Xor"])
def test_logical(t):
    check_parity(op(t, ["A", "B"]), {"A": R.random((4, 5)) > 0.5, "B": R.random((5,)) > 0.5}, grad_of=())
    check_parity(op("Not", ["A"]), {"A": R.random((4, 5)) > 0.5}, grad_of=())


def test_sum_and_weighted_sum():
    check_parity(op("Sum", ["A", "B", "C"]), {"A": f(3, 4), "B": f(3, 4), "C": f(3, 4)})
    check_parity(op("WeightedSum", ["A", "wa", "B", "wb"]),
                 {"A": f(3, 4), "wa": np.array([0.5], F), "B": f(3, 4), "wb": np.array([-2.0], F)})
    check_parity(op("Pow", ["A", "E"]), {"A": pos(3, 4), "E": f(3, 4)}, grad_of=())


# -- linear algebra ------------------------------------------------------------------------

@pytest.mark.parametrize("m,k,n", [(8, 16, 4), (1, 7, 3), (33, 65, 17)])
def test_fc(m, k, n):
    check_parity(op("FC", ["X", "W", "b"]), {"X": f(m, k), "W": f(n, k), "b": f(n)}, rtol=1e-4, atol=1e-4)
    check_parity(op("FC", ["X", "W", "b"], axis=2), {"X": f(2, m, k), "W": f(n, k), "b": f(n)}, atol=1e-4)


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_matmul(ta, tb):
    a = f(5, 3) if ta else f(3, 5)
    b = f(4, 5) if tb else f(5, 4)
    check_parity(op("MatMul", ["A", "B"], trans_a=ta, trans_b=tb), {"A": a, "B": b}, atol=1e-4)


def test_batch_matmul():
    check_parity(op("BatchMatMul", ["A", "B"]), {"A": f(2, 3, 4, 5), "B": f(2, 3, 5, 6)}, atol=1e-4)
    check_parity(op("BatchMatMul", ["A", "B"], trans_a=1, trans_b=1), {"A": f(3, 5, 4), "B": f(3, 6, 5)}, atol=1e-4)
    check_parity(op("BatchMatMul", ["A", "B"], broadcast=1), {"A": f(3, 4, 5), "B": f(5, 6)}, grad_of=(), atol=1e-4)


# -- convolution and pooling -------------------------------------------------------------------

CONVS = [dict(kernel=3), dict(kernel=3, pad=1, stride=2), dict(kernel_h=3, kernel_w=2, pad_t=1, pad_l=0, pad_b=2,
                                                                pad_r=1), dict(kernel=3, dilation=2, pad=2),
         dict(kernel=1), dict(kernel=3, group=2, pad=1)]


@pytest.mark.parametrize("args", CONVS)
def test_conv(args):
    g = args.get("group", 1)
    kh, kw = args.get("kernel_h", args.get("kernel")), args.get("kernel_w", args.get("kernel"))
    feeds = {"X": f(2, 4, 9, 8), "W": f(6, 4 // g, kh, kw), "b": f(6)}
    check_parity(op("Conv", ["X", "W", "b"], **args), feeds, rtol=1e-4, atol=1e-4)
    check_parity(op("Conv", ["X", "W"], **args), {"X": feeds["X"], "W": feeds["W"]}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("args", [dict(kernel=3), dict(kernel=4, stride=2, pad=1), dict(kernel=3, stride=2, adj=1),
                                  dict(kernel=2, stride=2, group=2)])
def test_conv_transpose(args):
    g = args.get("group", 1)
    feeds = {"X": f(2, 4, 5, 6), "W": f(4, 6 // g, args["kernel"], args["kernel"]), "b": f(6)}
    check_parity(op("ConvTranspose", ["X", "W", "b"], **args), feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("t", ["MaxPool", "AveragePool", "MaxPool2D", "AveragePool2D"])
@pytest.mark.parametrize("args", [dict(kernel=2, stride=2), dict(kernel=3, stride=2, pad=1), dict(global_pooling=1),
                                  dict(kernel=3, stride=1, pad=1, count_include_pad=1)])
def test_pooling(t, args):
    if t.startswith("MaxPool"):
        args = {k: v for k, v in args.items() if k != "count_include_pad"}
    check_parity(op(t, ["X"], **args), {"X": f(2, 3, 7, 8)})


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_lrn(order):
    check_parity(op("LRN", ["X"], ["Y", "scale"], size=5, alpha=1e-3, beta=0.75, bias=2.0, order=order),
                 {"X": f(2, 7, 4, 4)}, rtol=1e-4, atol=1e-5)


# -- normalization, losses -------------------------------------------------------------------

@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_spatial_bn(order):
    c = 3
    x = f(4, c, 5, 5) if order == "NCHW" else f(4, 5, 5, c)
    feeds = {"X": x, "s": pos(c), "b": f(c), "rm": f(c), "rv": pos(c)}
    check_parity(op("SpatialBN", ["X", "s", "b", "rm", "rv"], ["Y", "rm", "rv", "sm", "siv"], order=order,
                    epsilon=1e-5, momentum=0.9), feeds, rtol=1e-4, atol=1e-4)
    check_parity(op("SpatialBN", ["X", "s", "b", "rm", "rv"], ["Y"], order=order, is_test=1), feeds, grad_of=())


def test_softmax_and_cross_entropy():
    check_parity(op("Softmax", ["X"]), {"X": f(5, 7)})
    check_parity(op("Softmax", ["X"], axis=2), {"X": f(2, 3, 7)})
    p = run_on([op("Softmax", ["X"])], {"X": f(6, 5)})["Y"]
    labels = R.integers(0, 5, size=6).astype(np.int32)
    check_parity(op("LabelCrossEntropy", ["P", "L"]), {"P": p, "L": labels})
    check_parity(op("AveragedLoss", ["X"]), {"X": f(6, 3)})
    check_parity(op("Accuracy", ["P", "L"]), {"P": p, "L": labels}, grad_of=())
    check_parity(op("Accuracy", ["P", "L"], top_k=3), {"P": p, "L": labels.astype(np.int64)}, grad_of=())


@pytest.mark.parametrize("variant", ["labels", "weights", "label_prob", "scale"])
def test_softmax_with_loss(variant):
    x, labels = f(6, 5), R.integers(0, 5, size=6).astype(np.int32)
    feeds, args = {"X": x, "L": labels}, {}
    if variant == "weights":
        feeds["W"] = pos(6)
    if variant == "label_prob":
        t = R.random((6, 5)).astype(F)
        feeds["L"] = t / t.sum(axis=1, keepdims=True)
        args["label_prob"] = 1
    if variant == "scale":
        args["scale"] = 0.5
    check_parity(op("SoftmaxWithLoss", list(feeds), ["P", "loss"], **args), feeds, grad_of=(1,), atol=1e-5)


# -- shapes and reductions -------------------------------------------------------------------

def test_concat_split_reshape_transpose():
    feeds = {"A": f(2, 3, 4), "B": f(2, 5, 4)}
    check_parity(op("Concat", ["A", "B"], ["Y", "info"], axis=1), feeds, host=("info",))
    check_parity(op("Concat", ["A", "A2"], ["Y", "info"], axis=0, add_axis=1), {"A": f(2, 3), "A2": f(2, 3)},
                 host=("info",))
    check_parity(op("Split", ["X"], ["Y1", "Y2", "Y3"], axis=2, split=[1, 2, 3]), {"X": f(2, 3, 6)},
                 grad_of=(0, 1, 2))
    check_parity(op("Split", ["X", "s"], ["Y1", "Y2"], axis=0), {"X": f(5, 3), "s": np.array([2, 3], np.int32)},
                 grad_of=(), host=("s",))
    check_parity(op("Reshape", ["X"], ["Y", "old"], shape=[4, -1]), {"X": f(2, 3, 4)}, host=("old",))
    check_parity(op("Transpose", ["X"], axes=[2, 0, 1]), {"X": f(3, 4, 5)})
    check_parity(op("Transpose", ["X"]), {"X": f(2, 3, 4, 5).astype(np.float64)})
    check_parity(op("Transpose", ["X"], axes=[1, 0, 2]), {"X": R.integers(0, 9, size=(3, 4, 2)).astype(np.int64)},
                 grad_of=())
    check_parity(op("Flatten", ["X"], axis=2), {"X": f(2, 3, 4)})
    check_parity(op("Copy", ["X"]), {"X": f(2, 3)})
    check_parity(op("FlattenToVec", ["X"]), {"X": f(2, 3, 4)})
    check_parity(op("ExpandDims", ["X"], dims=[0, 3]), {"X": f(2, 3)})
    check_parity(op("Squeeze", ["X"], dims=[1]), {"X": f(2, 1, 3)})
    check_parity(op("Alias", ["X"]), {"X": f(2, 3)}, grad_of=())
    check_parity(op("StopGradient", ["X"]), {"X": f(2, 3)}, grad_of=())
    check_parity(op("ResizeLike", ["X", "S"]), {"X": f(2, 6), "S": f(3, 4)}, grad_of=())


def _device_of(name):
    return "GPU" if type(workspace.current().get_blob(name).value).__name__ == "GPUArray" else "CPU"


def test_empty_tensors_through_shape_ops():
    check_parity(op("Reshape", ["X"], ["Y", "old"], shape=[-1, 2]), {"X": f(0, 4)}, host=("old",), grad_of=())
    check_parity(op("Flatten", ["X"]), {"X": f(0, 3, 4)}, grad_of=())
    check_parity(op("Relu", ["X"]), {"X": f(0, 5)})
    check_parity(op("Reshape", ["X"], ["X", "old"], shape=[-1, 2]), {"X": f(0, 4)}, host=("old",), grad_of=())


def test_copies_between_host_and_gpu():
    x = f(3, 4)
    workspace.FeedBlob("H", x)                   # a host blob
    _gpu_run([op("CopyCPUToGPU", ["H"], ["G1"]), op("CopyFromCPUInput", ["H"], ["G2"]),
              op("CopyGPUToCPU", ["G1"], ["H1"]), op("EnsureCPUOutput", ["G2"], ["H2"]),
              op("EnsureCPUOutput", ["H"], ["H3"])])
    for name, where in (("G1", "GPU"), ("G2", "GPU"), ("H1", "CPU"), ("H2", "CPU"), ("H3", "CPU")):
        assert _device_of(name) == where, name
        np.testing.assert_array_equal(workspace.FetchBlob(name), x, err_msg=name)


def test_save_and_load_gpu_blobs(tmp_path):
    x, i = f(3, 4), np.arange(5, dtype=np.int64)
    _gpu_run([op("Save", ["X", "I"], [], db=str(tmp_path / "m.minidb"), db_type="minidb")], {"X": x, "I": i})
    workspace.ResetWorkspace()
    _gpu_run([op("Load", [], ["X", "I"], db=str(tmp_path / "m.minidb"), db_type="minidb")])
    for name, want in (("X", x), ("I", i)):
        assert _device_of(name) == "GPU", name
        np.testing.assert_array_equal(workspace.FetchBlob(name), want)


@pytest.mark.parametrize("t,args", [("ReduceSum", dict(axes=[1])), ("ReduceSum", dict(axes=[0, 2], keepdims=0)),
                                    ("ReduceMean", dict(axes=[2])), ("ReduceMean", {}), ("ReduceFrontSum", {}),
                                    ("ReduceBackSum", dict(num_reduce_dim=2)), ("ReduceFrontMean", {}),
                                    ("ReduceBackMean", {}), ("SumElements", {}), ("SumElements", dict(average=1))])
def test_reductions(t, args):
    check_parity(op(t, ["X"], **args), {"X": f(3, 4, 5)}, atol=1e-4)


# -- fillers, training ----------------------------------------------------------------------

def test_constant_and_given_fills():
    check_parity(op("ConstantFill", [], shape=[3, 4], value=2.5), {}, grad_of=())
    check_parity(op("ConstantFill", [], shape=[3], value=7, dtype=caffe2_pb2.TensorProto.INT64), {}, grad_of=())
    check_parity(op("ConstantFill", ["X"], value=1.0), {"X": f(2, 3)}, grad_of=())
    check_parity(op("GivenTensorFill", [], shape=[2, 2], values=[1.0, 2.0, 3.0, 4.0]), {}, grad_of=())
    check_parity(op("GivenTensorDoubleFill", [], shape=[3], values=[1.5, -2.0, 3.25]), {}, grad_of=())
    check_parity(op("GivenTensorIntFill", [], shape=[3], values=[1, -2, 3]), {}, grad_of=())
    check_parity(op("GivenTensorInt64Fill", [], shape=[2], values=[2 ** 40, -7]), {}, grad_of=())
    check_parity(op("GivenTensorBoolFill", [], shape=[3], values=[1, 0, 1]), {}, grad_of=())


def _gpu_run(ops, feeds=None, seed=None):
    option = caffe2_pb2.DeviceOption()
    option.CopyFrom(GPU)
    if seed is not None:
        option.random_seed = seed
    for name, value in (feeds or {}).items():
        workspace.FeedBlob(name, value, option)
    for o in ops:
        o.device_option.CopyFrom(option)
        workspace.RunOperatorOnce(o)


@pytest.mark.parametrize("t,args,check", [
    ("UniformFill", dict(min=-2.0, max=3.0), lambda y: -2 <= y.min() and y.max() < 3 and abs(y.mean() - 0.5) < 0.05),
    ("GaussianFill", dict(mean=1.0, std=2.0), lambda y: abs(y.mean() - 1) < 0.05 and abs(y.std() - 2) < 0.05),
    ("XavierFill", {}, lambda y: abs(y).max() <= np.sqrt(3 / 250) + 1e-6 and abs(y.std() - 0.0632) < 0.005),
    ("MSRAFill", {}, lambda y: abs(y.mean()) < 0.01 and abs(y.std() - np.sqrt(2 / 200)) < 0.005)])
def test_random_fills_follow_their_distribution_and_seed(t, args, check):
    _gpu_run([op(t, [], shape=[200, 250], **args)], seed=7)
    y = workspace.FetchBlob("Y")
    assert y.shape == (200, 250) and y.dtype == np.float32 and check(y), (t, y.mean(), y.std())
    _gpu_run([op(t, [], ["Y2"], shape=[200, 250], **args)], seed=7)
    assert np.array_equal(workspace.FetchBlob("Y2"), y)


def test_dropout():
    x = pos(1000, 100)
    _gpu_run([op("Dropout", ["X"], ["Y", "mask"], ratio=0.3)], {"X": x}, seed=3)
    y, mask = workspace.FetchBlob("Y"), workspace.FetchBlob("mask")
    assert mask.dtype == np.bool_ and abs(mask.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y, np.where(mask, x / 0.7, 0), rtol=1e-6)
    g = f(1000, 100)
    check_parity(op("DropoutGrad", ["dY", "mask"], ["dX"], ratio=0.3), {"dY": g, "mask": mask}, grad_of=())
    check_parity(op("Dropout", ["X"], ["Y"], is_test=1, ratio=0.3), {"X": x}, grad_of=())


def test_iter_learning_rate_and_optimizers():
    it = np.array([5], np.int64)
    check_parity(op("Iter", ["it"], ["it"]), {"it": it}, grad_of=(), host=("it",))
    check_parity(op("LearningRate", ["it"], ["lr"], base_lr=-0.1, policy="step", stepsize=2, gamma=0.5),
                 {"it": it}, grad_of=(), host=("it",))
    lr = np.array([-0.05], F)
    w, g, m = f(4, 5), f(4, 5), f(4, 5)
    for nesterov in (0, 1):
        check_parity(op("MomentumSGDUpdate", ["g", "m", "lr", "w"], ["g", "m", "w"], momentum=0.9, nesterov=nesterov),
                     {"g": g, "m": m, "lr": lr, "w": w}, grad_of=())
    check_parity(op("MomentumSGD", ["g", "m", "lr"], ["g", "m"], momentum=0.9), {"g": g, "m": m, "lr": lr},
                 grad_of=())
    check_parity(op("Adagrad", ["w", "h", "g", "lr"], ["w", "h"], epsilon=1e-5, decay=0.9, weight_decay=0.01),
                 {"w": w, "h": pos(4, 5), "g": g, "lr": lr}, grad_of=())
    check_parity(op("Adam", ["w", "m1", "m2", "g", "lr", "it"], ["w", "m1", "m2"]),
                 {"w": w, "m1": m, "m2": pos(4, 5), "g": g, "lr": lr, "it": it}, grad_of=(), host=("it",))


# -- sparse ----------------------------------------------------------------------------------

def test_sparse_ops():
    pytest.importorskip("c2ops_sparse")
    data = f(10, 4)
    idx = np.array([1, 3, 3, 0, 9, 2], np.int64)
    lengths = np.array([2, 0, 3, 1], np.int32)
    check_parity(op("Gather", ["D", "I"]), {"D": data, "I": idx.astype(np.int32)}, grad_of=())
    check_parity(op("Gather", ["D", "I"]), {"D": data, "I": np.array([-1, 2], np.int64)}, grad_of=())
    check_parity(op("SparseLengthsSum", ["D", "I", "L"]), {"D": data, "I": idx, "L": lengths})
    check_parity(op("SparseLengthsMean", ["D", "I", "L"]), {"D": data, "I": idx.astype(np.int32), "L": lengths})
    check_parity(op("SparseLengthsWeightedSum", ["D", "W", "I", "L"]),
                 {"D": data, "W": f(6), "I": idx, "L": lengths})
    unique = np.array([4, 0, 7], np.int64)
    check_parity(op("ScatterWeightedSum", ["X0", "w0", "I", "X1", "w1"], ["X0"]),
                 {"X0": f(10, 4), "w0": np.array([0.5], F), "I": unique, "X1": f(3, 4), "w1": np.array([2.0], F)},
                 grad_of=())
    check_parity(op("SparseAdagrad", ["w", "h", "I", "g", "lr"], ["w", "h"], epsilon=1e-5),
                 {"w": f(10, 4), "h": pos(10, 4), "I": unique, "g": f(3, 4), "lr": np.array([-0.1], F)}, grad_of=())


def test_bad_labels_and_indices_are_reported_naming_the_blob():
    _gpu_run([], {"P": pos(3, 4), "L": np.array([0, 4, 1], np.int32)})
    with pytest.raises(RuntimeError, match=r"input 1 'L' is out of range at position 1"):
        _gpu_run([op("LabelCrossEntropy", ["P", "L"])])
    with pytest.raises(RuntimeError, match="not a GPU tensor|is on CPU"):
        workspace.FeedBlob("H", pos(3, 4))
        workspace.RunOperatorOnce(op("Relu", ["H"], device_option=GPU))


# -- shapes beyond one block: grid-stride loops that turn more than once, rows wider than a block,
#    more segments than one block's threads --------------------------------------------------

def _labels(n, d):
    return R.integers(0, d, size=n).astype(np.int32)


def _probs(n, d):
    return run_on([op("Softmax", ["X"])], {"X": f(n, d)})["Y"]


def _segments(n_segments, table_rows):
    lengths = R.integers(0, 6, size=n_segments).astype(np.int32)
    return lengths, R.integers(0, table_rows, size=int(lengths.sum())).astype(np.int64)


LARGE = {
    "Relu": lambda: (op("Relu", ["X"]), {"X": f(70, 300)}),
    "Sigmoid": lambda: (op("Sigmoid", ["X"]), {"X": f(70, 300).astype(np.float64)}),
    "Add broadcast": lambda: (op("Add", ["A", "B"]), {"A": f(70, 3, 100), "B": f(3, 1)}),
    "Mul broadcast": lambda: (op("Mul", ["A", "B"]), {"A": f(70, 3, 100), "B": f(100)}),
    "PRelu": lambda: (op("PRelu", ["X", "W"]), {"X": f(4, 3, 30, 30), "W": f(3)}),
    "Softmax wide rows": lambda: (op("Softmax", ["X"]), {"X": f(3, 1000)}),
    "SoftmaxWithLoss wide rows": lambda: (op("SoftmaxWithLoss", ["X", "L"], ["P", "loss"]),
                                          {"X": f(5, 700), "L": _labels(5, 700)}),
    "SoftmaxWithLoss many rows": lambda: (op("SoftmaxWithLoss", ["X", "L"], ["P", "loss"]),
                                          {"X": f(1000, 10), "L": _labels(1000, 10)}),
    "LabelCrossEntropy": lambda: (op("LabelCrossEntropy", ["P", "L"]), {"P": _probs(1000, 10), "L": _labels(1000, 10)}),
    "AveragedLoss": lambda: (op("AveragedLoss", ["X"]), {"X": f(3000)}),
    "SpatialBN": lambda: (op("SpatialBN", ["X", "s", "b", "rm", "rv"], ["Y", "rm", "rv", "sm", "siv"], epsilon=1e-5),
                          {"X": f(8, 3, 40, 40), "s": pos(3), "b": f(3), "rm": f(3), "rv": pos(3)}),
    "Conv": lambda: (op("Conv", ["X", "W", "b"], kernel=5, pad=2), {"X": f(2, 3, 40, 40), "W": f(4, 3, 5, 5),
                                                                     "b": f(4)}),
    "MaxPool": lambda: (op("MaxPool", ["X"], kernel=3, stride=2), {"X": f(2, 3, 50, 50)}),
    "AveragePool": lambda: (op("AveragePool", ["X"], kernel=2, stride=2), {"X": f(2, 3, 50, 50)}),
    "LRN": lambda: (op("LRN", ["X"], ["Y", "scale"], size=5, alpha=1e-3, beta=0.75, bias=2.0), {"X": f(2, 16, 20, 20)}),
    "ReduceSum": lambda: (op("ReduceSum", ["X"], axes=[1]), {"X": f(40, 300, 20)}),
    "ReduceFrontMean": lambda: (op("ReduceFrontMean", ["X"]), {"X": f(500, 40)}),
    "Transpose": lambda: (op("Transpose", ["X"], axes=[2, 0, 1]), {"X": f(30, 40, 20)}),
    "Concat": lambda: (op("Concat", ["A", "B"], ["Y", "info"], axis=1), {"A": f(40, 300), "B": f(40, 200)}),
}


@pytest.mark.parametrize("case", sorted(LARGE))
def test_shapes_beyond_one_block(case):
    o, feeds = LARGE[case]()
    host = ("info",) if case == "Concat" else ()
    grad_of = (1,) if case.startswith("SoftmaxWithLoss") else (0,)
    check_parity(o, feeds, grad_of=grad_of, host=host, rtol=1e-4, atol=1e-4)


def test_sparse_ops_beyond_one_block():
    pytest.importorskip("c2ops_sparse")
    table = f(500, 70)
    lengths, idx = _segments(600, 500)
    check_parity(op("SparseLengthsSum", ["D", "I", "L"]), {"D": table, "I": idx, "L": lengths}, atol=1e-4)
    check_parity(op("SparseLengthsWeightedSum", ["D", "W", "I", "L"]),
                 {"D": table, "W": f(idx.size), "I": idx, "L": lengths}, atol=1e-4)
    check_parity(op("SparseLengthsMean", ["D", "I", "L"]), {"D": table, "I": idx.astype(np.int32), "L": lengths},
                 atol=1e-4)
    check_parity(op("Gather", ["D", "I"]), {"D": table, "I": idx}, grad_of=())
    unique = R.permutation(500)[:300].astype(np.int64)
    check_parity(op("SparseAdagrad", ["w", "h", "I", "g", "lr"], ["w", "h"], epsilon=1e-5),
                 {"w": table, "h": pos(500, 70), "I": unique, "g": f(300, 70), "lr": np.array([-0.1], F)}, grad_of=())


# -- drawn convolution and pooling geometries ---------------------------------------------------

@st.composite
def _geometry(draw):
    k_h, k_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d = draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, d * (k_h - 1) + 1 - pads[0] - pads[2]), 12))
    w = draw(st.integers(max(1, d * (k_w - 1) + 1 - pads[1] - pads[3]), 12))
    args = dict(kernel_h=k_h, kernel_w=k_w, stride_h=draw(st.integers(1, 3)), stride_w=draw(st.integers(1, 3)),
                pad_t=pads[0], pad_l=pads[1], pad_b=pads[2], pad_r=pads[3])
    return h, w, d, args


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(geometry=_geometry(), group=st.sampled_from([1, 2]), bias=st.booleans(), n=st.integers(1, 3))
def test_conv_geometries(geometry, group, bias, n):
    h, w, d, args = geometry
    d = 1 if group > 1 else d   # Caffe2 does not combine groups with dilation
    feeds = {"X": f(n, 2 * group, h, w), "W": f(3 * group, 2, args["kernel_h"], args["kernel_w"])}
    if bias:
        feeds["b"] = f(3 * group)
    check_parity(op("Conv", list(feeds), dilation_h=d, dilation_w=d, group=group, **args), feeds,
                 rtol=1e-4, atol=1e-4)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(geometry=_geometry(), t=st.sampled_from(["MaxPool", "AveragePool"]), include_pad=st.booleans())
def test_pool_geometries(geometry, t, include_pad):
    h, w, _, args = geometry
    if max(args["pad_t"], args["pad_b"]) >= args["kernel_h"] or max(args["pad_l"], args["pad_r"]) >= args["kernel_w"]:
        return   # a window of padding only: both packs refuse it
    if t == "AveragePool":
        args["count_include_pad"] = int(include_pad)
    check_parity(op(t, ["X"], **args), {"X": f(2, 3, h, w)}, rtol=1e-4, atol=1e-5)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(k=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2), group=st.sampled_from([1, 2]),
       h=st.integers(1, 6), w=st.integers(1, 6))
def test_conv_transpose_geometries(k, stride, pad, group, h, w):
    if (h - 1) * stride + k - 2 * pad <= 0 or (w - 1) * stride + k - 2 * pad <= 0:
        return
    feeds = {"X": f(2, 2 * group, h, w), "W": f(2 * group, 3, k, k), "b": f(3 * group)}
    check_parity(op("ConvTranspose", ["X", "W", "b"], kernel=k, stride=stride, pad=pad, group=group), feeds,
                 rtol=1e-4, atol=1e-4)


# -- threads ---------------------------------------------------------------------------------

def test_gpu_ops_on_dag_worker_threads_leave_no_context_pushed():
    """PyCUDA aborts the process when a thread ends with a context pushed: the DAG executor's
    workers run GPU ops and then end with their net; each op must pop what it pushed."""
    from conftest import EMULATED, finish_worker_threads
    x = f(4, 6)
    net = core.Net("gpu_dag")
    net.Proto().type = "dag"
    net.Proto().num_workers = 3
    with core.DeviceScope(GPU):
        a, b = net.Relu("X", "A"), net.Sigmoid("X", "B")
        net.Tanh("X", "C")
        net.Sum([a, b, "C"], "Y")
    workspace.FeedBlob("X", x, GPU)
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("Y"), np.maximum(x, 0) + 1 / (1 + np.exp(-x)) + np.tanh(x),
                               rtol=1e-5, atol=1e-6)
    workspace.ResetWorkspace()
    finish_worker_threads()
    if EMULATED:
        import emulated_pycuda
        assert not emulated_pycuda.CONTEXT_ERRORS


def test_a_second_gpu():
    if workspace.NumCudaDevices() < 2:
        pytest.skip("one GPU here")
    gpu1 = core.DeviceOption(caffe2_pb2.CUDA, 1)
    x = f(3, 4)
    workspace.FeedBlob("X", x, gpu1)
    net = core.Net("on_gpu1")
    with core.DeviceScope(gpu1):
        net.Relu("X", "Y")
        net.FC(["Y", "W", "b"], "Z")
    workspace.FeedBlob("W", f(2, 4), gpu1)
    workspace.FeedBlob("b", f(2), gpu1)
    workspace.RunNetOnce(net)
    assert workspace.current().get_blob("Z").device.cuda_gpu_id == 1
    np.testing.assert_allclose(workspace.FetchBlob("Z"), np.maximum(x, 0) @ workspace.FetchBlob("W").T
                               + workspace.FetchBlob("b"), rtol=1e-5, atol=1e-6)
    bad = core.Net("across_gpus")          # an input on GPU 1 for an op on GPU 0: refused at CreateNet
    with core.DeviceScope(GPU):
        bad.Relu("Z", "Q")
    with pytest.raises(Exception, match=r"'Z'.*CUDA:1.*CUDA:0|'Z'.*CUDA:0.*CUDA:1"):
        workspace.CreateNet(bad)
