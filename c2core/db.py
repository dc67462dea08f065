"""Key/value databases for Save/Load, as in Caffe2's ``caffe2/core/db.h``.

``create_db(db_type, path, mode)`` picks a backend by name:

* ``minidb`` (alias ``MiniDB``): Caffe2's single-file format, a sequence of
  records ``[int32 key_len][int32 value_len][key][value]`` in little-endian
  byte order (Caffe2 wrote native ``int``s; every platform it ran on is
  little-endian).
* ``lmdb``: an LMDB environment directory (``data.mdb``), as Caffe2's
  ``lmdb`` DB.

Writes are atomic at the DB level: a DB opened with mode ``new`` or ``write``
is built in a temporary file/directory next to the target and moved into
place only by a successful ``close()``. ``abort()``, an exception inside
``with create_db(...)``, or a DB that is garbage-collected unclosed, leaves
the previous DB untouched and removes the temporary copy. ``commit()`` on a
transaction only flushes; it does not publish.

For ``lmdb`` the final step renames the old directory aside, renames the new
one into place, then deletes the old one: a crash in that short window can
leave the old DB under ``<path>.old-*`` rather than at ``path``.
"""

import contextlib
import os
import shutil
import struct
import tempfile

from c2core.errors import DBError

READ, WRITE, NEW = "read", "write", "new"
_MODE_NAMES = {READ: READ, WRITE: WRITE, NEW: NEW, 0: READ, 1: WRITE, 2: NEW}

_HEADER = struct.Struct("<II")
_MAX_LEN = (1 << 31) - 1  # Caffe2 stores lengths as C int


def _mode(mode):
    key = mode.lower() if isinstance(mode, str) else mode
    try:
        return _MODE_NAMES[key]
    except (KeyError, TypeError):
        raise DBError(f"unknown DB mode {mode!r}; expected 'read', 'write' or 'new'") from None


def _as_bytes(x, what):
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, bytearray | memoryview):
        return bytes(x)
    raise DBError(f"DB {what} must be bytes or str, got {type(x).__name__}")


class Cursor:
    """Iterates the (key, value) byte pairs of a DB, Caffe2-style or as an iterator."""

    def __init__(self, records):
        self._make = records
        self.seek_to_first()

    def seek_to_first(self):
        self._it = self._make()
        self.next()

    def next(self):
        try:
            self._cur = next(self._it)
        except StopIteration:
            self._cur = None

    def valid(self):
        return self._cur is not None

    def key(self):
        if self._cur is None:
            raise DBError("cursor is past the last record")
        return self._cur[0]

    def value(self):
        if self._cur is None:
            raise DBError("cursor is past the last record")
        return self._cur[1]

    def __iter__(self):
        while self._cur is not None:
            yield self._cur
            self.next()


class Transaction:
    """Buffered puts into a DB opened for writing; ``commit`` flushes them."""

    def __init__(self, db):
        self._db = db

    def put(self, key, value):
        self._db._put(_as_bytes(key, "key"), _as_bytes(value, "value"))

    def commit(self):
        self._db._flush()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()


class DB:
    """Base class of DB backends; see the module docstring for the lifecycle."""

    kind = "db"

    def __init__(self, path, mode):
        self.path = os.fspath(path)
        self.mode = _mode(mode)
        self.closed = False

    def _where(self):
        return f"{self.kind} '{self.path}'"

    def _need(self, *modes):
        if self.closed:
            raise DBError(f"{self._where()} is closed")
        if self.mode not in modes:
            raise DBError(f"{self._where()} is open in mode '{self.mode}'; this needs {modes}")

    def cursor(self):
        self._need(READ)
        return Cursor(self._records)

    def transaction(self):
        self._need(WRITE, NEW)
        return Transaction(self)

    new_cursor, new_transaction = cursor, transaction  # Caffe2's names

    def __iter__(self):
        return iter(self.cursor())

    def close(self):
        """Finish: publish a written DB (atomically), release files."""
        if not self.closed:
            self.closed = True
            self._close()

    def abort(self):
        """Drop everything written since opening; the previous DB stays as it was."""
        if not self.closed:
            self.closed = True
            self._abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        with contextlib.suppress(Exception):  # unclosed: never publish half a DB
            self.abort()

    # backend hooks
    def _records(self):
        raise NotImplementedError

    def _put(self, key, value):
        raise NotImplementedError

    def _flush(self):
        pass

    def _close(self):
        pass

    def _abort(self):
        pass


