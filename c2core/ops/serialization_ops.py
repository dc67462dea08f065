"""Save, Load and DBExists: blobs to and from Caffe2-format databases.

Semantics follow Caffe2's ``caffe2/operators/load_save_op.{h,cc}``: DB keys
are blob names (tensors as ``name#%<chunk>``), ``strip_prefix`` drops
everything up to and including the first match of the prefix,
``add_prefix`` is put in front of names read from the DB, and relative
paths are taken from the workspace's root folder unless ``absolute_path``.

Differences, on purpose: Load reads and checks every record before it
touches the workspace, so a failed Load leaves no blob half-loaded; Save
builds the DB in a temporary file that replaces the old one only when all
blobs were written; an absolute ``db`` path stays absolute even without
``absolute_path`` (Caffe2 glued it to the root folder).
"""

import os
import tempfile

import numpy as np

from c2core import db as dbmod
from c2core import serialize
from c2core.errors import DBError, SchemaError, SerializationError
from c2core.operator import Operator
from c2core.schema import OpSchema, TensorInfo

_ABSOLUTE_DOC = ("If nonzero, `db` is used as given; otherwise a relative path is taken "
                 "from the workspace's root folder.")
_DB_TYPE_DOC = "Type of the DB: 'minidb' (one file) or 'lmdb' (a directory); see c2core.db."
_STRIP_DOC = ("If set, everything in a blob name up to and including the first occurrence "
              "of this string is removed (e.g. a device scope such as 'gpu_0/').")


def _full_path(op, name):
    if op.arg("absolute_path") or os.path.isabs(name):
        return name
    return os.path.join(op.ws.root_folder, name)


def _strip(name, prefix):
    if prefix:
        pos = name.find(prefix)
        if pos >= 0:
            return name[pos + len(prefix):]
    return name


def _host_value(value):
    """A device tensor copied to the host (objects with .get() and shape/dtype, like PyCUDA's)."""
    if isinstance(value, np.ndarray | np.generic | bytes | str):
        return value
    if all(hasattr(value, a) for a in ("get", "shape", "dtype")):
        return value.get()
    return value


# ---------------------------------------------------------------------------
# Save
# ---------------------------------------------------------------------------

class SaveOp(Operator):
    def setup(self):
        overrides = list(self.arg("blob_name_overrides"))
        strip = self.arg("strip_prefix")
        if overrides and len(overrides) != len(self.inputs):
            raise SchemaError(
                f"blob_name_overrides has {len(overrides)} names for {len(self.inputs)} inputs")
        if overrides and strip:
            raise SchemaError("strip_prefix and blob_name_overrides are mutually exclusive")
        names = overrides or [_strip(n, strip) for n in self.input_names]
        seen = set()
        for src, name in zip(self.input_names, names, strict=True):
            if not name:
                raise SchemaError(f"input '{src}' would be saved under an empty name")
            if name in seen:
                raise SchemaError(f"two inputs would be saved under the same name '{name}'")
            seen.add(name)
        self.save_names = names
        if not self.arg("db"):
            raise SchemaError("argument 'db' (the DB path) is empty")
        if self.arg("chunk_size") < -1:
            raise SchemaError(f"chunk_size must be -1 (default), 0 (no chunking) or positive, "
                              f"got {self.arg('chunk_size')}")
        dbmod.check_db_type(self.arg("db_type"))  # unknown type: error at net creation

    def run(self):
        path = _full_path(self, self.arg("db"))
        records = []
        for i, name in enumerate(self.save_names):
            value = _host_value(self.input(i))
            records.extend(serialize.serialize_blob(name, value, self.arg("chunk_size")))
        dbmod.write_db(self.arg("db_type"), path, records, mode=dbmod.NEW)


def _save_load_example():
    from c2core import core, workspace

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.minidb")
        workspace.FeedBlob("w", np.arange(6, dtype=np.float32).reshape(2, 3))
        workspace.FeedBlob("b", np.array([0.5, -0.5], dtype=np.float32))
        workspace.RunOperatorOnce(core.CreateOperator(
            "Save", ["w", "b"], [], db=path, db_type="minidb", absolute_path=1))
        workspace.RunOperatorOnce(core.CreateOperator(
            "Load", [], ["w_copy"], db=path, db_type="minidb", absolute_path=1,
            source_blob_names=["w"]))
        return {"w_copy": workspace.FetchBlob("w_copy")}


