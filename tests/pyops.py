"""Small pure-Python op pack used by the core's tests (registered in isolated registries)."""
import numpy as np

from c2core.errors import OperatorError
from c2core.hookspecs import hookimpl
from c2core.operator import Operator
from c2core.schema import OpSchema, TensorInfo


class ScaleOp(Operator):
    def run(self):
        self.set_output(0, self.input(0) * np.float32(self.args.get("scale", 1.0)))


BARRIERS = {}          # name -> threading.Barrier, shared by TRendezvousCopy ops
LOG = []               # tags recorded by TLogCopy, in run order


class RendezvousCopyOp(Operator):
    """Copies after every party reached the barrier: passes only if they run at the same time."""

    def run(self):
        BARRIERS[self.arg("barrier")].wait()
        self.set_output(0, np.array(self.input(0), copy=True))


class LogCopyOp(Operator):
    def run(self):
        LOG.append(self.arg("tag"))
        self.set_output(0, np.array(self.input(0), copy=True))


class MatMulOp(Operator):
    def setup(self):
        if self.arg("trans") not in (0, 1):
            raise OperatorError(f"argument 'trans' must be 0 or 1, got {self.arg('trans')}")

    def run(self):
        a, b = self.input(0), self.input(1)
        if self.arg("trans"):
            b = b.T
        if a.shape[1] != b.shape[0]:
            raise OperatorError(f"inner dimensions differ: A is {list(a.shape)}, B is {list(b.shape)}")
        self.set_output(0, a @ b)


def _matmul_shape(op, args, inputs):
    a, b = inputs
    k = b.shape[0] if args["trans"] else b.shape[1]
    return [TensorInfo((a.shape[0], k), a.dtype)]


SCALE = (OpSchema("TScale").num_inputs(1).num_outputs(1).allow_inplace([(0, 0)])
         .input(0, "X", "input").output(0, "Y", "scaled input")
         .arg("scale", float, 1.0, "factor").identical_type_and_shape()
         .doc("Multiplies by a constant.").category("Test"))
RENDEZVOUS = (OpSchema("TRendezvousCopy").num_inputs(1).num_outputs(1)
              .input(0, "X", "input").output(0, "Y", "copy")
              .arg("barrier", str, required=True, doc="name of a barrier in pyops.BARRIERS")
              .identical_type_and_shape().doc("Copies once all parties arrived.").category("Test"))
LOGCOPY = (OpSchema("TLogCopy").num_inputs(1).num_outputs(1)
           .input(0, "X", "input").output(0, "Y", "copy")
           .arg("tag", str, "", "what to record in pyops.LOG")
           .identical_type_and_shape().doc("Records its tag, then copies.").category("Test"))
MATMUL = (OpSchema("TMatMul").num_inputs(2).num_outputs(1)
          .input(0, "A", "left").input(1, "B", "right").output(0, "Y", "product")
          .arg("trans", int, 0, "transpose B").arg("name_tag", str, "", "a string arg")
          .arg("dims", [int], (), "a list arg")
          .shape_inference(_matmul_shape)
          .doc("Matrix product.").category("Test"))
NEEDS = (OpSchema("TNeedsArg").num_inputs(0).num_outputs(1)
         .output(0, "Y", "out").arg("value", float, required=True, doc="required value")
         .doc("Has a required argument.").category("Test"))
CHOICE = (OpSchema("TChoice").num_inputs({1, 3}).num_outputs(1)
          .input(0, "X", "x").output(0, "Y", "y").doc("Takes 1 or 3 inputs.").category("Test"))
INPLACE = (OpSchema("TInPlace").num_inputs(1).num_outputs(1).enforce_inplace([(0, 0)])
           .input(0, "X", "x").output(0, "X", "x").doc("Works in place only.").category("Test"))


class ConstOp(Operator):
    def run(self):
        self.set_output(0, np.float32(self.arg("value")) * np.ones(1, np.float32))


@hookimpl
def c2core_pack_info():
    return {"name": "pyops", "version": "0.0", "description": "test ops"}


@hookimpl
def c2core_register_ops(registrar):
    for schema in (SCALE, RENDEZVOUS, LOGCOPY, MATMUL, NEEDS, CHOICE, INPLACE):
        registrar.schema(schema)
    registrar.kernel("TScale", ScaleOp)
    registrar.kernel("TRendezvousCopy", RendezvousCopyOp)
    registrar.kernel("TLogCopy", LogCopyOp)
    registrar.kernel("TMatMul", MatMulOp)
    registrar.kernel("TNeedsArg", ConstOp)
    registrar.kernel("TChoice", ScaleOp)
    registrar.kernel("TInPlace", ScaleOp)
