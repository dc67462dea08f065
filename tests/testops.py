"""A tiny in-process op pack for the gradient tests: NumPy kernels, schemas, gradients.

Register it inside ``registry.isolated()``; it stands in for the real packs
so the backward-pass machinery can be checked numerically with the core alone.
Kernels keep their inputs' dtype, so float64 nets give exact finite differences.
"""
import numpy as np

from c2core.gradient import GradientMaker
from c2core.hookspecs import hookimpl
from c2core.operator import Operator
from c2core.schema import OpSchema

_DTYPES = {1: np.float32, 2: np.int32, 10: np.int64, 13: np.float64}


def _same_shape(name, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} differ (no broadcasting here)")


class ConstantFillOp(Operator):
    def run(self):
        if self.num_inputs:
            x = np.asarray(self.input(0))
            shape = tuple(int(d) for d in x.ravel()) if self.arg("input_as_shape") else x.shape
        else:
            shape = tuple(self.arg("shape"))
        self.set_output(0, np.full(shape, self.arg("value"), dtype=_DTYPES[self.arg("dtype")]))


class AddOp(Operator):
    def run(self):
        a, b = self.input(0), self.input(1)
        _same_shape("Add", a, b)
        self.set_output(0, a + b)


class MulOp(Operator):
    def run(self):
        a, b = self.input(0), self.input(1)
        _same_shape("Mul", a, b)
        self.set_output(0, a * b)


class ReluOp(Operator):
    def run(self):
        x = self.input(0)
        self.set_output(0, np.maximum(x, 0).astype(x.dtype, copy=False))


class ReluGradientOp(Operator):
    def run(self):
        y, dy = self.input(0), self.input(1)
        self.set_output(0, np.where(y > 0, dy, 0).astype(dy.dtype, copy=False))


class FCOp(Operator):
    def run(self):
        x, w, b = self.input(0), self.input(1), self.input(2)
        self.set_output(0, x @ w.T + b)


class FCGradientOp(Operator):
    def run(self):
        x, w, dy = self.input(0), self.input(1), self.input(2)
        self.set_output(0, dy.T @ x)
        self.set_output(1, dy.sum(axis=0))
        if self.num_outputs > 2:
            self.set_output(2, dy @ w)


class SumSqrOp(Operator):
    def run(self):
        x = self.input(0)
        self.set_output(0, np.asarray((x * x).sum(), dtype=x.dtype))


class SumSqrGradientOp(Operator):
    def run(self):
        x, dl = self.input(0), self.input(1)
        self.set_output(0, (2 * x * np.asarray(dl).reshape(())).astype(x.dtype, copy=False))


class ScaleOp(Operator):
    def run(self):
        x = self.input(0)
        self.set_output(0, (x * self.arg("scale")).astype(x.dtype, copy=False))


class CopyOp(Operator):
    def run(self):
        self.set_output(0, np.array(self.input(0), copy=True))


class StopGradientOp(Operator):
    def run(self):
        self.set_output(0, self.input(0))


# -- gradients -----------------------------------------------------------------

def add_gradient(op, g_output):
    """Same-shape Add passes its output gradient straight to both inputs."""
    return [], [g_output[0], g_output[0]]


class GetMulGradient(GradientMaker):
    def get_gradient_defs(self):
        return [self.create_op("Mul", [self.GO(0), self.I(1)], [self.GI(0)]),
                self.create_op("Mul", [self.GO(0), self.I(0)], [self.GI(1)])]


class GetReluGradient(GradientMaker):
    def get_gradient_defs(self):
        return self.single_op("ReluGradient", [self.O(0), self.GO(0)], [self.GI(0)])


class GetFCGradient(GradientMaker):
    def get_gradient_defs(self):
        return self.single_op("FCGradient", [self.I(0), self.I(1), self.GO(0)],
                              [self.GI(1), self.GI(2), self.GI(0)])


class GetSumSqrGradient(GradientMaker):
    def get_gradient_defs(self):
        return self.single_op("SumSqrGradient", [self.I(0), self.GO(0)], [self.GI(0)])


class GetScaleGradient(GradientMaker):
    """Scale's gradient is Scale with the same `scale`, copied from the forward op."""

    def get_gradient_defs(self):
        return self.single_op("Scale", [self.GO(0)], [self.GI(0)])


class GetCopyGradient(GradientMaker):
    def get_gradient_defs(self):
        return self.single_op("Copy", [self.GO(0)], [self.GI(0)])


def _unary(name, doc, inplace=True):
    s = OpSchema(name).num_inputs(1).num_outputs(1).input(0, "X", "input").output(0, "Y", "output")
    if inplace:
        s.allow_inplace([(0, 0)])
    return s.doc(doc).category("Testing")


SCHEMAS = [
    (OpSchema("ConstantFill").num_inputs(0, 1).num_outputs(1)
     .arg("value", float, 0.0, "fill value")
     .arg("shape", [int], (), "output shape when there is no input")
     .arg("dtype", int, 1, "TensorProto.DataType of the output")
     .arg("input_as_shape", int, 0, "read the shape from the input's values")
     .doc("Test fill: shaped like the input if there is one.").category("Testing")),
    (OpSchema("Add").num_inputs(2).num_outputs(1).allow_inplace([(0, 0), (1, 0)])
     .arg("broadcast", int, 0, "unsupported here").doc("A + B, same shapes.").category("Testing")),
    (OpSchema("Mul").num_inputs(2).num_outputs(1).allow_inplace([(0, 0), (1, 0)])
     .arg("broadcast", int, 0, "unsupported here").doc("A * B, same shapes.").category("Testing")),
    _unary("Relu", "max(X, 0)"),
    (OpSchema("ReluGradient").num_inputs(2).num_outputs(1).allow_inplace([(1, 0)])
     .doc("dX = dY where Y > 0").category("Testing")),
    (OpSchema("FC").num_inputs(3).num_outputs(1).doc("X W^T + b (2-D only)").category("Testing")),
    (OpSchema("FCGradient").num_inputs(3).num_outputs(2, 3).doc("dW, db, dX").category("Testing")),
    _unary("SumSqr", "sum(X^2) as a scalar", inplace=False),
    (OpSchema("SumSqrGradient").num_inputs(2).num_outputs(1).doc("2 X dL").category("Testing")),
    _unary("Scale", "X * scale").arg("scale", float, 1.0, "factor"),
    _unary("Copy", "a copy of X", inplace=False),
    _unary("StopGradient", "X, with gradients stopped"),
]

KERNELS = {
    "ConstantFill": ConstantFillOp, "Add": AddOp, "Mul": MulOp, "Relu": ReluOp,
    "ReluGradient": ReluGradientOp, "FC": FCOp, "FCGradient": FCGradientOp,
    "SumSqr": SumSqrOp, "SumSqrGradient": SumSqrGradientOp, "Scale": ScaleOp,
    "Copy": CopyOp, "StopGradient": StopGradientOp,
}

GRADIENTS = {
    "Add": add_gradient, "Mul": GetMulGradient, "Relu": GetReluGradient, "FC": GetFCGradient,
    "SumSqr": GetSumSqrGradient, "Scale": GetScaleGradient, "Copy": GetCopyGradient,
}


@hookimpl
def c2core_register_ops(registrar):
    for schema in SCHEMAS:
        registrar.schema(schema)
    for op_type, cls in KERNELS.items():
        registrar.kernel(op_type, cls)
    for op_type, maker in GRADIENTS.items():
        registrar.gradient(op_type, maker)
    for op_type in ("ConstantFill", "ReluGradient", "FCGradient", "SumSqrGradient"):
        registrar.no_gradient(op_type)
