"""Save / Load / DBExists through the Caffe2-style front end."""

import os
import struct

import numpy as np
import pytest

from c2core import core, workspace
from c2core import db as dbmod
from c2core import serialize as S
from c2core.errors import C2Error

BACKENDS = ["minidb", "lmdb"]


@pytest.fixture(autouse=True)
def fresh_workspace(tmp_path):
    workspace.ResetWorkspace(str(tmp_path))
    yield
    workspace.ResetWorkspace()


def run(op_type, inputs, outputs, **kw):
    workspace.RunOperatorOnce(core.CreateOperator(op_type, inputs, outputs, **kw))


def feed_sample():
    vals = {
        "x": np.arange(12, dtype=np.float32).reshape(3, 4),
        "y": np.array([1, -2, 3], dtype=np.int64),
        "h": np.array([0.5, -1.25], dtype=np.float16),
        "s": np.array([b"ab", b""], dtype=object),
        "flag": np.array(True),
    }
    for k, v in vals.items():
        workspace.FeedBlob(k, v)
    return vals


def check(vals, names=None):
    for k in names or vals:
        got = workspace.FetchBlob(k)
        assert got.dtype == vals[k].dtype and got.shape == vals[k].shape, k
        np.testing.assert_array_equal(got, vals[k])


@pytest.mark.parametrize("db_type", BACKENDS)
def test_save_then_load(tmp_path, db_type):
    vals = feed_sample()
    run("Save", list(vals), [], db="model", db_type=db_type)
    assert dbmod.db_exists(db_type, str(tmp_path / "model"))  # relative to root folder
    workspace.ResetWorkspace()
    assert not workspace.HasBlob("x")
    run("Load", [], list(vals), db="model", db_type=db_type)
    check(vals)


def test_saved_records_are_caffe2_keys(tmp_path):
    feed_sample()
    run("Save", ["x", "s"], [], db=str(tmp_path / "m"), db_type="minidb", absolute_path=1)
    keys = [k for k, _ in dbmod.read_db("minidb", tmp_path / "m")]
    assert keys == [b"x#%0", b"s#%0"]


def test_load_all(tmp_path):
    vals = feed_sample()
    run("Save", list(vals), [], db="m", db_type="minidb")
    workspace.ResetWorkspace()
    run("Load", [], [], db="m", db_type="minidb", load_all=1)
    assert set(vals) <= set(workspace.Blobs())
    check(vals)


def test_prefixes_and_overrides(tmp_path):
    workspace.FeedBlob("gpu_0/w", np.ones(3, np.float32))
    workspace.FeedBlob("gpu_0/b", np.zeros(2, np.float32))
    run("Save", ["gpu_0/w", "gpu_0/b"], [], db="p", db_type="minidb", strip_prefix="gpu_0/")
    assert sorted(k for k, _ in dbmod.read_db("minidb", tmp_path / "p")) == [b"b#%0", b"w#%0"]
    run("Load", [], ["gpu_1/w", "gpu_1/b"], db="p", db_type="minidb", add_prefix="gpu_1/")
    np.testing.assert_array_equal(workspace.FetchBlob("gpu_1/w"), np.ones(3, np.float32))

    run("Save", ["gpu_0/w"], [], db="o", db_type="minidb", blob_name_overrides=["weights"])
    run("Load", [], ["w2"], db="o", db_type="minidb", source_blob_names=["weights"])
    np.testing.assert_array_equal(workspace.FetchBlob("w2"), np.ones(3, np.float32))


def test_load_from_several_dbs():
    vals = feed_sample()
    run("Save", ["x"], [], db="a", db_type="minidb")
    run("Save", ["y"], [], db="b", db_type="minidb")
    workspace.ResetWorkspace()
    run("Load", [], ["x", "y"], dbs=["a", "b"], db_type="minidb")
    check(vals, ["x", "y"])
    run("Save", ["x"], [], db="c", db_type="minidb")
    with pytest.raises(C2Error, match="'x' is in both"):
        run("Load", [], ["x"], dbs=["a", "c"], db_type="minidb")


def test_chunked_tensor(tmp_path):
    big = np.arange(1001, dtype=np.float64)
    workspace.FeedBlob("big", big)
    run("Save", ["big"], [], db="c", db_type="minidb", chunk_size=100)
    assert len(dbmod.read_db("minidb", tmp_path / "c")) == 11
    workspace.ResetWorkspace()
    run("Load", [], ["big"], db="c", db_type="minidb")
    np.testing.assert_array_equal(workspace.FetchBlob("big"), big)


def test_incomplete_chunks_are_an_error_and_load_nothing(tmp_path):
    workspace.FeedBlob("big", np.arange(300, dtype=np.int32))
    workspace.FeedBlob("other", np.ones(2, np.float32))
    run("Save", ["other", "big"], [], db="c", db_type="minidb", chunk_size=100)
    records = dbmod.read_db("minidb", tmp_path / "c")
    dbmod.write_db("minidb", tmp_path / "c", [r for r in records if r[0] != b"big#%1"])
    workspace.ResetWorkspace()
    with pytest.raises(C2Error, match=r"big.*missing chunk for elements \[100, 200\)"):
        run("Load", [], ["other", "big"], db="c", db_type="minidb")
    assert _is_empty("other")  # nothing half-loaded


