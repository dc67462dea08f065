"""TensorProto/BlobProto encoding of every Caffe2 dtype, chunking, NetDef files."""

import os

import numpy as np
import pytest

from c2core import serialize as S
from c2core.errors import C2Error, SerializationError
from c2core.proto import caffe2_pb2

TP = caffe2_pb2.TensorProto

# dtype, Caffe2 data type, field the values travel in (Caffe2's TensorSerializer)
CASES = [
    (np.float32, TP.FLOAT, "float_data"),
    (np.float64, TP.DOUBLE, "double_data"),
    (np.int32, TP.INT32, "int32_data"),
    (np.int64, TP.INT64, "int64_data"),
    (np.bool_, TP.BOOL, "int32_data"),
    (np.uint8, TP.UINT8, "int32_data"),
    (np.int8, TP.INT8, "int32_data"),
    (np.uint16, TP.UINT16, "int32_data"),
    (np.int16, TP.INT16, "int32_data"),
    (np.float16, TP.FLOAT16, "int32_data"),
]


def sample(dtype, shape):
    n = int(np.prod(shape))
    if dtype == np.bool_:
        return (np.arange(n) % 3 == 0).reshape(shape)
    info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else np.iinfo(dtype)
    vals = np.linspace(float(info.min) / 2, float(info.max) / 2, n)
    return vals.astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype,data_type,field", CASES)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (2, 3, 4)])
def test_round_trip_every_dtype(dtype, data_type, field, shape):
    arr = sample(dtype, shape)
    proto = S.tensor_to_proto(arr, "t")
    assert proto.data_type == data_type
    assert list(proto.dims) == list(shape)
    assert proto.name == "t"
    assert len(getattr(proto, field)) == arr.size
    back = S.proto_to_tensor(TP.FromString(proto.SerializeToString()))
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_dtype_mapping_both_ways():
    for dtype, data_type, _ in CASES:
        assert S.dtype_to_data_type(dtype) == data_type
        assert S.data_type_to_dtype(data_type) == np.dtype(dtype)
    assert S.dtype_to_data_type(object) == TP.STRING
    assert S.dtype_to_data_type("S3") == TP.STRING
    assert S.data_type_to_dtype(TP.BYTE) == np.uint8
    with pytest.raises(SerializationError, match="complex128"):
        S.dtype_to_data_type(np.complex128)
    with pytest.raises(SerializationError, match="UNDEFINED"):
        S.data_type_to_dtype(TP.UNDEFINED)


def test_float16_bits_in_int32_data():
    arr = np.array([1.0, -2.0, np.inf, 65504.0], np.float16)
    proto = S.tensor_to_proto(arr)
    assert list(proto.int32_data) == [0x3C00, 0xC000, 0x7C00, 0x7BFF]
    nan = S.proto_to_tensor(TP(dims=[1], data_type=TP.FLOAT16, int32_data=[0x7E00]))
    assert nan.dtype == np.float16 and np.isnan(nan[0])


def test_small_ints_as_int32_values():
    proto = S.tensor_to_proto(np.array([-128, 127, -1], np.int8))
    assert list(proto.int32_data) == [-128, 127, -1]
    proto = S.tensor_to_proto(np.array([True, False]))
    assert list(proto.int32_data) == [1, 0]


def test_strings():
    arr = np.array([b"a", b"", b"\x00\xff", "\u00e9"], dtype=object)
    proto = S.tensor_to_proto(arr)
    assert proto.data_type == TP.STRING
    assert list(proto.string_data) == [b"a", b"", b"\x00\xff", "\u00e9".encode()]
    back = S.proto_to_tensor(proto)
    assert back.dtype == object and back.tolist() == [b"a", b"", b"\x00\xff", b"\xc3\xa9"]
    fixed = S.proto_to_tensor(S.tensor_to_proto(np.array([[b"ab"], [b"c"]])))
    assert fixed.shape == (2, 1) and fixed.tolist() == [[b"ab"], [b"c"]]
    zero_d = S.proto_to_tensor(S.tensor_to_proto(np.array(b"x", dtype=object)))
    assert zero_d.shape == () and zero_d.item() == b"x"
    with pytest.raises(SerializationError, match="bytes or str"):
        S.tensor_to_proto(np.array([1, None], dtype=object))


