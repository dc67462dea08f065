"""CreateNet checks every op against its schema and names what is wrong."""
import numpy as np
import pytest

import pyops
from c2core import core, registry, workspace
from c2core.errors import BlobError, OperatorError, SchemaError, UnknownOperatorError


@pytest.fixture
def reg():
    with registry.isolated(builtin=True) as r:
        r.register(pyops)
        yield r


def _net(*ops, name="n"):
    net = core.Net(name)
    for op in ops:
        net.Proto().op.append(op)
    return net


def test_unknown_operator_suggests_close_names_and_pack(reg):
    workspace.FeedBlob("x", np.ones(1, np.float32))
    net = _net(core.CreateOperator("Summ", ["x"], ["y"], name="adder"))
    with pytest.raises(UnknownOperatorError) as e:
        workspace.CreateNet(net)
    msg = str(e.value)
    assert "Summ op 'adder' (#0 in net" in msg and "Did you mean Sum" in msg
    net = _net(core.CreateOperator("Conv", ["x"], ["y"]))
    with pytest.raises(UnknownOperatorError, match="pip install c2ops-cpu"):
        workspace.CreateNet(net)


def test_unknown_op_through_net_attribute_is_attribute_error(reg):
    net = core.Net("attr")
    with pytest.raises(AttributeError, match="Did you mean TScale"):
        net.TScal(["x"], ["y"])
    assert not hasattr(net, "NoSuchOperator")


def test_missing_input_blob_names_blob_op_and_position(reg):
    workspace.FeedBlob("a", np.ones((2, 2), np.float32))
    net = _net(core.CreateOperator("TScale", ["a"], ["b"]),
               core.CreateOperator("TMatMul", ["b", "w8s"], ["c"], name="mm"))
    workspace.FeedBlob("w8", np.ones((2, 2), np.float32))
    with pytest.raises(BlobError) as e:
        workspace.CreateNet(net)
    msg = str(e.value)
    assert "TMatMul op 'mm' (#1 in net" in msg and "input 1 (B) is blob 'w8s'" in msg
    assert "similar blobs: w8" in msg
    assert not workspace.HasBlob("b"), "a failed CreateNet must not leave blobs behind"


def test_wrong_argument_type(reg):
    workspace.FeedBlob("a", np.ones((2, 2), np.float32))
    for kwargs, expect in [({"trans": 1.5}, "argument 'trans' expects int, got float 1.5"),
                           ({"name_tag": 3}, "argument 'name_tag' expects string, got int 3"),
                           ({"dims": ["a"]}, "argument 'dims' expects list of int, got strings"),
                           ({"trans": "yes"}, "argument 'trans' expects int, got string")]:
        net = _net(core.CreateOperator("TMatMul", ["a", "a"], ["c"], **kwargs))
        with pytest.raises(SchemaError, match=expect):
            workspace.CreateNet(net, overwrite=True)


