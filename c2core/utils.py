"""Caffe2's ``caffe2.python.utils`` helpers that user code calls directly."""
from c2core.arguments import ArgsToDict, MakeArgument
from c2core.serialize import proto_to_tensor, tensor_to_proto


def NumpyArrayToCaffe2Tensor(arr, name=None):
    """A TensorProto holding `arr` (optionally named)."""
    return tensor_to_proto(arr, name=name)


def Caffe2TensorToNumpyArray(tensor):
    """The ndarray a TensorProto holds."""
    return proto_to_tensor(tensor)


__all__ = ["ArgsToDict", "MakeArgument", "NumpyArrayToCaffe2Tensor", "Caffe2TensorToNumpyArray"]