def _is_empty(name):
    try:
        workspace.FetchBlob(name)
    except C2Error:
        return True
    return False


def test_missing_blob_and_allow_incomplete():
    feed_sample()
    run("Save", ["x"], [], db="m", db_type="minidb")
    workspace.ResetWorkspace()
    with pytest.raises(C2Error, match=r"expected to load 2 blobs, got 1; missing \['nope'\]"):
        run("Load", [], ["x", "nope"], db="m", db_type="minidb")
    assert _is_empty("x")  # nothing half-loaded
    run("Load", [], ["x", "nope"], db="m", db_type="minidb", allow_incomplete=True)
    assert workspace.FetchBlob("x").shape == (3, 4)
    assert _is_empty("nope")


def test_missing_db_errors(tmp_path):
    with pytest.raises(C2Error, match="does not exist") as e:
        run("Load", [], ["x"], db="absent", db_type="minidb")
    assert str(tmp_path / "absent") in str(e.value)
    with pytest.raises(C2Error, match="unknown db_type 'leveldb'"):
        run("Load", [], ["x"], db="absent", db_type="leveldb")
    with pytest.raises(C2Error, match="db_type"):
        run("Load", [], ["x"], db="absent")


def test_corrupt_db_names_file(tmp_path):
    (tmp_path / "bad").write_bytes(struct.pack("<ii", 1, 1000) + b"k")
    with pytest.raises(C2Error, match="bad.*record 0 at byte 0"):
        run("Load", [], ["k"], db="bad", db_type="minidb")
    dbmod.write_db("minidb", tmp_path / "junk", [(b"k", b"\xff\xff\xff")])
    with pytest.raises(C2Error, match="junk"):
        run("Load", [], ["k"], db="junk", db_type="minidb")


def test_save_argument_errors():
    feed_sample()
    with pytest.raises(C2Error, match="db"):
        run("Save", ["x"], [], db_type="minidb")
    with pytest.raises(C2Error, match="mutually exclusive"):
        run("Save", ["x"], [], db="m", db_type="minidb", strip_prefix="a",
            blob_name_overrides=["b"])
    with pytest.raises(C2Error, match="blob_name_overrides has 1 names for 2 inputs"):
        run("Save", ["x", "y"], [], db="m", db_type="minidb", blob_name_overrides=["b"])


def test_save_unserializable_blob_keeps_old_db(tmp_path):
    feed_sample()
    run("Save", ["x"], [], db="m", db_type="minidb")
    before = (tmp_path / "m").read_bytes()
    workspace.FeedBlob("obj", {"not": "a tensor"})
    with pytest.raises(C2Error, match="blob 'obj'"):
        run("Save", ["y", "obj"], [], db="m", db_type="minidb")
    assert (tmp_path / "m").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_string_blob_round_trip():
    workspace.FeedBlob("txt", "hello")
    run("Save", ["txt"], [], db="t", db_type="minidb")
    workspace.ResetWorkspace()
    run("Load", [], ["txt"], db="t", db_type="minidb")
    assert workspace.FetchBlob("txt") == b"hello"


@pytest.mark.parametrize("db_type", BACKENDS)
def test_db_exists(tmp_path, db_type):
    run("DBExists", [], ["e"], db_name="d", db_type=db_type)
    out = workspace.FetchBlob("e")
    assert out.dtype == np.bool_ and out.shape == () and not out
    dbmod.write_db(db_type, str(tmp_path / "d"), [(b"k", b"v")])
    run("DBExists", [], ["e"], db_name=str(tmp_path / "d"), db_type=db_type, absolute_path=1)
    assert workspace.FetchBlob("e")


def test_load_reads_caffe2_written_db(tmp_path):
    """A minidb laid out by hand the way Caffe2's Save writes it."""
    blob = S.caffe2_pb2.BlobProto(name="w", type="Tensor")
    t = blob.tensor
    t.dims.extend([2])
    t.data_type = S.TP.FLOAT
    t.float_data.extend([1.5, 2.5])
    t.segment.begin, t.segment.end = 0, 2
    data = blob.SerializeToString()
    key = b"w#%0"
    (tmp_path / "c2.minidb").write_bytes(struct.pack("<ii", len(key), len(data)) + key + data)
    run("Load", [], ["w"], db="c2.minidb", db_type="minidb")
    np.testing.assert_array_equal(workspace.FetchBlob("w"), np.array([1.5, 2.5], np.float32))


def test_load_from_db_reader_input(tmp_path):
    vals = feed_sample()
    run("Save", ["x"], [], db="r", db_type="lmdb")
    workspace.ResetWorkspace()
    reader = dbmod.create_db("lmdb", str(tmp_path / "r"), "read")
    workspace.FeedBlob("reader", reader)
    run("Load", ["reader"], ["x"])
    check(vals, ["x"])
    reader.close()
