"""Caffe2's gradient machinery: the gradient registry and the backward-pass IR.

Behaviour follows ``caffe2/python/core.py`` (``IR``, ``GradientRegistry``)
and ``caffe2/core/operator_gradient.h`` (``GradientMakerBase``): the same
blob names (``x_grad``, ``_x_grad_autosplit_0``, ``x_autogen_grad``,
``x_grad_indices_concat``...), the same accumulation and in-place rules, so
nets built here and by Caffe2 match op for op.

Gradient makers are callables ``fn(op_def, g_output) -> (grad_ops, g_input)``
where ``g_output``/``g_input`` hold, per output/input, ``None`` (no
gradient), a blob name (dense) or a ``GradientSlice`` (sparse). Packs write
them as plain functions or as ``GradientMaker`` subclasses.
"""
from __future__ import annotations

from collections import defaultdict, namedtuple
from typing import ClassVar

from c2core import scope
from c2core.arguments import MakeArgument
from c2core.errors import C2Error, SchemaError
from c2core.proto import caffe2_pb2

__all__ = [
    "IR",
    "GetIndexFromGradientList",
    "GradGenMeta",
    "GradientError",
    "GradientMaker",
    "GradientNotImplementedYet",
    "GradientRegistry",
    "GradientSlice",
    "NoGradient",
    "OpSSA",
    "ShouldNotDoGradient",
    "SparseGradGenMeta",
]

GradientSlice = namedtuple("GradientSlice", ["indices", "values"])

OpSSA = namedtuple("OpSSA", ["op", "in_versions", "out_versions"])
GradGenMeta = namedtuple("GradGenMeta", ["grad_op", "idx", "gradient"])
SparseGradGenMeta = namedtuple("SparseGradGenMeta", [
    "grad_op_indices", "idx_indices", "grad_op_values", "idx_values", "gradient"])

AUTOGEN_GRAD_SUFFIX = "_autogen_grad"


class GradientError(C2Error):
    """A backward pass that cannot be built; the message names the operator."""


class StopGradientOrphanError(GradientError, ValueError):
    """Caffe2 raises ValueError here; keep code catching that working."""


# -- small helpers ---------------------------------------------------------

def _describe_op(op):
    name = f" '{op.name}'" if op.name else ""
    return (f"{op.type}{name} (inputs [{', '.join(op.input)}] -> "
            f"outputs [{', '.join(op.output)}])")


def _op_def(op_type, inputs, outputs, name="", device_option=None, engine=None, **kwargs):
    """An OperatorDef built directly (no name scope, like C++ CreateOperatorDef)."""
    op = caffe2_pb2.OperatorDef()
    op.type = op_type
    op.name = name
    op.input.extend(str(i) for i in inputs)
    op.output.extend(str(o) for o in outputs)
    if device_option is not None:
        op.device_option.CopyFrom(device_option)
    if engine is not None:
        op.engine = engine
    for key, value in kwargs.items():
        if value is not None:
            op.arg.append(MakeArgument(key, value))
    return op


def _ir_op(op_type, inputs, outputs, **kwargs):
    """The IR's own ops (autogen fill, Sum, Concat) follow DeviceScope as in Caffe2."""
    return _op_def(op_type, inputs, outputs, device_option=scope.CurrentDeviceScope(), **kwargs)


def _blob_ref(name):
    from c2core.core import BlobReference  # lazy: core imports this module
    return BlobReference(str(name))


def _device_option_equal(a, b):
    """Caffe2's device_option_equal, ignoring node name and seed."""
    if not a.device_type or not b.device_type:
        return not a.device_type and not b.device_type
    return a.cuda_gpu_id == b.cuda_gpu_id


def _normalize_grad(g):
    """None, a blob name or a GradientSlice of names (C++ GradientWrapper's view)."""
    if g is None:
        return None
    if isinstance(g, GradientSlice) or (isinstance(g, tuple) and len(g) == 2):
        indices, values = g
        if not indices and not values:
            return None
        return GradientSlice(str(indices) if indices else "", str(values) if values else "")
    g = g.decode("utf-8") if isinstance(g, bytes) else str(g)
    return g or None