SAVE = (OpSchema("Save")
        .num_inputs(1, None).num_outputs(0)
        .input(0, "X, Y, ...", "Blobs to save: tensors of any Caffe2 dtype, or byte strings.")
        .arg("absolute_path", int, 0, _ABSOLUTE_DOC)
        .arg("strip_prefix", str, "", _STRIP_DOC + " Exclusive with blob_name_overrides.")
        .arg("blob_name_overrides", [str], (),
             "Names to save the inputs under, one per input, instead of the blob names.")
        .arg("db", str, required=True, doc="Path of the DB to write (replaced if it exists).")
        .arg("db_type", str, required=True, doc=_DB_TYPE_DOC)
        .arg("chunk_size", int, -1,
             "Elements per record for big tensors: -1 uses the default of 1,000,000 "
             "(Caffe2's caffe2_tensor_chunk_size), 0 writes each tensor as one record.")
        .shape_inference(lambda op, args, inputs: [])
        .doc("Writes the input blobs into a new DB, one record per blob (big tensors are "
             "split into chunks keyed `name#%<i>`), in Caffe2's format so that Caffe2 can "
             "read the result and vice versa.\n\nThe DB is built in a temporary file next "
             "to `db` and moved into place only when every blob was written: a failure "
             "leaves any previous DB at that path unchanged.")
        .category("Serialization")
        .example(_save_load_example))


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------

class LoadOp(Operator):
    def setup(self):
        self.source_names = list(self.arg("source_blob_names"))
        self.db_names = list(self.arg("dbs"))
        n_out = len(self.outputs)
        if not self.inputs:
            if not self.arg("db_type"):
                raise SchemaError("argument 'db_type' is required when Load has no DB-reader input")
            dbmod.check_db_type(self.arg("db_type"))
            if not self.db_names:
                if not self.arg("db"):
                    raise SchemaError("give the DB to load as argument 'db' or 'dbs'")
                self.db_names = [self.arg("db")]
            elif self.arg("db"):
                raise SchemaError("give either 'db' or 'dbs', not both")
            if any(not n for n in self.db_names):
                raise SchemaError("'dbs' contains an empty DB name")
            if len(set(self.db_names)) != len(self.db_names):
                raise SchemaError(f"duplicated DB name in 'dbs': {self.db_names}")
        if self.source_names and len(self.source_names) != n_out:
            raise SchemaError(f"source_blob_names has {len(self.source_names)} names for "
                              f"{n_out} outputs")
        if self.source_names and self.arg("strip_prefix"):
            raise SchemaError("strip_prefix and source_blob_names are mutually exclusive")
        if self.source_names and self.arg("load_all"):
            raise SchemaError("load_all cannot be used with source_blob_names")
        wanted = self.source_names or self.output_names
        self.index = {}
        if not self.arg("load_all"):
            for i, name in enumerate(wanted):
                if name in self.index:
                    raise SchemaError(f"blob '{name}' is requested twice")
                self.index[name] = i

    def _sources(self):
        """(description, iterable of (key, value)) for every DB to read."""
        if self.inputs:
            for i in range(len(self.inputs)):
                reader = self.input(i)
                if not hasattr(reader, "cursor"):
                    raise DBError(f"input {i} '{self.input_names[i]}' holds a "
                                  f"{type(reader).__name__}, not a DB reader")
                yield f"DB reader '{self.input_names[i]}'", reader.cursor()
            return
        db_type = self.arg("db_type")
        for name in self.db_names:
            path = _full_path(self, name)
            if not dbmod.db_exists(db_type, path):
                raise DBError(f"{db_type} DB '{path}' does not exist")
            with dbmod.create_db(db_type, path, dbmod.READ) as d:
                yield f"{db_type} DB '{path}'", d.cursor()

    def run(self):
        load_all = self.arg("load_all")
        strip, add = self.arg("strip_prefix"), self.arg("add_prefix")
        records = {}   # blob name -> [BlobProto]
        origin = {}    # blob name -> which DB it came from
        for where, cursor in self._sources():
            for key, value in cursor:
                name = add + _strip(serialize.blob_name_from_key(key), strip)
                if not load_all and name not in self.index:
                    continue
                if origin.setdefault(name, where) != where:
                    raise DBError(f"blob '{name}' is in both {origin[name]} and {where}")
                records.setdefault(name, []).append(
                    serialize.parse_blob_proto(value, f"{where}: record {key!r} of blob '{name}'"))
        values = {}
        for name, protos in records.items():
            try:
                values[name] = serialize.assemble_blob(name, protos)
            except SerializationError as e:
                raise SerializationError(f"{origin[name]}: {e}") from None
        wanted = self.source_names or self.output_names
        dbs = ", ".join(sorted(set(origin.values()))) or self._db_list()
        if load_all:
            missing = [n for n in self.output_names if n not in values]
            if missing:
                raise DBError(f"output blobs {missing} do not exist in {dbs}")
        elif not self.arg("allow_incomplete"):
            missing = [n for n in wanted if n not in values]
            if missing:
                raise DBError(f"expected to load {len(wanted)} blobs, got "
                              f"{len(wanted) - len(missing)}; missing {missing} in {dbs}")
        # everything read and checked: only now touch the workspace
        for name, value in values.items():
            if load_all:
                self.ws.create_blob(name).value = value
            else:
                self.set_output(self.index[name], value)

    def _db_list(self):
        if self.inputs:
            return ", ".join(f"DB reader '{n}'" for n in self.input_names)
        return ", ".join(f"{self.arg('db_type')} DB '{_full_path(self, n)}'" for n in self.db_names)


