import pytest

from c2core import workspace


@pytest.fixture(autouse=True)
def clean_workspace():
    """Every test starts in an empty default workspace."""
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
    yield
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