def GetIndexFromGradientList(g_list, name):
    """Position of `name` in a gradient list (dense or either half of a slice)."""
    for i, g in enumerate(g_list):
        if g == name:
            return i
        if isinstance(g, GradientSlice) and (g.indices == name or g.values == name):
            return i
    return None


# -- GradientMakerBase ------------------------------------------------------

class GradientMaker:
    """Caffe2's GradientMakerBase for pack authors.

    Override ``get_gradient_defs()`` and use ``I``/``O``/``GO``/``GI``...;
    ``GI`` records ``<input>_grad`` as that input's gradient. As in C++,
    every op returned gets ``is_gradient_op`` and, unless the class turns it
    off, the forward op's device option, engine and arguments. Register the
    class itself: ``registrar.gradient("Relu", GetReluGradient)``.
    """

    copy_device_option = True
    copy_engine = True
    copy_arguments = True

    def __init__(self, op_def, g_output):
        self.def_ = op_def
        self.g_output = [_normalize_grad(g) for g in g_output]
        if len(self.g_output) != len(op_def.output):
            raise GradientError(
                f"{len(self.g_output)} output gradients given for {len(op_def.output)} outputs")
        self.g_input = [None] * len(op_def.input)

    # names
    def Def(self):
        return self.def_

    def I(self, i):  # noqa: E743 - Caffe2's name
        if not 0 <= i < len(self.def_.input):
            raise GradientError(f"input index {i} out of range ({len(self.def_.input)} inputs)")
        return self.def_.input[i]

    def O(self, i):  # noqa: E743 - Caffe2's name
        if not 0 <= i < len(self.def_.output):
            raise GradientError(f"output index {i} out of range ({len(self.def_.output)} outputs)")
        return self.def_.output[i]

    def GO(self, i):
        g = self.g_output[i]
        if g is None or isinstance(g, GradientSlice):
            raise GradientError(f"Gradient of output {self.O(i)} is either sparse or not provided.")
        return g

    def GO_I(self, i):
        return self._sparse_out(i).indices

    def GO_V(self, i):
        return self._sparse_out(i).values

    def GradOut(self, i):
        return self.g_output[i]

    def _sparse_out(self, i):
        g = self.g_output[i]
        if not isinstance(g, GradientSlice):
            raise GradientError(f"Gradient of output {self.O(i)} is either dense or not provided.")
        return g

    def GI(self, i):
        self.SetDense(i, self.I(i) + "_grad")
        return self.g_input[i]

    def GI_I(self, i):
        self._check_not_dense(i)
        g = self.g_input[i] or GradientSlice("", "")
        self.g_input[i] = g._replace(indices=self.I(i) + "_grad_indices")
        return self.g_input[i].indices

    def GI_V(self, i):
        self._check_not_dense(i)
        g = self.g_input[i] or GradientSlice("", "")
        self.g_input[i] = g._replace(values=self.I(i) + "_grad_values")
        return self.g_input[i].values

    def SetDense(self, i, name):
        if isinstance(self.g_input[i], GradientSlice):
            raise GradientError(f"Input {self.I(i)} already set to sparse.")
        self.g_input[i] = str(name)

    def SetSparse(self, i, indices, values):
        self._check_not_dense(i)
        self.g_input[i] = GradientSlice(str(indices), str(values))

    def _check_not_dense(self, i):
        if isinstance(self.g_input[i], str):
            raise GradientError(f"Input {self.I(i)} already set to dense.")

    # building ops
    @staticmethod
    def create_op(op_type, inputs, outputs, name="", **args):
        """One OperatorDef (C++ CreateOperatorDef); args as keyword arguments."""
        return _op_def(op_type, inputs, outputs, name=name, **args)

    @classmethod
    def single_op(cls, op_type, inputs, outputs, name="", **args):
        """C++ SingleGradientDef: a list holding one OperatorDef."""
        return [cls.create_op(op_type, inputs, outputs, name=name, **args)]

    # the protocol
    def verify_op(self):
        """C++ VerifyOp: the forward op must pass its schema's arity check."""
        from c2core import registry
        # what is registered so far: building gradients must not trigger plugin loading
        schema = registry.get().schemas.get(self.def_.type)
        if schema is None:
            return
        for what, arity, n in (("inputs", schema.inputs_arity, len(self.def_.input)),
                               ("outputs", schema.outputs_arity, len(self.def_.output))):
            if not arity.ok(n):
                raise SchemaError(
                    f"(GradientMaker) Operator def did not pass schema checking: "
                    f"{self.def_.type} takes {arity} {what}, got {n}")

    def get_gradient_defs(self):
        raise GradientError(f"no gradient defined for operator {self.def_.type}")

    def get(self):
        """(ops, g_input) with GetGradientForOp's copying applied."""
        self.verify_op()
        ops = self.get_gradient_defs()
        if ops is None:
            ops = []
        elif isinstance(ops, caffe2_pb2.OperatorDef):
            ops = [ops]
        ops = list(ops)
        fwd = self.def_
        for op in ops:
            op.is_gradient_op = True
            if self.copy_device_option and fwd.HasField("device_option"):
                op.device_option.CopyFrom(fwd.device_option)
            if self.copy_engine and fwd.HasField("engine"):
                op.engine = fwd.engine
            if self.copy_arguments:
                own = {a.name for a in op.arg}
                # a name the grad op sets itself wins (C++ would reject the duplicate)
                op.arg.extend(a for a in fwd.arg if a.name not in own)
        return ops, list(self.g_input)

    @classmethod
    def make(cls, op_def, g_output):
        """The maker as a plain ``fn(op_def, g_output)``."""
        return cls(op_def, g_output).get()