def _load_shapes(op, args, inputs):
    shape = list(args.get("shape") or ())
    if len(op.output) == 1 and shape:
        return [TensorInfo(tuple(shape), serialize.data_type_to_dtype(args.get("dtype", 1)))]
    return [TensorInfo(None) for _ in op.output]


LOAD = (OpSchema("Load")
        .num_inputs(0, None).num_outputs(0, None)
        .input(0, "X, Y, ...", "Optional DB readers (objects with a cursor(), such as a "
                               "c2core.db DB opened for reading) to load from instead of "
                               "`db`/`dbs`.")
        .output(0, "X, Y, ...", "Blobs to fill, matched to DB records by name.")
        .arg("absolute_path", int, 0, _ABSOLUTE_DOC)
        .arg("add_prefix", str, "", "Put in front of every name read from the DB; output "
                                    "names must include it.")
        .arg("strip_prefix", str, "", _STRIP_DOC)
        .arg("db", str, "", "Path of the DB to read (needed unless `dbs` or inputs are given).")
        .arg("dbs", [str], (), "Paths of several DBs to read; a blob may appear in only one.")
        .arg("db_type", str, "", _DB_TYPE_DOC + " Needed unless DB readers are inputs.")
        .arg("keep_device", int, 0, "Accepted for Caffe2 compatibility; this CPU kernel always "
                                    "loads into host memory.")
        .arg("load_all", int, 0, "If nonzero, load every blob in the DB(s), creating blobs as "
                                 "needed, not only the outputs.")
        .arg("allow_incomplete", bool, False, "If true, outputs missing from the DB(s) are "
                                              "left as they are instead of raising an error.")
        .arg("source_blob_names", [str], (), "Names in the DB to load into the outputs, one "
                                             "per output, instead of the output names.")
        .arg("shape", [int], (), "Shape of the single output, for shape inference only.")
        .arg("dtype", int, 1, "TensorProto.DataType of the single output, for shape "
                              "inference only (default FLOAT).")
        .shape_inference(_load_shapes)
        .doc("Reads blobs from one or more DBs written by Save (or by Caffe2), matching "
             "records to outputs by name; tensor chunks are put back together.\n\nEvery "
             "record is read and checked (missing blobs, missing or overlapping chunks, "
             "corrupt records) before any blob of the workspace is written, so a failed "
             "Load leaves the workspace as it was.")
        .category("Serialization")
        .example(_save_load_example))


# ---------------------------------------------------------------------------
# DBExists
# ---------------------------------------------------------------------------

class DBExistsOp(Operator):
    def setup(self):
        dbmod.check_db_type(self.arg("db_type"))

    def run(self):
        path = _full_path(self, self.arg("db_name"))
        self.set_output(0, np.array(dbmod.db_exists(self.arg("db_type"), path)))


def _db_exists_example():
    from c2core import core, workspace

    workspace.RunOperatorOnce(core.CreateOperator(
        "DBExists", [], ["exists"], db_name="/no/such/db", db_type="minidb", absolute_path=1))
    return {"exists": workspace.FetchBlob("exists")}


DB_EXISTS = (OpSchema("DBExists")
             .num_inputs(0).num_outputs(1)
             .output(0, "exists", "Scalar bool tensor: true if the DB exists.")
             .arg("absolute_path", int, 0, _ABSOLUTE_DOC.replace("`db`", "`db_name`"))
             .arg("db_name", str, required=True, doc="Path of the DB to look for.")
             .arg("db_type", str, required=True, doc=_DB_TYPE_DOC)
             .shape_inference(lambda op, args, inputs: [TensorInfo((), np.bool_)])
             .doc("Checks whether a DB of the given type exists at a path, without reading it.")
             .category("Serialization")
             .example(_db_exists_example))


def register(registrar):
    """Register the three schemas and CPU kernels (called by c2core.ops)."""
    for schema, kernel in ((SAVE, SaveOp), (LOAD, LoadOp), (DB_EXISTS, DBExistsOp)):
        registrar.schema(schema)
        registrar.kernel(schema.name, kernel)
        registrar.no_gradient(schema.name)