@pytest.mark.parametrize("dtype,data_type", [
    (np.uint8, TP.UINT8), (np.int8, TP.INT8), (np.int16, TP.INT16),
    (np.uint16, TP.UINT16), (np.float16, TP.FLOAT16), (np.bool_, TP.BOOL),
])
def test_reads_byte_data_holder(dtype, data_type):
    """Later PyTorch builds may put these types in byte_data (little-endian)."""
    arr = sample(dtype, (2, 3))
    raw = arr.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    proto = TP(dims=[2, 3], data_type=data_type, byte_data=raw)
    np.testing.assert_array_equal(S.proto_to_tensor(proto), arr)


def test_legacy_byte_type_and_raw_data():
    proto = TP(dims=[3], data_type=TP.BYTE, byte_data=b"\x01\x02\xff")
    out = S.proto_to_tensor(proto)
    assert out.dtype == np.uint8 and out.tolist() == [1, 2, 255]
    raw = TP(dims=[2], data_type=TP.FLOAT, storage_type=TP.RAW,
             raw_data=np.array([1.5, 2.5], "<f4").tobytes())
    assert S.proto_to_tensor(raw).tolist() == [1.5, 2.5]


def test_empty_undefined_tensor():
    out = S.proto_to_tensor(TP(dims=[0], data_type=TP.UNDEFINED))
    assert out.shape == (0,) and out.dtype == np.float32


@pytest.mark.parametrize("proto,match", [
    (TP(dims=[3], data_type=TP.FLOAT, float_data=[1, 2]), "float_data holds 2 values.*need 3"),
    (TP(dims=[2, 2], data_type=TP.INT64, int64_data=[1] * 5), "int64_data holds 5"),
    (TP(dims=[2], data_type=TP.STRING, string_data=[b"a"]), "string_data holds 1"),
    (TP(dims=[2], data_type=TP.UINT8, byte_data=b"abc"), "byte_data holds 3 bytes"),
    (TP(dims=[1], data_type=TP.FLOAT16, int32_data=[]), "int32_data holds 0"),
    (TP(dims=[-1], data_type=TP.FLOAT), "negative dimension -1"),
    (TP(dims=[1 << 40, 1 << 40], data_type=TP.FLOAT), "impossibly large"),
    (TP(dims=[2], data_type=TP.UNDEFINED, string_data=[b"", b""]), "UNDEFINED"),
    (TP(dims=[1], data_type=TP.ZERO_COLLISION_HASH), "ZERO_COLLISION_HASH"),
    (TP(dims=[4], data_type=TP.FLOAT, float_data=[1, 2], segment=TP.Segment(begin=0, end=2)),
     r"chunk \[0, 2\) of 4"),
])
def test_bad_protos_name_the_problem(proto, match):
    proto.name = "w1"
    with pytest.raises(SerializationError, match=match) as e:
        S.proto_to_tensor(proto)
    assert "w1" in str(e.value)


def test_unknown_data_type_value():
    data = TP(dims=[1], float_data=[1.0]).SerializeToString() + b"\x10\x63"  # data_type=99
    with pytest.raises(SerializationError, match="unknown data_type 99"):
        S.proto_to_tensor(TP.FromString(data), name="w")


def test_unsupported_dtype_names_tensor():
    with pytest.raises(SerializationError, match="complex64"):
        S.tensor_to_proto(np.zeros(2, np.complex64), "c")
    with pytest.raises(SerializationError, match="blob 'u'.*uint32"):
        S.serialize_blob("u", np.zeros(2, np.uint32))


def test_blob_records_follow_caffe2_layout():
    (key, data), = S.serialize_blob("x", np.arange(3, dtype=np.float32))
    assert key == "x#%0"
    blob = caffe2_pb2.BlobProto.FromString(data)
    assert blob.name == "x" and blob.type == "Tensor"
    assert blob.tensor.name == "x"
    assert (blob.tensor.segment.begin, blob.tensor.segment.end) == (0, 3)
    assert blob.tensor.device_detail.device_type == caffe2_pb2.CPU
    np.testing.assert_array_equal(S.deserialize_blob(data), [0, 1, 2])


def test_empty_tensor_is_one_chunk():
    recs = S.serialize_blob("e", np.zeros((0, 4), np.int32), chunk_size=2)
    assert [k for k, _ in recs] == ["e#%0"]
    out = S.deserialize_blob(recs[0][1])
    assert out.shape == (0, 4) and out.dtype == np.int32


def test_string_blob():
    (key, data), = S.serialize_blob("s", b"hello")
    assert key == "s"
    assert caffe2_pb2.BlobProto.FromString(data).type == "std::string"
    assert S.deserialize_blob(data) == b"hello"


