"""``import c2core.compat``: Caffe2's module names point at c2core's modules.

Checked twice: in this process (with cleanup, so other tests see no
``caffe2`` modules afterwards) and in fresh interpreters, where no module
imported by another test can hide a bug in the import hook.
"""
import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MISSING = object()

# A Caffe2 user's script, unchanged: only Caffe2 imports.
CAFFE2_SCRIPT = textwrap.dedent("""
    import numpy as np
    from caffe2.python import core, workspace
    from caffe2.proto import caffe2_pb2

    workspace.ResetWorkspace()
    workspace.FeedBlob("a", np.array([1.0, 2.0, 3.0], dtype=np.float32))
    workspace.FeedBlob("b", np.array([10.0, 20.0, 30.0], dtype=np.float32))
    op = core.CreateOperator("Sum", ["a", "b"], ["c"])
    assert isinstance(op, caffe2_pb2.OperatorDef)
    workspace.RunOperatorOnce(op)
    c = workspace.FetchBlob("c")
    assert c.dtype == np.float32 and c.tolist() == [11.0, 22.0, 33.0], c

    net = core.Net("adder")
    net.Sum(["a", "c"], "d")
    workspace.RunNetOnce(net)
    assert workspace.FetchBlob("d").tolist() == [12.0, 24.0, 36.0]
    workspace.CreateNet(net)
    workspace.RunNet(net.Proto().name, 2)
    assert workspace.HasBlob("d") and "d" in workspace.Blobs()

    device = core.DeviceOption(caffe2_pb2.CPU, 0)
    with core.DeviceScope(device):
        scoped = core.CreateOperator("Sum", ["a"], ["e"])
    assert scoped.device_option.device_type == caffe2_pb2.CPU
    workspace.RunOperatorOnce(scoped)
    assert workspace.FetchBlob("e").tolist() == [1.0, 2.0, 3.0]
    RESULT = c.tolist()
""")


def _c2core_modules():
    return {name: mod for name, mod in sys.modules.items()
            if name == "c2core" or name.startswith("c2core.")}


@pytest.fixture
def compat():
    """Install the hook; afterwards drop caffe2.* modules, the hook, and undo its side effects."""
    saved = {name: (getattr(mod, "__spec__", None), mod.__dict__.get("__path__", _MISSING))
             for name, mod in _c2core_modules().items()}
    mod = importlib.import_module("c2core.compat")
    mod.install()
    from c2core import workspace
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
    yield mod
    workspace.ResetWorkspace()
    for name in [n for n in sys.modules if n == "caffe2" or n.startswith("caffe2.")]:
        del sys.modules[name]
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, mod._AliasFinder)]
    for name, module in _c2core_modules().items():
        if name in saved:
            spec, path = saved[name]
            module.__spec__ = spec
            if path is _MISSING:
                module.__dict__.pop("__path__", None)
            else:
                module.__path__ = path


def run_python(code):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


# ---------------------------------------------------------------------------
# in this process
# ---------------------------------------------------------------------------
def test_caffe2_python_core_and_workspace_are_c2cores(compat):
    from caffe2.python import core, workspace

    import c2core.core
    import c2core.workspace
    assert core is c2core.core
    assert workspace is c2core.workspace


def test_caffe2_proto_is_c2cores(compat):
    from caffe2.proto import caffe2_pb2

    import c2core.proto.caffe2_pb2
    assert caffe2_pb2 is c2core.proto.caffe2_pb2
    assert caffe2_pb2.NetDef is c2core.proto.caffe2_pb2.NetDef


def test_import_module_as_alias(compat):
    import caffe2.python.workspace as w

    import c2core.workspace
    assert w is c2core.workspace
    assert sys.modules["caffe2.python.workspace"] is c2core.workspace


def test_import_dotted_name_binds_the_package(compat):
    import caffe2.python.core

    import c2core
    import c2core.core
    assert caffe2.python.core is c2core.core
    assert sys.modules["caffe2.python"] is c2core


