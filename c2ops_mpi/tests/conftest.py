"""Fixtures of the pack's tests, and the per-rank report of test runs started under mpiexec.

The single-process tests (``test_*.py``) start the multi-rank ones
(``ranks_*.py``, pytest files too) with ``mpiexec -n 2`` through
``ranks.run_ranks``. In such a run each rank writes what passed and failed to
``$C2_MPI_TEST_REPORT/rank<r>.json``, so the launching test can check every
rank, not only the exit status.
"""
import json
import os

import numpy as np
import pytest

import c2ops_mpi
from c2core import registry, workspace

REPORT_ENV = "C2_MPI_TEST_REPORT"


@pytest.fixture(autouse=True, scope="module")
def mpi_pack():
    """Every test sees the core, the CPU pack (models need it) and this pack, whatever else is installed."""
    import c2ops_cpu
    with registry.isolated(builtin=True) as reg:
        reg.register(c2ops_cpu, name="c2ops-cpu")
        reg.register(c2ops_mpi, name="c2ops-mpi")
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


class _RankReport:
    """Collects this rank's test outcomes and writes them when the session ends."""

    def __init__(self, folder):
        self.folder = folder
        self.outcomes = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            previous = self.outcomes.get(report.nodeid)
            if previous in (None, "passed"):
                self.outcomes[report.nodeid] = report.outcome

    def pytest_sessionfinish(self, session, exitstatus):
        rank, size = c2ops_mpi.rank_and_size()
        path = os.path.join(self.folder, f"rank{rank}.json")
        with open(path, "w") as f:
            json.dump({"rank": rank, "size": size, "exitstatus": int(exitstatus), "outcomes": self.outcomes}, f)


def pytest_configure(config):
    folder = os.environ.get(REPORT_ENV)
    if folder:
        config.pluginmanager.register(_RankReport(folder), "c2ops-mpi-rank-report")
