"""A pack compiled against the installed core: the Cython operator contract works end to end."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import c2core
from c2core import core, registry, workspace
from c2core.hookspecs import hookimpl
from c2core.schema import OpSchema

PYX = """
# cython: language_level=3, boundscheck=False, wraparound=False
cimport numpy as cnp
from c2core._runtime cimport Blob, OperatorBase, output_like
cnp.import_array()

cdef class AffineOp(OperatorBase):
    cdef double scale, shift

    def setup(self):
        self.scale = self.args["scale"]
        self.shift = self.args["shift"]

    cdef int run_c(self) except -1:
        cdef cnp.ndarray x = self.input_value(0)
        cdef cnp.ndarray y = output_like(<Blob>self.outputs[0], x)
        cdef double* xs = <double*>cnp.PyArray_DATA(x)
        cdef double* ys = <double*>cnp.PyArray_DATA(y)
        cdef Py_ssize_t i, n = cnp.PyArray_SIZE(x)
        with nogil:
            for i in range(n):
                ys[i] = xs[i] * self.scale + self.shift
        return 0
"""

SETUP = """
import numpy, c2core
from Cython.Build import cythonize
from setuptools import Extension, setup
ext = Extension("affine_pack", ["affine_pack.pyx"], include_dirs=[numpy.get_include(), c2core.get_include()])
setup(name="affine_pack", ext_modules=cythonize([ext], include_path=[c2core.get_include()], quiet=True))
"""


@pytest.fixture(scope="module")
def affine_module(tmp_path_factory):
    pytest.importorskip("Cython")
    d = tmp_path_factory.mktemp("cypack")
    (d / "affine_pack.pyx").write_text(textwrap.dedent(PYX))
    (d / "setup.py").write_text(textwrap.dedent(SETUP))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([c2core.get_include(), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=d,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    sys.path.insert(0, str(d))
    try:
        import affine_pack
        yield affine_pack
    finally:
        sys.path.remove(str(d))


def test_cython_kernel_from_another_extension_runs_in_the_executor(affine_module):
    class Pack:
        @hookimpl
        def c2core_register_ops(self, registrar):
            registrar.schema(OpSchema("Affine").num_inputs(1).num_outputs(1)
                             .input(0, "X", "float64 tensor").output(0, "Y", "scale * X + shift")
                             .arg("scale", float, 1.0, "multiplier").arg("shift", float, 0.0, "offset")
                             .identical_type_and_shape().doc("Affine map, compiled."))
            registrar.kernel("Affine", affine_module.AffineOp)

    with registry.isolated() as reg:
        reg.register(Pack(), name="affine")
        x = np.linspace(-1, 1, 7)
        workspace.FeedBlob("x", x)
        net = core.Net("cy")
        net.Affine(["x"], ["y"], scale=3.0, shift=0.5)
        net.Affine(["y"], ["z"], scale=-1.0)
        workspace.CreateNet(net)
        workspace.RunNet(net, 4)
        np.testing.assert_allclose(workspace.FetchBlob("z"), -(3 * x + 0.5))
        assert isinstance(workspace.current().nets[net.Name()].ops[0], c2core.operator.Operator)
