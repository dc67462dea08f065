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
    """Run operators created inside the block on device option `scope`.

    As in Caffe2, the outer scope's node name is inherited unless one is
    given, and its extra_info entries are merged in (sorted).
    """
    from c2core.proto import caffe2_pb2
    new = caffe2_pb2.DeviceOption()
    if scope:
        if not isinstance(scope, caffe2_pb2.DeviceOption):
            raise TypeError("DeviceScope(scope) takes a caffe2_pb2.DeviceOption")
        new.CopyFrom(scope)
    elif not node_name:
        raise ValueError("DeviceScope needs a DeviceOption or a node_name")
    if node_name:
        new.node_name = node_name
    old = CurrentDeviceScope()
    if old is not None:
        if old.HasField("node_name") and not new.HasField("node_name"):
            new.node_name = old.node_name
        new.extra_info.extend(old.extra_info)
        new.extra_info.sort()
    _local.devicescope = new
    try:
        yield
    finally:
        _local.devicescope = old


@contextlib.contextmanager
def EmptyNameScope():
    """No name scope inside the block (the outer one comes back after)."""
    old = CurrentNameScope()
    _local.namescope = ""
    try:
        yield
    finally:
        _local.namescope = old


@contextlib.contextmanager
def EmptyDeviceScope():
    """No device scope inside the block: ops get no device option."""
    old = CurrentDeviceScope()
    _local.devicescope = None
    try:
        yield
    finally:
        _local.devicescope = old
