"""Name and device scopes (Caffe2's caffe2.python.scope), thread-local."""
import contextlib
import threading

_NAMESCOPE_SEPARATOR = "/"
_local = threading.local()


def CurrentNameScope():
    return getattr(_local, "namescope", "")


def CurrentDeviceScope():
    return getattr(_local, "devicescope", None)


@contextlib.contextmanager
def NameScope(prefix, reset=False):
    """Prefix the names of blobs created inside the block with `prefix/`."""
    assert isinstance(prefix, str) or prefix is None, "NameScope takes a string"
    prefix = prefix + _NAMESCOPE_SEPARATOR if prefix else ""
    old = CurrentNameScope()
    _local.namescope = prefix if reset else old + prefix
    try:
        yield
    finally:
        _local.namescope = old


@contextlib.contextmanager
def DeviceScope(scope, node_name=None):
    """Run operators created inside the block on device option `scope`."""
    from c2core.proto import caffe2_pb2
    new = caffe2_pb2.DeviceOption()
    if scope is not None:
        new.CopyFrom(scope)
    old = CurrentDeviceScope()
    if node_name:
        new.node_name = node_name
    elif old is not None and old.HasField("node_name") and not new.HasField("node_name"):
        new.node_name = old.node_name
    _local.devicescope = new
    try:
        yield
    finally:
        _local.devicescope = old
