"""Static shape and type inference over nets, driven by each schema's shape function."""
from __future__ import annotations

import numpy as np

from c2core import registry
from c2core.arguments import parse_args
from c2core.errors import C2Error
from c2core.operator import describe_op
from c2core.schema import TensorInfo
from c2core.serialize import data_type_to_dtype, dtype_to_data_type


def infer_op(op_def, inputs, reg=None):
    """Output TensorInfos of one op from its input TensorInfos, or None if not inferable."""
    reg = reg or registry.get()
    schema = reg.schema(op_def.type)
    if schema is None or schema.shape_fn is None:
        return None
    if any(t is None or t.shape is None for t in inputs):
        return None
    args = parse_args(schema, op_def, describe_op(op_def))
    outs = schema.shape_fn(op_def, args, list(inputs))
    return list(outs)[: len(op_def.output)] if outs is not None else None


def infer_shapes_and_types(nets, ws, blob_dimensions=None, blob_types=None):
    """({blob: dims}, {blob: TensorProto.DataType}) for every blob whose shape is known."""
    known: dict[str, TensorInfo] = {}
    for name in ws.blob_names():
        v = ws.get_blob(name).value
        if isinstance(v, np.ndarray):
            known[name] = TensorInfo(v.shape, v.dtype)
    for name, dims in (blob_dimensions or {}).items():
        dtype = data_type_to_dtype(blob_types[name]) if blob_types and name in blob_types else np.float32
        known[str(name)] = TensorInfo(tuple(dims), dtype)
    for name, t in (blob_types or {}).items():
        if str(name) in known:
            known[str(name)].dtype = np.dtype(data_type_to_dtype(t))
    reg = registry.get()
    for net in nets:
        for i, op in enumerate(net.op):
            try:
                outs = infer_op(op, [known.get(n) for n in op.input], reg)
            except C2Error:
                raise
            except Exception as e:
                raise C2Error(f"{describe_op(op, i, net.name)}: shape inference failed: "
                              f"{type(e).__name__}: {e}") from e
            if outs is None:
                continue
            for name, info in zip(op.output, outs):
                if info is not None and info.shape is not None:
                    known[name] = info
    shapes = {n: list(t.shape) for n, t in known.items() if t.shape is not None}
    types = {n: dtype_to_data_type(t.dtype) for n, t in known.items() if t.dtype is not None}
    return shapes, types