class NoGradient(GradientMaker):
    """NO_GRADIENT: the op is differentiable to nothing; gradients stop here."""

    def get_gradient_defs(self):
        return []


class ShouldNotDoGradient(GradientMaker):
    """SHOULD_NOT_DO_GRADIENT: asking for this op's gradient is an error."""

    def get(self):
        raise GradientError(f"One should not call gradient for operator {self.def_.type}.")


class GradientNotImplementedYet(GradientMaker):
    """GRADIENT_NOT_IMPLEMENTED_YET: the gradient exists but nobody wrote it."""

    def get(self):
        raise GradientError(
            f"Operator {self.def_.type} should have a gradient but is not implemented yet.")


class _ZeroGradientMaker(GradientMaker):
    """ZeroGradient(X): X's gradient is zeros (ConstantFill value=0 like X)."""

    def get_gradient_defs(self):
        return self.single_op("ConstantFill", [self.I(0)], [self.GI(0)], value=0.0)


def _as_maker(fn):
    if isinstance(fn, type) and issubclass(fn, GradientMaker):
        return fn.make
    if not callable(fn):
        raise TypeError(f"a gradient maker must be callable, got {fn!r}")
    return fn


class _PackMaker:
    """Tags makers that came from op packs, so they can be cleared as a group."""

    __slots__ = ("fn", "origin")

    def __init__(self, fn, origin):
        self.fn = _as_maker(fn)
        self.origin = origin

    def __call__(self, op_def, g_output):
        return self.fn(op_def, g_output)

    def __repr__(self):
        return f"<pack gradient maker {self.origin!r}>"


# The IR itself treats these two specially, so they work with no pack loaded.
_CORE_MAKERS = {
    "StopGradient": NoGradient.make,
    "ZeroGradient": _ZeroGradientMaker.make,
}


# -- the IR -----------------------------------------------------------------