def test_caffe2_script_runs_unchanged(compat):
    scope = {}
    exec(compile(CAFFE2_SCRIPT, "<caffe2 script>", "exec"), scope)
    assert scope["RESULT"] == [11.0, 22.0, 33.0]
    from c2core import workspace
    np.testing.assert_array_equal(workspace.FetchBlob("c"), np.array([11, 22, 33], np.float32))


def test_missing_caffe2_module_is_module_not_found(compat):
    with pytest.raises(ModuleNotFoundError) as info:
        importlib.import_module("caffe2.python.nonexistent_mod")
    assert "nonexistent_mod" in str(info.value)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("caffe2.contrib.something")
    assert "caffe2.python.nonexistent_mod" not in sys.modules


def test_target_of_maps_names(compat):
    assert compat.target_of("caffe2.python") == "c2core"
    assert compat.target_of("caffe2.python.core") == "c2core.core"
    assert compat.target_of("caffe2.proto.caffe2_pb2") == "c2core.proto.caffe2_pb2"
    assert compat.target_of("caffe2.pythonic") is None
    assert compat.target_of("caffe2") is None
    assert compat.target_of("numpy") is None


def test_install_is_idempotent(compat):
    compat.install()
    compat.install()
    assert sum(isinstance(f, compat._AliasFinder) for f in sys.meta_path) == 1


def test_unrelated_imports_are_untouched(compat):
    import json
    assert importlib.import_module("json") is json
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("caffe2_not_a_prefix_match")


# ---------------------------------------------------------------------------
# in a fresh interpreter
# ---------------------------------------------------------------------------
def test_compat_in_a_fresh_interpreter():
    code = textwrap.dedent("""
        import sys
        assert not any(n == "caffe2" or n.startswith("caffe2.") for n in sys.modules)
        import c2core.compat
        from caffe2.python import core, workspace
        from caffe2.proto import caffe2_pb2
        import caffe2.python.workspace as w
        import c2core.core, c2core.workspace, c2core.proto.caffe2_pb2
        assert core is c2core.core, core
        assert workspace is c2core.workspace and w is c2core.workspace
        assert caffe2_pb2 is c2core.proto.caffe2_pb2
        try:
            import caffe2.python.nonexistent_mod
        except ModuleNotFoundError as e:
            assert "nonexistent_mod" in str(e)
        else:
            raise AssertionError("caffe2.python.nonexistent_mod imported")
        print("OK")
    """)
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


def test_caffe2_script_in_a_fresh_interpreter():
    proc = run_python("import c2core.compat\n" + CAFFE2_SCRIPT + "\nprint(RESULT)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[11.0, 22.0, 33.0]"


def test_caffe2_imports_fail_without_compat():
    proc = run_python("import caffe2.python.core")
    assert proc.returncode != 0
    assert "ModuleNotFoundError" in proc.stderr


def test_aliasing_a_submodule_first_loads_its_target():
    # caffe2.python.workspace imported before anything else from c2core
    proc = run_python(textwrap.dedent("""
        import sys
        import c2core.compat
        assert "c2core.workspace" not in sys.modules
        import caffe2.python.workspace as w
        import c2core.workspace
        assert w is c2core.workspace
        w.FeedBlob("x", [1, 2])
        assert c2core.workspace.FetchBlob("x").tolist() == [1, 2]
        print("OK")
    """))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


def test_aliasing_leaves_c2core_module_metadata_alone():
    proc = run_python(textwrap.dedent("""
        import importlib.resources, importlib.util
        import c2core.compat
        import caffe2.python.core
        import caffe2.proto.caffe2_pb2
        import c2core.core, c2core.proto
        problems = []
        if c2core.core.__spec__.name != "c2core.core":
            problems.append("c2core.core.__spec__ is " + c2core.core.__spec__.name)
        if hasattr(c2core.core, "__path__"):
            problems.append("c2core.core got a __path__")
        if importlib.util.find_spec("c2core.core").name != "c2core.core":
            problems.append("find_spec('c2core.core') is the alias")
        files = [p.name for p in importlib.resources.files("c2core.proto").iterdir()]
        if "caffe2.proto" not in files:
            problems.append("importlib.resources lost c2core.proto's files: %r" % files)
        print(problems)
    """))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
