"""Smoke test of the benchmark runner: it runs, its table has the promised shape,
and a missing peer becomes a "not installed" row. Never asserts on a time."""
import json
import sys

import pytest

from benchmarks import run
from benchmarks.harness import COLUMNS, NOT_INSTALLED

EXECUTOR_ROWS = {"executor.simple", "executor.dag", "executor.wide", "executor.wide_reuse"}
PEERS = {"ONNX Runtime (opt off)", "PyTorch eager (add out=)"}


@pytest.fixture(autouse=True)
def _restore_env(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # main() sets it; monkeypatch puts it back


def _table(out):
    lines = [line for line in out.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return cells[0], cells[2:]


def test_quick_executor_table_and_json(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    assert run.main(["--quick", "--only", "executor", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "cores" in out and "onnxruntime" in out and "torch" in out   # header: machine, versions
    head, rows = _table(out)
    assert tuple(head) == COLUMNS
    assert all(len(r) == len(COLUMNS) for r in rows)
    assert {(r[0].split(":")[0], r[1]) for r in rows} == {(b, p) for b in EXECUTOR_ROWS for p in PEERS}
    data = json.loads(out_json.read_text())
    assert {r["benchmark"] for r in data["rows"]} == EXECUTOR_ROWS
    for r in data["rows"]:
        assert r["c2_note"] == "" and r["c2_s"] is not None, r   # c2's side ran
        assert (r["peer_s"] is None) == bool(r["peer_note"]), r


def test_missing_peers_are_rows_not_crashes(capsys, monkeypatch):
    for name in ("onnxruntime", "torch"):
        monkeypatch.setitem(sys.modules, name, None)   # makes `import name` raise ImportError
    assert run.main(["--quick", "--only", "executor.simple"]) == 0
    head, rows = _table(capsys.readouterr().out)
    assert {r[1] for r in rows} == PEERS
    for r in rows:
        assert r[3] == NOT_INSTALLED and r[4] == "–"
        assert r[2] not in (NOT_INSTALLED, "–") and not r[2].startswith("failed")


def test_unknown_benchmark_name(capsys):
    assert run.main(["--quick", "--only", "no.such.bench"]) == 2
    assert "executor.simple" in capsys.readouterr().err