def _temp_sibling(path, dir_=False):
    parent = os.path.dirname(os.path.abspath(path)) or "."
    prefix = "." + os.path.basename(path) + "."
    if dir_:
        return tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".tmp")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=".tmp")
    return fd, tmp


class MiniDB(DB):
    """Caffe2's minidb: one file of length-prefixed key/value records."""

    kind = "minidb"

    def __init__(self, path, mode):
        super().__init__(path, mode)
        self._file = None
        self._tmp = None
        if self.mode == READ:
            if not os.path.isfile(self.path):
                raise DBError(f"{self._where()} does not exist or is not a file")
            return
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise DBError(f"cannot create {self._where()}: directory '{parent}' does not exist")
        try:
            fd, self._tmp = _temp_sibling(self.path)
            self._file = os.fdopen(fd, "wb")
            if self.mode == WRITE and os.path.isfile(self.path):
                with open(self.path, "rb") as src:  # append mode: start from a copy
                    shutil.copyfileobj(src, self._file)
        except OSError as e:
            self._abort()
            raise DBError(f"cannot open {self._where()} for writing: {e}") from None

    def _records(self):
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed in finally below
        except OSError as e:
            raise DBError(f"cannot read {self._where()}: {e}") from None
        try:
            size = os.fstat(f.fileno()).st_size
            offset, index = 0, 0
            while True:
                header = f.read(_HEADER.size)
                if not header:
                    return
                where = f"{self._where()}: record {index} at byte {offset}"
                if len(header) < _HEADER.size:
                    raise DBError(
                        f"{where}: truncated header, {len(header)} of {_HEADER.size} bytes "
                        "(file cut short?)")
                key_len, value_len = _HEADER.unpack(header)
                left = size - offset - _HEADER.size
                if key_len > left:
                    raise DBError(f"{where}: key length {key_len} exceeds the {left} bytes left")
                if value_len > left - key_len:
                    raise DBError(
                        f"{where}: value length {value_len} exceeds the "
                        f"{left - key_len} bytes left after the key")
                key = f.read(key_len)
                value = f.read(value_len)
                if len(key) != key_len or len(value) != value_len:
                    raise DBError(f"{where}: file shrank while reading")
                yield key, value
                offset += _HEADER.size + key_len + value_len
                index += 1
        except OSError as e:
            raise DBError(f"cannot read {self._where()}: {e}") from None
        finally:
            f.close()

    def _put(self, key, value):
        self._need(WRITE, NEW)
        if not key:
            raise DBError(f"{self._where()}: empty keys cannot be stored (Caffe2 rejects them)")
        if not value:
            raise DBError(
                f"{self._where()}: empty value for key {key!r} (Caffe2's minidb cannot read it)")
        if len(key) > _MAX_LEN or len(value) > _MAX_LEN:
            raise DBError(f"{self._where()}: record for key {key[:64]!r} exceeds 2 GiB")
        try:
            self._file.write(_HEADER.pack(len(key), len(value)) + key)
            self._file.write(value)
        except OSError as e:
            raise DBError(f"cannot write {self._where()}: {e}") from None

    def _flush(self):
        try:
            self._file.flush()
        except OSError as e:
            raise DBError(f"cannot write {self._where()}: {e}") from None

    def _close(self):
        if self._file is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
            self._tmp = None
        except OSError as e:
            self._abort()
            raise DBError(f"cannot write {self._where()}: {e}") from None

    def _abort(self):
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None

    @staticmethod
    def exists(path):
        return os.path.isfile(path)


# Caffe2's LMDB_MAP_SIZE: address space only, the file grows as written.
LMDB_MAP_SIZE = 1 << 40


