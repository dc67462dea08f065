"""Exception types a user of c2 can catch.

All derive from ``C2Error``, itself a ``RuntimeError`` because Caffe2 raised
``RuntimeError`` for every failure coming out of its C++ core; code written
for Caffe2 that catches ``RuntimeError`` keeps working.
"""


class C2Error(RuntimeError):
    """Base class of every error raised by c2."""


class UnknownOperatorError(C2Error):
    """An operator type (or device/engine combination) nobody registered."""


class SchemaError(C2Error):
    """An OperatorDef that breaks its schema: arity, argument, in-place rule."""


class BlobError(C2Error, KeyError):
    """A blob that does not exist or holds nothing where a value is needed."""

    def __str__(self):  # KeyError would otherwise quote the message
        return RuntimeError.__str__(self)


class OperatorError(C2Error):
    """An operator failed while running; the message names op and net."""


class SerializationError(C2Error):
    """A protobuf, tensor or blob that cannot be encoded or decoded."""


class DBError(C2Error):
    """A database file that is missing, truncated, corrupted or unwritable."""


class PluginError(C2Error):
    """An op pack that cannot be registered (duplicate kernel, bad hook)."""
