import numpy as np
import pytest

import c2ops_sparse
from c2core import registry, testing, workspace


@pytest.fixture(autouse=True, scope="module")
def sparse_pack():
    """Every test sees the core and this pack's ops, whatever else is installed.

    Per module, not per session: a session-wide registry would stay active for the tests of
    other directories run after these in the same pytest session.

    C2OPS_SPARSE_FAMILIES=lookups,segments registers only those families (while developing one).
    """
    with registry.isolated(builtin=True) as reg:
        reg.register(testing.FamilyPack(c2ops_sparse, "c2ops-sparse", "C2OPS_SPARSE_FAMILIES"), name="c2ops-sparse")
        yield reg


@pytest.fixture(autouse=True)
def clean_workspace():
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
    yield
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
