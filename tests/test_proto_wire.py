"""Wire-format checks: bytes laid out by hand with Caffe2's field numbers
decode into the expected fields, so files written by Caffe2 load here."""

import struct

import pytest

from c2core.proto import caffe2_pb2


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint((field << 3) | wire)


def vint(field, n):
    return key(field, 0) + varint(n)


def ld(field, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return key(field, 2) + varint(len(payload)) + payload


def f32(field, x):
    return key(field, 5) + struct.pack("<f", x)


def test_operator_def_layout():
    dev = vint(1, 1) + vint(2, 3) + vint(3, 42) + ld(4, "node0") + vint(5, 1) + ld(6, "x=y")
    arg_i = ld(1, "axis") + vint(3, 2)
    arg_f = ld(1, "alpha") + f32(2, 0.5)
    arg_s = ld(1, "order") + ld(4, "NHWC")
    arg_l = ld(1, "shape") + vint(6, 4) + vint(6, 5) + ld(7, "a") + ld(7, "b")
    data = (ld(1, "X") + ld(1, "W") + ld(2, "Y") + ld(3, "fc1") + ld(4, "FC")
            + ld(5, arg_i) + ld(5, arg_f) + ld(5, arg_s) + ld(5, arg_l)
            + ld(6, dev) + ld(7, "CUDNN") + ld(8, "dep") + vint(9, 1) + ld(10, "dbg"))
    op = caffe2_pb2.OperatorDef.FromString(data)
    assert list(op.input) == ["X", "W"]
    assert list(op.output) == ["Y"]
    assert op.name == "fc1" and op.type == "FC" and op.engine == "CUDNN"
    assert list(op.control_input) == ["dep"]
    assert op.is_gradient_op and op.debug_info == "dbg"
    args = {a.name: a for a in op.arg}
    assert args["axis"].i == 2
    assert args["alpha"].f == 0.5
    assert args["order"].s == b"NHWC"
    assert list(args["shape"].ints) == [4, 5]
    assert list(args["shape"].strings) == [b"a", b"b"]
    d = op.device_option
    assert d.device_type == caffe2_pb2.CUDA
    assert d.cuda_gpu_id == 3
    assert d.random_seed == 42
    assert d.node_name == "node0"
    assert d.numa_node_id == 1
    assert list(d.extra_info) == ["x=y"]
    # and we write the same bytes back (field order follows field numbers)
    assert caffe2_pb2.OperatorDef.FromString(op.SerializeToString()) == op


def test_device_option_defaults_and_hip():
    d = caffe2_pb2.DeviceOption.FromString(b"")
    assert d.device_type == caffe2_pb2.CPU and d.numa_node_id == -1
    d = caffe2_pb2.DeviceOption.FromString(vint(1, 6) + vint(7, 2))
    assert d.device_type == caffe2_pb2.HIP and d.hip_gpu_id == 2
    assert caffe2_pb2.DeviceOption(cuda_gpu_id=1).SerializeToString() == b"\x10\x01"


def test_argument_nested_nets():
    inner = ld(1, "sub") + ld(2, ld(4, "Relu"))
    data = ld(1, "then_net") + ld(8, inner) + ld(9, inner) + ld(9, inner)
    arg = caffe2_pb2.Argument.FromString(data)
    assert arg.n.name == "sub" and arg.n.op[0].type == "Relu"
    assert len(arg.nets) == 2


def test_tensor_proto_packed_and_unpacked():
    floats = [1.0, -2.5, 3.25]
    packed = ld(3, b"".join(struct.pack("<f", x) for x in floats))
    unpacked = b"".join(f32(3, x) for x in floats)
    head = vint(1, 3) + vint(2, caffe2_pb2.TensorProto.FLOAT) + ld(7, "w")
    for body in (packed, unpacked):
        t = caffe2_pb2.TensorProto.FromString(head + body)
        assert list(t.dims) == [3]
        assert t.data_type == caffe2_pb2.TensorProto.FLOAT
        assert list(t.float_data) == floats
        assert t.name == "w"
    # int32_data (4), int64_data (10) with negatives, double_data (9), packed dims
    t = caffe2_pb2.TensorProto.FromString(
        ld(1, varint(2) + varint(2)) + vint(2, 10)
        + ld(10, varint(-1) + varint(1 << 40))
        + ld(4, varint(-7)) + ld(9, struct.pack("<d", 0.125))
        + ld(6, b"s0") + ld(5, b"\x00\xff"))
    assert list(t.dims) == [2, 2]
    assert t.data_type == caffe2_pb2.TensorProto.INT64
    assert list(t.int64_data) == [-1, 1 << 40]
    assert list(t.int32_data) == [-7]
    assert list(t.double_data) == [0.125]
    assert list(t.string_data) == [b"s0"]
    assert t.byte_data == b"\x00\xff"
    # our writer packs float_data (Caffe2 declares it packed = true)
    out = caffe2_pb2.TensorProto(float_data=floats).SerializeToString()
    assert out == packed


def test_tensor_proto_default_type_segment_device_detail():
    t = caffe2_pb2.TensorProto.FromString(
        ld(11, vint(1, 10) + vint(2, 20)) + ld(8, vint(1, 1) + vint(2, 0)))
    assert t.data_type == caffe2_pb2.TensorProto.FLOAT  # default FLOAT
    assert (t.segment.begin, t.segment.end) == (10, 20)
    assert t.device_detail.device_type == caffe2_pb2.CUDA


def test_net_def_layout():
    op = ld(1, "X") + ld(2, "Y") + ld(4, "Relu")
    data = (ld(1, "net") + ld(2, op) + ld(2, op) + ld(3, "dag") + vint(4, 4)
            + ld(5, vint(1, 1)) + ld(6, ld(1, "num_workers") + vint(3, 8))
            + ld(7, "X") + ld(8, "Y"))
    net = caffe2_pb2.NetDef.FromString(data)
    assert net.name == "net" and net.type == "dag" and net.num_workers == 4
    assert [o.type for o in net.op] == ["Relu", "Relu"]
    assert net.device_option.device_type == 1
    assert net.arg[0].name == "num_workers" and net.arg[0].i == 8
    assert list(net.external_input) == ["X"] and list(net.external_output) == ["Y"]


def test_plan_and_step_layout():
    step = ld(1, "s") + ld(3, "net") + vint(4, 10) + vint(6, 1) + ld(9, "stop") + vint(11, 5)
    plan = caffe2_pb2.PlanDef.FromString(ld(1, "p") + ld(2, ld(1, "net")) + ld(3, step))
    s = plan.execution_step[0]
    assert plan.network[0].name == "net"
    assert s.name == "s" and list(s.network) == ["net"] and s.num_iter == 10
    assert s.concurrent_substeps and s.should_stop_blob == "stop" and s.run_every_ms == 5


def test_blob_proto_and_db_reader_layout():
    tensor = vint(1, 1) + vint(2, 2) + ld(4, varint(5))
    b = caffe2_pb2.BlobProto.FromString(
        ld(1, "x") + ld(2, "Tensor") + ld(3, tensor) + ld(4, b"raw") + vint(6, 2) + vint(7, 1))
    assert b.name == "x" and b.type == "Tensor"
    assert b.tensor.data_type == caffe2_pb2.TensorProto.INT32
    assert list(b.tensor.int32_data) == [5]
    assert b.content == b"raw" and b.content_num_chunks == 2 and b.content_chunk_id == 1
    r = caffe2_pb2.DBReaderProto.FromString(ld(1, "r") + ld(2, "/db") + ld(3, "lmdb") + ld(4, "k"))
    assert (r.name, r.source, r.db_type, r.key) == ("r", "/db", "lmdb", "k")


def test_qtensor_and_shapes_layout():
    q = caffe2_pb2.QTensorProto.FromString(
        vint(1, 2) + vint(2, 8) + key(3, 1) + struct.pack("<d", 0.5)
        + key(4, 1) + struct.pack("<d", -1.0) + vint(5, 1) + ld(6, varint(3) + varint(4)))
    assert list(q.dims) == [2] and q.precision == 8
    assert q.scale == 0.5 and q.bias == -1.0 and q.is_signed and list(q.data) == [3, 4]
    s = caffe2_pb2.TensorShapes.FromString(
        ld(1, vint(1, 3) + vint(2, 13) + vint(3, 0) + vint(4, 1) + ld(5, "a")))
    sh = s.shapes[0]
    assert list(sh.dims) == [3] and sh.data_type == caffe2_pb2.TensorProto.DOUBLE
    assert list(sh.unknown_dims) == [0] and sh.unknown_shape and sh.name == "a"


@pytest.mark.parametrize("name,value", [
    ("UNDEFINED", 0), ("FLOAT", 1), ("INT32", 2), ("BYTE", 3), ("STRING", 4),
    ("BOOL", 5), ("UINT8", 6), ("INT8", 7), ("UINT16", 8), ("INT16", 9),
    ("INT64", 10), ("FLOAT16", 12), ("DOUBLE", 13),
    ("ZERO_COLLISION_HASH", 14), ("REBATCHING_BUFFER", 15),
])
def test_data_type_values(name, value):
    assert caffe2_pb2.TensorProto.DataType.Value(name) == value
    assert getattr(caffe2_pb2.TensorProto, name) == value


@pytest.mark.parametrize("name,value", [
    ("CPU", 0), ("CUDA", 1), ("MKLDNN", 2), ("OPENGL", 3), ("OPENCL", 4),
    ("IDEEP", 5), ("HIP", 6), ("COMPILE_TIME_MAX_DEVICE_TYPES", 7),
    ("ONLY_FOR_TEST", 20901701),
])
def test_device_type_values(name, value):
    assert caffe2_pb2.DeviceType.Value(name) == value
    assert getattr(caffe2_pb2, name) == value


def test_field_numbers():
    expect = {
        "TensorProto": "dims=1 data_type=2 float_data=3 int32_data=4 byte_data=5 string_data=6"
                       " name=7 device_detail=8 double_data=9 int64_data=10 segment=11",
        "DeviceOption": "device_type=1 cuda_gpu_id=2 random_seed=3 node_name=4"
                        " numa_node_id=5 extra_info=6",
        "OperatorDef": "input=1 output=2 name=3 type=4 arg=5 device_option=6 engine=7"
                       " control_input=8 is_gradient_op=9 debug_info=10",
        "NetDef": "name=1 op=2 type=3 num_workers=4 device_option=5 arg=6 external_input=7"
                  " external_output=8 profile=9",
        "Argument": "name=1 f=2 i=3 s=4 floats=5 ints=6 strings=7 n=8 nets=9 t=10 tensors=11"
                    " qtensors=12",
        "BlobProto": "name=1 type=2 tensor=3 content=4 qtensor=5 content_num_chunks=6"
                     " content_chunk_id=7",
    }
    expect = {m: {k: int(v) for k, v in (kv.split("=") for kv in spec.split())}
              for m, spec in expect.items()}
    for msg, fields in expect.items():
        desc = getattr(caffe2_pb2, msg).DESCRIPTOR
        got = {f.name: f.number for f in desc.fields if f.name in fields}
        assert got == fields, msg
    packed = [f.name for f in caffe2_pb2.TensorProto.DESCRIPTOR.fields if f.is_packed]
    assert set(packed) >= {"float_data", "int32_data", "double_data", "int64_data"}