class IR:
    """Versioned (SSA-like) view of a forward net, played backwards.

    Each write of a blob makes a new version; a gradient op may only read
    the versions still live, a gradient belongs to one version
    (``gradient_frontier``), and a version read by several ops gets its
    gradients summed once the first reader has been processed.
    """

    def __init__(self, operators):
        self.ssa = []
        self.input_usages = defaultdict(lambda: defaultdict(list))
        self.frontier = defaultdict(int)
        self.gradient_frontier = {}
        self.gradient_generators = defaultdict(lambda: defaultdict(list))
        self.out_version_history = defaultdict(list)
        self.in_version_history = defaultdict(list)
        for op in operators:
            self.Play(op)
        self.SanityCheck(operators)

    def SanityCheck(self, operators):
        for op in operators:
            if op.type == "StopGradient" and op.output and op.output[0] not in self.input_usages:
                raise StopGradientOrphanError(
                    f"StopGradient's output '{op.output[0]}' is orphan (no op reads it). "
                    f"You typically want the same blob as StopGradient's input and output. "
                    f"Op: {_describe_op(op)}")

    def Play(self, op):
        """Record one forward op: inputs at their live version, outputs bumped."""
        in_versions = {}
        for s in op.input:
            in_versions[s] = self.frontier[s]
            self.input_usages[s][self.frontier[s]].append(len(self.ssa))
            self.in_version_history[s].append((op, self.frontier[s]))
        out_versions = {}
        for s in op.output:
            if s in self.frontier:
                self.frontier[s] += 1
            out_versions[s] = self.frontier[s]
            self.out_version_history[s].append((op, self.frontier[s]))
        self.ssa.append(OpSSA(op, in_versions, out_versions))

    # -- checks ---------------------------------------------------------------
    def _history(self, name, table, label, hint):
        lines = [f"DEBUG HELP:\n{hint}\n== Version history of blob [{name}]"]
        for op, version in table[name]:
            lines.append(f"version ({label}) {version} <-- {_describe_op(op)}")
        return "\n".join(lines)

    def CheckGradientOperatorInput(self, grad_op_input, g_output, fwd_op_idx,
                                   locally_generated_blobs):
        """A gradient op may read only live versions or blobs made just before it."""
        forward_op, in_versions, out_versions = self.ssa[fwd_op_idx]
        original_index = GetIndexFromGradientList(g_output, grad_op_input)
        if original_index is not None:
            original_name = forward_op.output[original_index]
            if out_versions[original_name] != self.gradient_frontier.get(original_name):
                raise GradientError(
                    f'Gradient name "{grad_op_input}" is expected to correspond to version '
                    f'{out_versions[original_name]} of "{original_name}", but currently we have '
                    f'version {self.gradient_frontier.get(original_name)} '
                    f'(gradient of {_describe_op(forward_op)}).\n\n'
                    + self._history(original_name, self.out_version_history, "out",
                                    "Maybe you use same output blob twice for different ops?"))
        elif grad_op_input in out_versions:
            if self.frontier[grad_op_input] != out_versions[grad_op_input]:
                raise GradientError(
                    f'Gradient operator needs output "{grad_op_input}" at version '
                    f'{out_versions[grad_op_input]}, but currently we have version '
                    f'{self.frontier[grad_op_input]} (gradient of {_describe_op(forward_op)}).\n\n'
                    + self._history(grad_op_input, self.out_version_history, "out",
                                    "Maybe you use same output blob twice for different ops?"))
        elif grad_op_input in in_versions:
            if self.frontier[grad_op_input] != in_versions[grad_op_input]:
                raise GradientError(
                    f'Gradient operator needs input "{grad_op_input}" at version '
                    f'{in_versions[grad_op_input]}, but currently we have version '
                    f'{self.frontier[grad_op_input]} (gradient of {_describe_op(forward_op)}).\n\n'
                    + self._history(grad_op_input, self.in_version_history, "in",
                                    "Maybe the blob was overwritten by another op?"))
        elif grad_op_input not in locally_generated_blobs:
            raise GradientError(
                f'Blob name "{grad_op_input}" not in the scope of operator '
                f'{_describe_op(forward_op)} and is not generated by any of the local '
                f'gradient operators.')

    # -- generators -------------------------------------------------------------
    def AppendSparseGenerators(self, sparse_generators):
        """Merge the indices-half and values-half generators of one slice."""
        for name, by_version in sparse_generators.items():
            for version, gens in by_version.items():
                if len(gens) == 1:
                    gen = gens[0]
                else:
                    (op1_i, idx1_i, op1_v, idx1_v, g1), (op2_i, idx2_i, op2_v, idx2_v, g2) = gens
                    assert g1 == g2
                    gen = SparseGradGenMeta(op1_i or op2_i, idx1_i + idx2_i,
                                            op1_v or op2_v, idx1_v + idx2_v, g1)
                self.gradient_generators[name][version].append(gen)

    def BuildGradientGenerators(self, fwd_op_idx, gradient_ops, g_output, g_input):
        """Check the grad ops; note which op (or pass-through) makes which input gradient."""
        forward_op, in_versions, _ = self.ssa[fwd_op_idx]
        locally_generated_blobs = []
        sparse_generators = defaultdict(lambda: defaultdict(list))

        for grad_op in gradient_ops:
            for s in grad_op.input:
                self.CheckGradientOperatorInput(s, g_output, fwd_op_idx, locally_generated_blobs)
            locally_generated_blobs.extend(str(s) for s in grad_op.output)
            for i, output in enumerate(grad_op.output):
                input_index = GetIndexFromGradientList(g_input, output)
                if input_index is None:
                    continue
                input_name = forward_op.input[input_index]
                input_version = in_versions[input_name]
                g = g_input[input_index]
                if isinstance(g, GradientSlice):
                    if g.indices == output:
                        m = SparseGradGenMeta(grad_op, i, None, 0, g)
                    else:
                        m = SparseGradGenMeta(None, 0, grad_op, i, g)
                    sparse_generators[input_name][input_version].append(m)
                else:
                    self.gradient_generators[input_name][input_version].append(
                        GradGenMeta(grad_op, i, g))

        self.AppendSparseGenerators(sparse_generators)

        # Pass-through gradients (Add, Sum...: g_input names an existing blob,
        # no op makes it) still count as generators for the accumulation.
        for input_index, g in enumerate(g_input):
            if not g:
                continue
            input_name = forward_op.input[input_index]
            input_version = in_versions[input_name]
            if isinstance(g, GradientSlice):
                if g.indices not in locally_generated_blobs and \
                        g.values not in locally_generated_blobs:
                    self.gradient_generators[input_name][input_version].append(
                        SparseGradGenMeta(None, 0, None, 0, g))
            elif g not in locally_generated_blobs:
                self.gradient_generators[input_name][input_version].append(
                    GradGenMeta(None, 0, g))

        for i, g in enumerate(g_input):
            if g is not None:
                input_name = forward_op.input[i]
                self.gradient_frontier[input_name] = in_versions[input_name]

    # -- accumulation -------------------------------------------------------------
    def _GetSumOpOutputName(self, generators, input_name):
        def strip(s, suffix):
            return s.removesuffix(suffix)

        for g in generators:
            if isinstance(g, GradGenMeta):
                if g.grad_op:
                    return g.grad_op.output[g.idx]
            else:
                if g.grad_op_indices:
                    return strip(g.grad_op_indices.output[g.idx_indices], "_indices")
                if g.grad_op_values:
                    return strip(g.grad_op_values.output[g.idx_values], "_values")
        return input_name + "_grad"

    def _SetSumOpsDeviceOption(self, sum_ops, generators):
        # devices were checked to agree: the first grad op found decides
        for g in generators:
            grad_op = g.grad_op if isinstance(g, GradGenMeta) else (
                g.grad_op_values or g.grad_op_indices)
            if grad_op:
                if grad_op.HasField("device_option"):
                    for op in sum_ops:
                        op.device_option.CopyFrom(grad_op.device_option)
                break

    def _DisambiguateGradOpOutput(self, grad_op, idx, cnt):
        grad_op.output[idx] = f"_{grad_op.output[idx]}_autosplit_{cnt}"
        return grad_op.output[idx], cnt + 1

    def _CheckSumOpsConflict(self, out_base_name, g):
        if str(out_base_name) == str(g):
            raise GradientError(
                f"The pass-through gradient '{g}' has the same name as the accumulated "
                f"gradient it would be summed into.")

    def _MakeDenseSumOps(self, generators, out_base_name):
        sum_inputs = []
        cnt = 0
        first_grad_op = True
        for grad_op, idx, g in generators:
            if grad_op:
                if first_grad_op:
                    first_grad_op = False
                    out = grad_op.output[idx]
                else:
                    out, cnt = self._DisambiguateGradOpOutput(grad_op, idx, cnt)
                sum_inputs.append(out)
            else:
                self._CheckSumOpsConflict(out_base_name, g)
                sum_inputs.append(str(g))
        if out_base_name in sum_inputs:
            # Sum runs in place only on its first input
            k = sum_inputs.index(out_base_name)
            sum_inputs[0], sum_inputs[k] = sum_inputs[k], sum_inputs[0]
        return [_ir_op("Sum", sum_inputs, [out_base_name])], out_base_name

    def _MakeSparseSumOps(self, generators, out_base_name):
        indices_in, values_in = [], []
        cnt_i = cnt_v = 0
        for op_i, idx_i, op_v, idx_v, g in generators:
            if op_i:
                out, cnt_i = self._DisambiguateGradOpOutput(op_i, idx_i, cnt_i)
                indices_in.append(out)
            else:
                self._CheckSumOpsConflict(out_base_name, g.indices)
                indices_in.append(g.indices)
            if op_v:
                out, cnt_v = self._DisambiguateGradOpOutput(op_v, idx_v, cnt_v)
                values_in.append(out)
            else:
                self._CheckSumOpsConflict(out_base_name, g.values)
                values_in.append(g.values)
        # A sparse sum is a concatenation; duplicate indices are left for the
        # optimizer to merge, as in Caffe2.
        indices_out = out_base_name + "_indices_concat"
        values_out = out_base_name + "_values_concat"
        sum_ops = [
            _ir_op("Concat", indices_in, [indices_out, out_base_name + "_indices_concat_split"],
                   axis=0),
            _ir_op("Concat", values_in, [values_out, out_base_name + "_values_concat_split"],
                   axis=0),
        ]
        return sum_ops, GradientSlice(indices=indices_out, values=values_out)

    def _MakeSumOps(self, input_name, input_version):
        generators = self.gradient_generators[input_name][input_version]
        out_base_name = self._GetSumOpOutputName(generators, input_name)
        if isinstance(generators[0], GradGenMeta):
            sum_ops, g = self._MakeDenseSumOps(generators, out_base_name)
        else:
            sum_ops, g = self._MakeSparseSumOps(generators, out_base_name)
        self._SetSumOpsDeviceOption(sum_ops, generators)
        return sum_ops, g

    def _VerifyGradientGenerators(self, generators):
        if len({type(g) for g in generators}) > 1:
            raise GradientError(
                "Automatic aggregation of a mix of sparse and dense gradients is not supported")
        if len(generators) < 2:
            return False
        devices = []
        for g in generators:
            if isinstance(g, GradGenMeta):
                if g.grad_op:
                    devices.append(g.grad_op.device_option)
            else:
                if g.grad_op_indices:
                    devices.append(g.grad_op_indices.device_option)
                if g.grad_op_values:
                    devices.append(g.grad_op_values.device_option)
        if any(not _device_option_equal(d, devices[0]) for d in devices[1:]):
            raise GradientError("not all grad ops have the same device option")
        return True

    def DoGradientAccumulation(self, fwd_op_idx):
        """Sum a version's gradients once its first reader has been processed.

        Needed when the input version was read by several ops, this op is the
        first of them (so the last one visited backwards) and more than one
        gradient was produced. Every produced gradient but the first is
        renamed ``_<grad>_autosplit_<n>`` and a Sum writes ``<grad>``.
        """
        forward_op, in_versions, _ = self.ssa[fwd_op_idx]
        sum_ops_all = []
        grad_map = {}
        for input_name in dict.fromkeys(forward_op.input):
            input_version = in_versions[input_name]
            usage = self.input_usages[input_name][input_version]
            if len(usage) <= 1 or fwd_op_idx != usage[0]:
                continue
            generators = self.gradient_generators[input_name][input_version]
            try:
                if not self._VerifyGradientGenerators(generators):
                    continue
            except GradientError as e:
                raise GradientError(
                    f"Gradients for param '{input_name}' failed to verify: {e}") from e
            sum_ops, g = self._MakeSumOps(input_name, input_version)
            sum_ops_all.extend(sum_ops)
            grad_map[input_name] = g
        return sum_ops_all, grad_map

    # -- the backward pass --------------------------------------------------------
    def _GetInitGradients(self, ys):
        input_to_grad = {}
        gradient_ops = []
        for y, g in ys.items():
            autograd_op = None
            if g is None:
                autograd_op = _ir_op("ConstantFill", [y], [y + AUTOGEN_GRAD_SUFFIX], value=1.0)
                gradient_ops.append(autograd_op)
                g = autograd_op.output[0]
            input_to_grad[y] = _normalize_grad(g)
            if autograd_op is not None:
                # the autogenerated gradient belongs to y's last version
                self.gradient_generators[y][self.frontier[y]].append(
                    GradGenMeta(autograd_op, 0, input_to_grad[y]))
        return input_to_grad, gradient_ops

    def _GenerateGradientsForForwardOp(self, forward_op_idx, input_to_grad):
        new_input_to_grad = {}
        gradient_ops = []
        forward_op = self.ssa[forward_op_idx].op
        g_output = [input_to_grad.get(name) for name in forward_op.output]
        if any(g is not None for g in g_output) or forward_op.type == "ZeroGradient":
            gradient_ops, g_input = GradientRegistry.GetGradientForOp(forward_op, g_output)
            self.BuildGradientGenerators(forward_op_idx, gradient_ops, g_output, g_input)
            outputs = list(forward_op.output)
            for name, grad in zip(forward_op.input, g_input):
                # keep an existing gradient unless this op rewrote the blob
                if grad is not None or name not in input_to_grad or name in outputs:
                    new_input_to_grad[name] = grad
        return new_input_to_grad, gradient_ops

    def GetBackwardPass(self, ys):
        """(gradient ops, {blob: gradient}) for the blobs `ys`.

        `ys` is a list (each gradient auto-filled with ones, named
        ``<y>_autogen_grad``) or a dict {y: gradient blob or None}.
        """
        if isinstance(ys, (list, tuple)):
            ys = {str(y): None for y in ys}
        elif isinstance(ys, dict):
            ys = {str(y): g for y, g in ys.items()}
        else:
            raise TypeError("ys should either be a list or a dict.")

        for y in ys:
            self.gradient_frontier[y] = self.frontier[y]
            self.input_usages[y][self.frontier[y]].append(len(self.ssa))

        all_input_to_grad, all_gradient_ops = self._GetInitGradients(ys)

        for forward_op_idx in reversed(range(len(self.ssa))):
            input_to_grad, gradient_ops = self._GenerateGradientsForForwardOp(
                forward_op_idx, all_input_to_grad)
            all_input_to_grad.update(input_to_grad)
            all_gradient_ops += gradient_ops
            sum_ops, grad_map = self.DoGradientAccumulation(forward_op_idx)
            all_input_to_grad.update(grad_map)
            all_gradient_ops += sum_ops

        result = {}
        for key, val in all_input_to_grad.items():
            if val is None:
                continue
            if isinstance(val, GradientSlice):
                val = GradientSlice(_blob_ref(val.indices), _blob_ref(val.values))
            else:
                val = _blob_ref(val)
            result[_blob_ref(key)] = val
        return all_gradient_ops, result


