"""Builds c2core: the Cython runtime extensions and the module generated from caffe2.proto."""
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# caffe2_pb2.py is generated, never committed: write it into the source tree so
# regular, editable and sdist builds all ship it.
sys.path.insert(0, os.path.join(HERE, "c2core", "proto"))
import build as proto_build  # noqa: E402

proto_build.generate(os.path.join(HERE, "c2core", "proto"))

extensions = [
    Extension(name, [path], include_dirs=[numpy.get_include()],
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
              extra_compile_args=["-O3"])
    for name, path in [
        ("c2core._runtime", "c2core/_runtime.pyx"),
        ("c2core.ops.structural", "c2core/ops/structural.pyx"),
    ]
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": 3, "auto_pickle": False}))
