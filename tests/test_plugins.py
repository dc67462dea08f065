"""Op packs: entry-point discovery, in-process registration, failures and duplicates."""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import pyops
from c2core import core, registry, workspace
from c2core.errors import PluginError
from c2core.hookspecs import hookimpl
from c2core.operator import Operator
from c2core.schema import OpSchema


def _make_dist(root, dist, module, body, ep_name=None):
    """A minimal installed distribution with a c2core.plugins entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[c2core.plugins]\n{ep_name or module} = {module}\n")


GOOD = """
    import numpy as np
    from c2core.hookspecs import hookimpl
    from c2core.operator import Operator
    from c2core.schema import OpSchema

    class Twice(Operator):
        def run(self):
            self.set_output(0, self.input(0) * 2)

    @hookimpl
    def c2core_pack_info():
        return {"name": "goodpack", "version": "1.2.3", "description": "doubles"}

    @hookimpl
    def c2core_register_ops(registrar):
        registrar.schema(OpSchema("{op}").num_inputs(1).num_outputs(1)
                         .input(0, "X", "x").output(0, "Y", "2x").doc("Doubles."))
        registrar.kernel("{op}", Twice)
"""


def test_entry_point_packs_load_and_a_broken_one_is_reported(tmp_path, monkeypatch):
    _make_dist(tmp_path, "goodpack", "goodpack_mod", GOOD.replace("{op}", "Twice"))
    _make_dist(tmp_path, "badpack", "badpack_mod", "raise ImportError('libfoo.so missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = registry.Registry(autoload=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.ensure_loaded()
    assert any("badpack_mod" in str(w.message) for w in caught)
    assert "goodpack_mod" in reg.packs and reg.packs["goodpack_mod"].version == "1.2.3"
    assert "badpack_mod" in reg.load_errors and "libfoo.so missing" in reg.load_errors["badpack_mod"]
    assert reg.schema("Twice").pack == "goodpack_mod"
    assert "goodpack 1.2.3" in reg.packs["goodpack_mod"].origin


def test_autoload_can_be_disabled(tmp_path, monkeypatch):
    _make_dist(tmp_path, "goodpack2", "goodpack2_mod", GOOD.replace("{op}", "Twice2"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("C2CORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = registry.Registry(autoload=True).ensure_loaded()
    assert reg.schema("Twice2") is None and "c2core" in reg.packs


def test_autoload_in_a_fresh_process(tmp_path):
    _make_dist(tmp_path, "goodpack3", "goodpack3_mod", GOOD.replace("{op}", "Twice3"))
    code = ("import numpy as np; from c2core import core, workspace;"
            "workspace.FeedBlob('x', np.ones(2));"
            "workspace.RunOperatorOnce(core.CreateOperator('Twice3', ['x'], ['y']));"
            "print(workspace.FetchBlob('y').tolist())")
    env = {"PYTHONPATH": f"{tmp_path}:{':'.join(sys.path)}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[2.0, 2.0]"


def test_duplicate_kernel_names_both_packs():
    class Clash:
        @hookimpl
        def c2core_register_ops(self, registrar):
            registrar.kernel("TScale", pyops.ScaleOp)

    with registry.isolated() as reg:
        reg.register(pyops)
        with pytest.raises(PluginError, match="TScale on CPU engine 'DEFAULT' is registered by both "
                                              "pack 'c2core_tests_pyops|pyops' and pack 'clash'"):
            reg.register(Clash(), name="clash")
        assert "clash" not in reg.packs


def test_duplicate_schema_names_both_packs_and_leaves_nothing_half_registered():
    class Half:
        @hookimpl
        def c2core_register_ops(self, registrar):
            registrar.schema(OpSchema("BrandNew").num_inputs(1).num_outputs(1).doc("x"))
            registrar.schema(OpSchema("Sum").doc("again"))

    with registry.isolated() as reg:
        with pytest.raises(PluginError, match="schema Sum is declared by both pack 'c2core' and pack 'half'"):
            reg.register(Half(), name="half")
        assert reg.schema("BrandNew") is None


def test_same_schema_kernel_on_another_engine_is_fine():
    class FastScale(Operator):
        def run(self):
            self.set_output(0, self.input(0) * 100)

    class Engine:
        @hookimpl
        def c2core_register_ops(self, registrar):
            registrar.kernel("TScale", FastScale, engine="FAST")

    with registry.isolated() as reg:
        reg.register(pyops)
        reg.register(Engine(), name="engine")
        workspace.FeedBlob("x", np.ones(1, np.float32))
        workspace.RunOperatorOnce(core.CreateOperator("TScale", ["x"], ["y"], engine="FAST"))
        assert workspace.FetchBlob("y")[0] == 100
        # unknown engines fall back to the default, as in Caffe2
        workspace.RunOperatorOnce(core.CreateOperator("TScale", ["x"], ["y"], engine="NOPE,OTHER"))
        assert workspace.FetchBlob("y")[0] == 1
        reg.set_engine_pref(0, ["FAST"])
        workspace.RunOperatorOnce(core.CreateOperator("TScale", ["x"], ["y"]))
        assert workspace.FetchBlob("y")[0] == 100


def test_in_process_register_via_package_function():
    class Tiny:
        @hookimpl
        def c2core_register_ops(self, registrar):
            registrar.schema(OpSchema("TinyOp").num_inputs(0).num_outputs(1).doc("Makes 7."))
            registrar.kernel("TinyOp", type("K", (Operator,), {"run": lambda self: self.set_output(0, 7)}))

    import c2core
    with registry.isolated():
        c2core.register(Tiny(), name="tiny")
        workspace.RunOperatorOnce(core.CreateOperator("TinyOp", [], ["y"]))
        assert workspace.FetchBlob("y") == 7
        with pytest.raises(PluginError, match="already registered"):
            c2core.register(Tiny(), name="tiny")
    assert not core.IsOperator("TinyOp")


def test_failing_hook_is_not_half_registered():
    class Broken:
        @hookimpl
        def c2core_register_ops(self, registrar):
            registrar.schema(OpSchema("HalfOp").doc("x"))
            raise RuntimeError("oops")

    with registry.isolated() as reg:
        with pytest.raises(RuntimeError, match="oops"):
            reg.register(Broken(), name="broken")
        assert reg.schema("HalfOp") is None and "broken" not in reg.packs
        reg.register(Broken.__new__(type("Ok", (), {})), name="broken")  # the name is free again
