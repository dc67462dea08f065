"""``import c2core.compat`` makes ``caffe2.python.X`` and ``caffe2.proto.X`` mean c2core's.

An import hook maps ``caffe2.python.<mod>`` to ``c2core.<mod>`` and
``caffe2.proto.<mod>`` to ``c2core.proto.<mod>``, so any module c2core grows
(brew, model_helper, ...) is reachable under its Caffe2 name without a list.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

_PREFIXES = {
    "caffe2.python": "c2core",
    "caffe2.proto": "c2core.proto",
}


def target_of(fullname: str):
    """The c2core module a caffe2 module name stands for, or None."""
    for prefix, target in _PREFIXES.items():
        if fullname == prefix:
            return target
        if fullname.startswith(prefix + "."):
            return target + fullname[len(prefix):]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Hands out the real c2core module, undoing what the import system stamps on it."""

    def __init__(self, target):
        self.target = target
        self._own_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self._own_spec
        module.__loader__ = self._own_spec.loader


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "caffe2":
            return importlib.machinery.ModuleSpec(fullname, _PackageLoader(), is_package=True)
        dest = target_of(fullname)
        if dest is None:
            return None
        real = importlib.util.find_spec(dest)
        if real is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(dest),
                                              is_package=real.submodule_search_locations is not None)


class _PackageLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__doc__ = "caffe2 compatibility namespace provided by c2core.compat"
        return module

    def exec_module(self, module):
        pass


def install():
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())


install()