class LMDB(DB):
    """An LMDB environment directory; written into a temp dir, then renamed in."""

    kind = "lmdb"

    def __init__(self, path, mode):
        super().__init__(path, mode)
        try:
            import lmdb
        except ImportError:
            raise DBError(f"{self._where()}: the 'lmdb' package is not installed") from None
        self._lmdb = lmdb
        self._env = None
        self._txn = None
        self._tmp = None
        try:
            if self.mode == READ:
                if not os.path.isfile(os.path.join(self.path, "data.mdb")):
                    raise DBError(f"{self._where()} does not exist (no data.mdb in it)")
                self._env = lmdb.open(self.path, readonly=True, lock=False, subdir=True,
                                      map_size=LMDB_MAP_SIZE, create=False)
                return
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise DBError(
                    f"cannot create {self._where()}: directory '{parent}' does not exist")
            self._tmp = _temp_sibling(self.path, dir_=True)
            if self.mode == WRITE and os.path.isfile(os.path.join(self.path, "data.mdb")):
                shutil.copy2(os.path.join(self.path, "data.mdb"),
                             os.path.join(self._tmp, "data.mdb"))
            self._env = lmdb.open(self._tmp, subdir=True, map_size=LMDB_MAP_SIZE)
        except (lmdb.Error, OSError) as e:
            self._abort()
            raise DBError(f"cannot open {self._where()}: {e}") from None
        except DBError:
            self._abort()
            raise

    def _records(self):
        try:
            with self._env.begin(buffers=False) as txn:
                for key, value in txn.cursor():
                    yield bytes(key), bytes(value)
        except self._lmdb.Error as e:
            raise DBError(f"cannot read {self._where()}: {e}") from None

    def _put(self, key, value):
        self._need(WRITE, NEW)
        if not key:
            raise DBError(f"{self._where()}: empty keys cannot be stored")
        try:
            if self._txn is None:
                self._txn = self._env.begin(write=True)
            self._txn.put(key, value)
        except self._lmdb.Error as e:
            raise DBError(f"cannot write key {key[:64]!r} to {self._where()}: {e}") from None

    def _flush(self):
        if self._txn is not None:
            txn, self._txn = self._txn, None
            try:
                txn.commit()
            except self._lmdb.Error as e:
                raise DBError(f"cannot commit to {self._where()}: {e}") from None

    def _close(self):
        if self.mode == READ:
            self._env.close()
            return
        try:
            self._flush()
            self._env.sync(True)
            self._env.close()
            self._env = None
            lock = os.path.join(self._tmp, "lock.mdb")
            if os.path.exists(lock):
                os.unlink(lock)
            old = None
            if os.path.isdir(self.path):
                old = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(self.path)),
                                       prefix="." + os.path.basename(self.path) + ".old-")
                os.rmdir(old)
                os.rename(self.path, old)
            elif os.path.exists(self.path):
                raise DBError(f"cannot write {self._where()}: a non-directory is in the way")
            os.rename(self._tmp, self.path)
            self._tmp = None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except (self._lmdb.Error, OSError) as e:
            self._abort()
            raise DBError(f"cannot write {self._where()}: {e}") from None
        except DBError:
            self._abort()
            raise

    def _abort(self):
        if self._txn is not None:
            with contextlib.suppress(self._lmdb.Error):
                self._txn.abort()
            self._txn = None
        if self._env is not None:
            with contextlib.suppress(self._lmdb.Error):
                self._env.close()
            self._env = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @staticmethod
    def exists(path):
        return os.path.isfile(os.path.join(path, "data.mdb"))


_BACKENDS = {"minidb": MiniDB, "MiniDB": MiniDB, "lmdb": LMDB}


def register_db(db_type, cls):
    """Add a backend (a DB subclass taking (path, mode)) under ``db_type``."""
    if db_type in _BACKENDS and _BACKENDS[db_type] is not cls:
        raise DBError(f"db_type '{db_type}' is already registered to {_BACKENDS[db_type]!r}")
    _BACKENDS[db_type] = cls


def registered_dbs():
    """Names of the known db types (Caffe2's ``workspace.C.registered_dbs``)."""
    return sorted(_BACKENDS)


def _backend(db_type):
    try:
        return _BACKENDS[db_type]
    except (KeyError, TypeError):
        raise DBError(
            f"unknown db_type {db_type!r}; known types: {', '.join(registered_dbs())}") from None


def check_db_type(db_type):
    """Raise DBError listing the known types unless ``db_type`` is one of them."""
    _backend(db_type)


def create_db(db_type, path, mode):
    """Open a DB of ``db_type`` at ``path`` with mode 'read', 'write' or 'new'."""
    return _backend(db_type)(path, mode)


def db_exists(db_type, path):
    """Whether a DB of ``db_type`` is present at ``path`` (unknown type: DBError)."""
    return bool(_backend(db_type).exists(os.fspath(path)))


def write_db(db_type, path, records, mode=NEW):
    """Write an iterable of (key, value) into a DB; all or nothing."""
    with create_db(db_type, path, mode) as db:
        txn = db.transaction()
        for key, value in records:
            txn.put(key, value)
        txn.commit()


def read_db(db_type, path):
    """All (key, value) records of a DB, in order, as a list."""
    with create_db(db_type, path, READ) as db:
        return list(db.cursor())
