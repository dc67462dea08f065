"""DB backends: minidb byte layout, lmdb, atomic writes, corrupt files."""

import os
import struct

import pytest

from c2core import db
from c2core.errors import C2Error, DBError

RECORDS = [(b"a", b"1"), (b"key#%0", b"\x00\xff" * 100), (b"z" * 300, b"v")]
BACKENDS = ["minidb", "lmdb"]


def encode_minidb(records):
    """Caffe2's MiniDB layout, written by hand: int32 key len, int32 value len, key, value."""
    return b"".join(struct.pack("<ii", len(k), len(v)) + k + v for k, v in records)


@pytest.mark.parametrize("db_type", BACKENDS)
def test_round_trip(tmp_path, db_type):
    path = str(tmp_path / "d")
    assert not db.db_exists(db_type, path)
    with db.create_db(db_type, path, "new") as d:
        txn = d.transaction()
        for k, v in RECORDS:
            txn.put(k, v)
        txn.commit()
    assert db.db_exists(db_type, path)
    got = db.read_db(db_type, path)
    assert sorted(got) == sorted(RECORDS)
    if db_type == "minidb":
        assert got == RECORDS  # minidb keeps insertion order


@pytest.mark.parametrize("db_type", BACKENDS)
def test_cursor_caffe2_style(tmp_path, db_type):
    path = str(tmp_path / "d")
    db.write_db(db_type, path, [("k1", "v1"), ("k2", "v2")])
    with db.create_db(db_type, path, db.READ) as d:
        c = d.cursor()
        seen = []
        while c.valid():
            seen.append((c.key(), c.value()))
            c.next()
        assert seen == [(b"k1", b"v1"), (b"k2", b"v2")]
        c.seek_to_first()
        assert c.key() == b"k1"
        c.next()
        c.next()
        with pytest.raises(DBError, match="past the last"):
            c.value()
        with pytest.raises(DBError, match="mode 'read'"):
            d.transaction()


@pytest.mark.parametrize("db_type", BACKENDS)
def test_write_mode_appends(tmp_path, db_type):
    path = str(tmp_path / "d")
    db.write_db(db_type, path, [(b"a", b"1")])
    db.write_db(db_type, path, [(b"b", b"2")], mode="write")
    assert sorted(db.read_db(db_type, path)) == [(b"a", b"1"), (b"b", b"2")]
    db.write_db(db_type, path, [(b"c", b"3")], mode="new")
    assert db.read_db(db_type, path) == [(b"c", b"3")]


def test_minidb_bytes_match_caffe2_layout(tmp_path):
    path = tmp_path / "m.minidb"
    db.write_db("minidb", path, RECORDS)
    assert path.read_bytes() == encode_minidb(RECORDS)
    other = tmp_path / "caffe2.minidb"
    other.write_bytes(encode_minidb([(b"w#%0", b"blob")]))
    assert db.read_db("MiniDB", other) == [(b"w#%0", b"blob")]


@pytest.mark.parametrize("db_type", BACKENDS)
def test_failed_write_keeps_previous_db(tmp_path, db_type):
    path = str(tmp_path / "d")
    db.write_db(db_type, path, RECORDS)
    listing = sorted(os.listdir(tmp_path))

    def records():
        yield b"new1", b"x"
        yield b"new2", b"y"
        raise RuntimeError("producer failed halfway")

    for mode in ("new", "write"):
        with pytest.raises(RuntimeError, match="halfway"):
            db.write_db(db_type, path, records(), mode=mode)
        assert sorted(db.read_db(db_type, path)) == sorted(RECORDS)
        assert sorted(os.listdir(tmp_path)) == listing  # no temp file/dir left


def test_failed_rename_keeps_previous_minidb(tmp_path, monkeypatch):
    path = tmp_path / "m"
    db.write_db("minidb", path, RECORDS)
    before = path.read_bytes()

    def boom(*a):
        raise OSError("no space left")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(DBError, match="no space left"):
        db.write_db("minidb", path, [(b"k", b"v")])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m"]


@pytest.mark.parametrize("db_type", BACKENDS)
def test_abort_and_unclosed_never_publish(tmp_path, db_type):
    path = str(tmp_path / "d")
    d = db.create_db(db_type, path, "new")
    d.transaction().put(b"k", b"v")
    d.abort()
    assert not db.db_exists(db_type, path)
    d = db.create_db(db_type, path, "new")
    txn = d.transaction()
    txn.put(b"k", b"v")
    txn.commit()
    del d, txn
    assert not db.db_exists(db_type, path)
    assert os.listdir(tmp_path) == []


def test_minidb_truncated_and_garbage(tmp_path):
    good = encode_minidb(RECORDS)  # records start at bytes 0, 10, 224; 533 in all
    assert len(good) == 533
    cases = {
        "cut_header": (good[:224 + 5], r"record 2 at byte 224: truncated header, 5 of 8 bytes"),
        "cut_value": (good[:-1], r"record 2 at byte 224: value length 1 exceeds the 0 bytes"),
        "huge_key": (good[:10] + b"\xff\xff\xff\xff" + good[14:],
                     r"record 1 at byte 10: key length 4294967295 exceeds the 515 bytes left"),
        "garbage": (b"\x07" * 37, r"record 0 at byte 0: key length 117901063 exceeds the 29"),
    }
    for name, (data, match) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(DBError, match=match) as e:
            db.read_db("minidb", p)
        assert str(p) in str(e.value)


def test_lmdb_garbage_dir(tmp_path):
    p = tmp_path / "bad.lmdb"
    p.mkdir()
    (p / "data.mdb").write_bytes(b"not an lmdb file" * 100)
    with pytest.raises(DBError, match="bad.lmdb"):
        db.read_db("lmdb", p)


@pytest.mark.parametrize("db_type", BACKENDS)
def test_missing_db(tmp_path, db_type):
    with pytest.raises(DBError, match="does not exist") as e:
        db.create_db(db_type, tmp_path / "nope", "read")
    assert "nope" in str(e.value)
    with pytest.raises(DBError, match="directory"):
        db.create_db(db_type, tmp_path / "no" / "dir", "new")


def test_unknown_type_and_mode(tmp_path):
    with pytest.raises(DBError, match="unknown db_type 'leveldb'.*lmdb.*minidb"):
        db.create_db("leveldb", tmp_path / "x", "read")
    with pytest.raises(DBError, match="unknown db_type"):
        db.db_exists("rocksdb", tmp_path)
    with pytest.raises(DBError, match="unknown DB mode"):
        db.create_db("minidb", tmp_path / "x", "append")
    assert {"minidb", "lmdb"} <= set(db.registered_dbs())


def test_minidb_rejects_records_caffe2_cannot_read(tmp_path):
    with pytest.raises(DBError, match="empty key"):
        db.write_db("minidb", tmp_path / "m", [(b"", b"v")])
    with pytest.raises(DBError, match="empty value"):
        db.write_db("minidb", tmp_path / "m", [(b"k", b"")])
    assert os.listdir(tmp_path) == []


def test_errors_are_c2errors():
    assert issubclass(DBError, C2Error)
