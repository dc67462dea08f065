# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, auto_pickle=False
"""The few kernels the core needs itself: Sum (gradient accumulation) and Free."""
cimport numpy as cnp
import numpy as np

from c2core._runtime cimport Blob, OperatorBase, output_like
from c2core.errors import OperatorError
from c2core.schema import Cost, OpSchema

cnp.import_array()

ctypedef fused num_t:
    float
    double
    int
    long long

# Below this many elements releasing the GIL costs more than it frees.
DEF NOGIL_MIN = 32768


cdef void _sum_into(num_t* out, char** ins, Py_ssize_t n_in, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, k
    cdef num_t* a = <num_t*>ins[0]
    cdef num_t* b
    if n_in == 1:
        if out != a:
            for i in range(n):
                out[i] = a[i]
        return
    b = <num_t*>ins[1]
    for i in range(n):
        out[i] = a[i] + b[i]
    for k in range(2, n_in):
        b = <num_t*>ins[k]
        for i in range(n):
            out[i] += b[i]


cdef class SumOp(OperatorBase):
    """Elementwise sum of equally shaped tensors."""
    cdef char* ptrs[64]

    def setup(self):
        if len(self.inputs) > 64:
            raise OperatorError(f"Sum takes at most 64 inputs, got {len(self.inputs)}")

    cdef int run_c(self) except -1:
        cdef Py_ssize_t k, n_in = len(self.inputs)
        cdef cnp.ndarray x0 = self._checked(0, None)
        cdef cnp.ndarray xk
        for k in range(n_in):
            xk = self._checked(k, x0)
            self.ptrs[k] = <char*>cnp.PyArray_DATA(xk)
        cdef Blob out_blob = <Blob>self.outputs[0]
        cdef cnp.ndarray out
        if out_blob is self.inputs[0]:
            out = x0
        else:
            out = output_like(out_blob, x0)
        cdef Py_ssize_t n = cnp.PyArray_SIZE(x0)
        cdef int t = cnp.PyArray_TYPE(x0)
        cdef void* o = cnp.PyArray_DATA(out)
        if n >= NOGIL_MIN:
            with nogil:
                _dispatch(t, o, self.ptrs, n_in, n)
        else:
            _dispatch(t, o, self.ptrs, n_in, n)
        return 0

    cdef cnp.ndarray _checked(self, Py_ssize_t k, cnp.ndarray ref):
        v = self.input_value(k)
        if type(v) is not np.ndarray:
            raise OperatorError(f"input {k} '{(<Blob>self.inputs[k]).name}' holds a "
                                f"{type(v).__name__}, not a tensor")
        cdef cnp.ndarray a = <cnp.ndarray>v
        if ref is None:
            if cnp.PyArray_TYPE(a) not in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64, cnp.NPY_INT32, cnp.NPY_INT64):
                raise OperatorError(f"input 0 '{(<Blob>self.inputs[0]).name}' has dtype {a.dtype}; "
                                    "Sum supports float32, float64, int32 and int64")
        elif a is not ref:
            if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(ref) or not _same_shape(a, ref):
                raise OperatorError(
                    f"input {k} '{(<Blob>self.inputs[k]).name}' is {a.dtype} {list((<object>a).shape)} but input 0 "
                    f"'{(<Blob>self.inputs[0]).name}' is {ref.dtype} {list((<object>ref).shape)}; "
                    "Sum needs equal shapes and types")
        if not cnp.PyArray_ISCARRAY_RO(a):
            a = np.ascontiguousarray(a)
            (<Blob>self.inputs[k]).value = a
        return a


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int k, nd = cnp.PyArray_NDIM(a)
    if nd != cnp.PyArray_NDIM(b):
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(a)[k] != cnp.PyArray_DIMS(b)[k]:
            return False
    return True


cdef inline void _dispatch(int t, void* o, char** ins, Py_ssize_t n_in, Py_ssize_t n) noexcept nogil:
    if t == cnp.NPY_FLOAT32:
        _sum_into(<float*>o, ins, n_in, n)
    elif t == cnp.NPY_FLOAT64:
        _sum_into(<double*>o, ins, n_in, n)
    elif t == cnp.NPY_INT32:
        _sum_into(<int*>o, ins, n_in, n)
    else:
        _sum_into(<long long*>o, ins, n_in, n)


class FreeOp(OperatorBase):
    """Drops what its blobs hold, keeping the blobs themselves."""

    def run(self):
        for b in self.outputs:
            b.value = None


def _sum_cost(op, args, inputs):
    size = int(np.prod(inputs[0].shape)) if inputs and inputs[0].shape is not None else 0
    item = inputs[0].dtype.itemsize if inputs and inputs[0].dtype is not None else 4
    return Cost(flops=size * max(0, len(inputs) - 1), bytes_read=size * item * len(inputs),
                bytes_written=size * item)


def _sum_example():
    from c2core import core, workspace
    workspace.FeedBlob("a", np.array([1.0, 2.0, 3.0], dtype=np.float32))
    workspace.FeedBlob("b", np.array([10.0, 20.0, 30.0], dtype=np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("Sum", ["a", "b"], ["c"]))
    return {"c": workspace.FetchBlob("c")}


SUM = (OpSchema("Sum")
       .num_inputs(1, 64).num_outputs(1)
       .input(0, "data_0", "First of the tensors to add; every input has its shape and type.")
       .output(0, "sum", "Elementwise sum of all inputs, shaped like them.")
       .allow_inplace([(0, 0)])
       .identical_type_and_shape()
       .cost_inference(_sum_cost)
       .doc("Adds any number of equally shaped tensors elementwise (no broadcasting). "
            "Supports float32, float64, int32 and int64. The output may be computed in "
            "place of the first input. The gradient machinery uses it to accumulate the "
            "gradients of a blob read by several operators.")
       .category("Elementwise")
       .example(_sum_example))

FREE = (OpSchema("Free")
        .num_inputs(1, None).num_outputs(1, None)
        .input(0, "blobs", "Blobs whose contents are released.")
        .output(0, "blobs", "The same blobs, now empty.")
        .enforce_inplace(lambda i, o: i == o)
        .doc("Releases the memory held by the given blobs; the blobs stay in the "
             "workspace, empty. Outputs must be the inputs, one to one.")
        .category("Workspace"))


def register(registrar):
    registrar.schema(SUM)
    registrar.kernel("Sum", SumOp)
    registrar.gradient("Sum", lambda op, g_output: ([], [g_output[0]] * len(op.input)))
    registrar.schema(FREE)
    registrar.kernel("Free", FreeOp)
    registrar.no_gradient("Free")