# -- the registry -------------------------------------------------------------

class GradientRegistry:
    """Op type -> gradient maker: Caffe2's Python registry plus the packs' makers.

    ``RegisterGradient`` is Caffe2's decorator; ``register``/``register_no_gradient``
    are what a pack's registrar calls. One dict holds both, so a
    ``snapshot()``/``restore()`` pair saves and resets everything.
    """

    gradient_registry_: ClassVar[dict] = {}

    @classmethod
    def RegisterGradient(cls, op_type):
        """Decorator: ``@GradientRegistry.RegisterGradient("MyOp")``."""
        def Wrapper(func):
            cls.gradient_registry_[op_type] = _as_maker(func)
            return func
        return Wrapper

    @classmethod
    def register(cls, op_type, fn, origin=""):
        """A pack's maker: a function ``fn(op_def, g_output)`` or a GradientMaker class."""
        cls.gradient_registry_[op_type] = _PackMaker(fn, origin or op_type)
        return fn

    @classmethod
    def register_no_gradient(cls, op_type, origin=""):
        """NO_GRADIENT: gradients stop at this op instead of being an error."""
        cls.gradient_registry_[op_type] = _PackMaker(NoGradient, origin or op_type)

    @classmethod
    def has_gradient(cls, op_type):
        return op_type in cls.gradient_registry_ or op_type in _CORE_MAKERS

    @classmethod
    def describe(cls, op_type):
        """How `op_type` differentiates, in words, for the catalogue and ``c2 ops show``."""
        maker = cls.gradient_registry_.get(op_type) or _CORE_MAKERS.get(op_type)
        if maker is None:
            return "none registered (a backward pass through it is an error)"
        fn = getattr(maker, "fn", maker)
        if fn is NoGradient or getattr(fn, "__self__", None) is NoGradient:
            return "none (NO_GRADIENT: gradients stop here)"
        return "registered"

    @classmethod
    def snapshot(cls):
        return dict(cls.gradient_registry_)

    @classmethod
    def restore(cls, saved):
        cls.gradient_registry_.clear()
        cls.gradient_registry_.update(saved)

    @classmethod
    def clear_pack_gradients(cls):
        """Forget every pack's makers; ``RegisterGradient`` ones stay."""
        for op_type in [t for t, f in cls.gradient_registry_.items() if isinstance(f, _PackMaker)]:
            del cls.gradient_registry_[op_type]

    @classmethod
    def GetGradientForOp(cls, op, g_output):
        """(grad_ops, g_input) for one forward op, errors naming the op."""
        maker = cls.gradient_registry_.get(op.type) or _CORE_MAKERS.get(op.type)
        if maker is None:
            raise GradientError(
                f"Gradient maker for operator {op.type} not implemented: no gradient is "
                f"registered for it, but a gradient is needed for {_describe_op(op)}. "
                f"If it should stop gradients, register it with no_gradient(), "
                f"or put a StopGradient before its use.")
        g_output = [_normalize_grad(g) for g in g_output]
        try:
            gradient_ops, g_input = maker(op, g_output)
        except C2Error as e:
            raise GradientError(
                f"Exception when creating gradient for [{op.type}]: {e}\nOp: {_describe_op(op)}"
            ) from e
        except Exception as e:
            e.add_note(f"(while creating the gradient of operator {_describe_op(op)})")
            raise
        if gradient_ops is None:
            gradient_ops = []
        elif isinstance(gradient_ops, caffe2_pb2.OperatorDef):
            gradient_ops = [gradient_ops]
        else:
            gradient_ops = list(gradient_ops)
        g_input = list(g_input) if g_input is not None else [None] * len(op.input)
        if len(g_input) != len(op.input):
            raise GradientError(
                f"The gradient maker of {op.type} returned {len(g_input)} input gradients for "
                f"{len(op.input)} inputs. Op: {_describe_op(op)}")
        return gradient_ops, [_normalize_grad(g) for g in g_input]

    @classmethod
    def GetBackwardPass(cls, operators, ys, ys_generate_gradient=False):
        """Gradient ops and the {blob: gradient} map for `operators` (see IR.GetBackwardPass).

        ``ys_generate_gradient`` is accepted and ignored, as in Caffe2.
        """
        return IR(operators).GetBackwardPass(ys)