def test_integral_float_accepted_for_int_and_int_for_float(reg):
    workspace.FeedBlob("a", np.ones((2, 2), np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("TMatMul", ["a", "a"], ["c"], trans=1.0))
    workspace.RunOperatorOnce(core.CreateOperator("TScale", ["a"], ["d"], scale=2))
    assert workspace.FetchBlob("d")[0, 0] == 2


def test_required_argument(reg):
    with pytest.raises(SchemaError, match="required argument 'value' \\(float\\) is missing"):
        workspace.RunOperatorOnce(core.CreateOperator("TNeedsArg", [], ["y"]))
    workspace.RunOperatorOnce(core.CreateOperator("TNeedsArg", [], ["y"], value=3.0))
    assert workspace.FetchBlob("y")[0] == 3


def test_arity_exact_range_and_set(reg):
    workspace.FeedBlob("a", np.ones(2, np.float32))
    with pytest.raises(SchemaError, match="takes 2 inputs, got 1"):
        workspace.RunOperatorOnce(core.CreateOperator("TMatMul", ["a"], ["c"]))
    with pytest.raises(SchemaError, match="takes 1 outputs, got 2"):
        workspace.RunOperatorOnce(core.CreateOperator("TScale", ["a"], ["c", "d"]))
    with pytest.raises(SchemaError, match="takes 1 or 3 inputs, got 2"):
        workspace.RunOperatorOnce(core.CreateOperator("TChoice", ["a", "a"], ["c"]))
    workspace.RunOperatorOnce(core.CreateOperator("TChoice", ["a", "a", "a"], ["c"]))
    with pytest.raises(SchemaError, match="takes 1 to 64 inputs, got 0"):
        workspace.RunOperatorOnce(core.CreateOperator("Sum", [], ["c"]))


def test_inplace_rules(reg):
    workspace.FeedBlob("a", np.ones((2, 2), np.float32))
    with pytest.raises(SchemaError, match="output 0 'a' is also input 0; TMatMul does not allow input 0"):
        workspace.RunOperatorOnce(core.CreateOperator("TMatMul", ["a", "b"], ["a"]))
    workspace.RunOperatorOnce(core.CreateOperator("TScale", ["a"], ["a"], scale=3.0))
    assert workspace.FetchBlob("a")[0, 0] == 3
    with pytest.raises(SchemaError, match="must be the same blob as input 0"):
        workspace.RunOperatorOnce(core.CreateOperator("TInPlace", ["a"], ["b"]))
    with pytest.raises(SchemaError, match="must be the same blob"):
        workspace.RunOperatorOnce(core.CreateOperator("Free", ["a"], ["b"]))


def test_setup_rejects_bad_argument_value_at_creation(reg):
    workspace.FeedBlob("a", np.ones((2, 2), np.float32))
    net = _net(core.CreateOperator("TMatMul", ["a", "a"], ["c"], trans=2, name="mm"))
    with pytest.raises(OperatorError, match="TMatMul op 'mm' \\(#0 in net .*'trans' must be 0 or 1, got 2"):
        workspace.CreateNet(net)


def test_runtime_shape_mismatch_names_op_and_net(reg):
    workspace.FeedBlob("a", np.ones((2, 3), np.float32))
    workspace.FeedBlob("b", np.ones((2, 3), np.float32))
    net = _net(core.CreateOperator("TScale", ["a"], ["s"]),
               core.CreateOperator("TMatMul", ["s", "b"], ["c"], name="mm"), name="shapes")
    workspace.CreateNet(net)
    with pytest.raises(OperatorError) as e:
        workspace.RunNet(net)
    assert "TMatMul op 'mm' (#1 in net 'shapes')" in str(e.value)
    assert "inner dimensions differ: A is [2, 3], B is [2, 3]" in str(e.value)
    assert workspace.RunNet(net, allow_fail=True) is False


def test_sum_errors_name_blobs_and_shapes():
    workspace.FeedBlob("a", np.ones((2, 3), np.float32))
    workspace.FeedBlob("b", np.ones((3, 2), np.float32))
    workspace.FeedBlob("i", np.ones((2, 3), np.int32))
    with pytest.raises(OperatorError, match="input 1 'b' is float32 \\[3, 2\\] but input 0 'a' is float32 \\[2, 3\\]"):
        workspace.RunOperatorOnce(core.CreateOperator("Sum", ["a", "b"], ["c"]))
    with pytest.raises(OperatorError, match="input 1 'i' is int32"):
        workspace.RunOperatorOnce(core.CreateOperator("Sum", ["a", "i"], ["c"]))
    workspace.CreateBlob("empty")
    with pytest.raises(BlobError, match="input 1 blob 'empty' is empty"):
        workspace.RunOperatorOnce(core.CreateOperator("Sum", ["a", "empty"], ["c"]))


def test_unknown_net_type():
    net = core.Net("typed")
    net.Proto().type = "fancy"
    with pytest.raises(SchemaError, match="unknown net type 'fancy'"):
        workspace.CreateNet(net)


def test_no_kernel_for_device_lists_available(reg):
    from c2core.proto import caffe2_pb2
    workspace.FeedBlob("a", np.ones(2, np.float32))
    op = core.CreateOperator("TScale", ["a"], ["b"], device_option=core.DeviceOption(caffe2_pb2.CUDA))
    with pytest.raises(UnknownOperatorError, match="no kernel for TScale on CUDA; it is implemented for CPU"):
        workspace.RunOperatorOnce(op)
