"""Any bytes given to a loader give a valid result or a clean C2Error: never
another exception, a hang, or a huge allocation."""

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2core import db
from c2core import serialize as S
from c2core.errors import C2Error
from c2core.proto import caffe2_pb2

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _net_seed():
    net = caffe2_pb2.NetDef(name="n", external_input=["X"])
    op = net.op.add(type="Conv", input=["X", "W"], output=["Y"])
    op.arg.add(name="kernel", i=3)
    op.arg.add(name="sub").n.op.add(type="Relu")
    op.device_option.cuda_gpu_id = 1
    return net.SerializeToString()


SEEDS = [
    _net_seed(),
    S.tensor_to_proto(np.arange(6, dtype=np.float32).reshape(2, 3), "t").SerializeToString(),
    S.tensor_to_proto(np.array([b"a", b"bc"], dtype=object)).SerializeToString(),
    S.tensor_to_proto(np.arange(4, dtype=np.float16)).SerializeToString(),
    S.serialize_blob("b", np.arange(5, dtype=np.int8))[0][1],
    S.serialize_blob("s", b"text")[0][1],
    b'name: "n" op { type: "Relu" input: "X" output: "Y" }',
]


@st.composite
def mutated(draw):
    """A valid encoding with a few bytes changed, cut or inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


inputs = st.one_of(st.binary(max_size=512), mutated())


def _clean(fn, *args):
    try:
        fn(*args)
    except C2Error:
        pass


@FUZZ
@given(inputs)
def test_netdef_loader(data):
    _clean(S.parse_proto, data, caffe2_pb2.NetDef, "fuzz")


@FUZZ
@given(inputs)
def test_tensor_proto_loader(data):
    _clean(S.tensor_from_bytes, data)


@FUZZ
@given(inputs)
def test_blob_proto_loader(data):
    _clean(S.deserialize_blob, data)


@FUZZ
@given(st.lists(inputs, max_size=4))
def test_blob_assembly(chunks):
    protos = []
    for c in chunks:
        try:
            protos.append(S.parse_blob_proto(c))
        except C2Error:
            pass
    if protos:
        _clean(S.assemble_blob, "x", protos)


def _minidb_seed():
    return b"".join(struct.pack("<ii", len(k), len(v)) + k + v
                    for k, v in [(b"a#%0", SEEDS[4]), (b"s", SEEDS[5])])


@st.composite
def minidb_bytes(draw):
    data = bytearray(_minidb_seed())
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[pos] = draw(st.integers(0, 255))
        else:
            del data[pos:]
            break
    return bytes(data)


@FUZZ
@given(st.one_of(st.binary(max_size=256), minidb_bytes()))
def test_minidb_reader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "f.minidb"
    path.write_bytes(data)
    try:
        for _key, value in db.read_db("minidb", path):
            _clean(S.deserialize_blob, value)
    except C2Error:
        pass