def test_unserializable_blob_names_it():
    with pytest.raises(SerializationError, match="blob 'obj'.*dict"):
        S.serialize_blob("obj", {"a": 1})


def test_default_chunk_size_and_key_names():
    big = np.arange(S.DEFAULT_CHUNK_SIZE + 5, dtype=np.int32)
    recs = S.serialize_blob("big", big)
    assert [k for k, _ in recs] == ["big#%0", "big#%1"]
    protos = [S.parse_blob_proto(v) for _, v in recs]
    assert (protos[1].tensor.segment.begin, protos[1].tensor.segment.end) == (
        S.DEFAULT_CHUNK_SIZE, S.DEFAULT_CHUNK_SIZE + 5)
    np.testing.assert_array_equal(S.assemble_blob("big", protos[::-1]), big)
    assert len(S.serialize_blob("big", big, chunk_size=0)) == 1  # 0: no chunking


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.bool_, np.int64])
def test_chunked_round_trip(dtype):
    arr = sample(dtype, (7, 3))
    recs = S.serialize_blob("w", arr, chunk_size=4)
    assert len(recs) == 6 and all(S.blob_name_from_key(k) == "w" for k, _ in recs)
    protos = [S.parse_blob_proto(v) for _, v in recs]
    out = S.assemble_blob("w", protos[3:] + protos[:3])
    assert out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)


def test_chunk_errors():
    protos = [S.parse_blob_proto(v) for _, v in S.serialize_blob("w", np.arange(10.0), chunk_size=3)]
    with pytest.raises(SerializationError, match=r"blob 'w'.*missing chunk for elements \[3, 6\)"):
        S.assemble_blob("w", [protos[0], protos[2], protos[3]])
    with pytest.raises(SerializationError, match=r"missing chunk for elements \[9, 10\)"):
        S.assemble_blob("w", protos[:3])
    with pytest.raises(SerializationError, match="overlaps"):
        S.assemble_blob("w", protos + [protos[1]])
    other = S.parse_blob_proto(S.serialize_blob("w", np.arange(12.0), chunk_size=3)[3][1])
    with pytest.raises(SerializationError, match="chunk 4 has dims"):
        S.assemble_blob("w", protos + [other])
    bad = caffe2_pb2.BlobProto()
    bad.CopyFrom(protos[0])
    bad.tensor.segment.end = 11
    with pytest.raises(SerializationError, match="outside the 10 elements"):
        S.assemble_blob("w", [bad])


def test_blob_type_errors():
    with pytest.raises(SerializationError, match="no deserializer for blob type 'DBReader'"):
        S.deserialize_blob(caffe2_pb2.BlobProto(name="r", type="DBReader").SerializeToString())
    with pytest.raises(SerializationError, match="not a valid binary BlobProto"):
        S.deserialize_blob(b"\x0a\xff")


def test_chunked_string_content():
    parts = [caffe2_pb2.BlobProto(name="s", type="std::string", content=c,
                                  content_num_chunks=2, content_chunk_id=i)
             for i, c in enumerate([b"ab", b"cd"])]
    assert S.assemble_blob("s", parts[::-1]) == b"abcd"
    with pytest.raises(SerializationError, match="content chunks"):
        S.assemble_blob("s", parts[:1])


def make_net():
    net = caffe2_pb2.NetDef(name="n", type="simple", external_input=["X"])
    op = net.op.add(type="Relu", input=["X"], output=["Y"])
    op.arg.add(name="a", i=1)
    return net


@pytest.mark.parametrize("text", [False, True])
def test_net_files(tmp_path, text):
    path = tmp_path / "net.pb"
    S.write_net(make_net(), path, text=text)
    assert S.read_net(path) == make_net()
    assert os.listdir(tmp_path) == ["net.pb"]  # no temp file left


def test_bad_net_files(tmp_path):
    for name, data in [("empty", b""), ("garbage", b"\xff\xfe\x00junk"), ("text", b"op { typ: 1 }")]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(SerializationError, match=name):
            S.read_net(p)
    with pytest.raises(SerializationError, match="missing"):
        S.read_net(tmp_path / "missing")


def test_write_net_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "net.pb"
    S.write_net(make_net(), path)
    before = path.read_bytes()

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    bigger = make_net()
    bigger.name = "changed"
    with pytest.raises(SerializationError, match="disk full"):
        S.write_net(bigger, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.pb"]


def test_errors_are_c2errors():
    assert issubclass(SerializationError, C2Error)
