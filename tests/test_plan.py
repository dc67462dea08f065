"""RunPlan: execution steps, loops, stop blobs, concurrency and reporting.

The expected behaviour is Caffe2's plan executor (caffe2/core/plan_executor.cc)
and its Python helpers (core.ExecutionStep, core.execution_step, core.Plan,
workspace.RunPlan). The nets use small pure-Python ops registered in an
isolated registry, so only the core is needed.
"""
import threading
import time

import numpy as np
import pytest

from c2core import core, registry, workspace
from c2core.errors import C2Error
from c2core.hookspecs import hookimpl
from c2core.operator import Operator
from c2core.proto import caffe2_pb2
from c2core.schema import OpSchema

# ---------------------------------------------------------------------------
# test ops
# ---------------------------------------------------------------------------
_LOCK = threading.Lock()
_LOG = []                      # what the Log op records, in order
_BARRIERS = {}                 # name -> threading.Barrier, for the Rendezvous op


class IncOp(Operator):
    """Y = X + by (thread-safe, so concurrent instances may share a counter)."""

    def run(self):
        with _LOCK:
            self.set_output(0, self.input(0) + self.arg("by"))


class StopIfOp(Operator):
    """stop = (X >= limit), a scalar bool: the should_stop_blob writer."""

    def run(self):
        self.set_output(0, np.array(bool(np.asarray(self.input(0)).reshape(()) >= self.arg("limit"))))


class LogOp(Operator):
    def run(self):
        with _LOCK:
            _LOG.append(self.arg("tag"))


class SleepOp(Operator):
    def run(self):
        time.sleep(self.arg("seconds"))


class RendezvousOp(Operator):
    """Waits until `parties` threads reach the same barrier: proves they run at once."""

    def run(self):
        _BARRIERS[self.arg("barrier")].wait()


class WaitForOp(Operator):
    """Blocks until blob X reaches `limit` (written by another thread), or fails after 20 s."""

    def run(self):
        deadline = time.monotonic() + 20
        while float(np.asarray(self.inputs[0].value).reshape(())) < self.arg("limit"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"blob {self.inputs[0].name} never reached {self.arg('limit')}")
            time.sleep(0.01)


class FailOp(Operator):
    def run(self):
        raise ValueError("this op always fails")


class _Plugin:
    @hookimpl
    def c2core_register_ops(self, registrar):
        registrar.schema(OpSchema("Inc").num_inputs(1).num_outputs(1).allow_inplace([(0, 0)])
                         .arg("by", float, 1.0, "step").doc("Y = X + by."))
        registrar.kernel("Inc", IncOp)
        registrar.schema(OpSchema("StopIf").num_inputs(1).num_outputs(1)
                         .arg("limit", float, 0.0, "threshold").doc("Y = X >= limit."))
        registrar.kernel("StopIf", StopIfOp)
        registrar.schema(OpSchema("Log").num_inputs(0).num_outputs(0)
                         .arg("tag", str, "", "what to record").doc("Records its tag."))
        registrar.kernel("Log", LogOp)
        registrar.schema(OpSchema("Sleep").num_inputs(0).num_outputs(0)
                         .arg("seconds", float, 0.0, "how long").doc("Sleeps."))
        registrar.kernel("Sleep", SleepOp)
        registrar.schema(OpSchema("Rendezvous").num_inputs(0).num_outputs(0)
                         .arg("barrier", str, required=True, doc="barrier name").doc("Waits."))
        registrar.kernel("Rendezvous", RendezvousOp)
        registrar.schema(OpSchema("WaitFor").num_inputs(1).num_outputs(0)
                         .arg("limit", float, 1.0, "value to wait for").doc("Waits for a blob."))
        registrar.kernel("WaitFor", WaitForOp)
        registrar.schema(OpSchema("Fail").num_inputs(0, None).num_outputs(0, None).doc("Raises."))
        registrar.kernel("Fail", FailOp)


@pytest.fixture(autouse=True)
def plan_env():
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
    _LOG.clear()
    _BARRIERS.clear()
    with registry.isolated(builtin=True) as reg:
        reg.register(_Plugin(), name="plantestpack")
        yield reg
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()


def feed_counter(name, value=0.0):
    workspace.FeedBlob(name, np.array([value], dtype=np.float64))


def count(name):
    return float(workspace.FetchBlob(name)[0])


def inc_net(net_name, counter, by=1.0):
    net = core.Net(net_name)
    net.Inc([counter], [counter], by=by)
    return net


def log_net(net_name, tag):
    net = core.Net(net_name)
    net.Log([], [], tag=tag)
    return net


def counting_stop_net(net_name, counter, stop, limit):
    """counter += 1; stop = counter >= limit."""
    net = core.Net(net_name)
    net.Inc([counter], [counter])
    net.StopIf([counter], [stop], limit=float(limit))
    return net


def run_plan(*steps, name="plan"):
    plan = core.Plan(name)
    for s in steps:
        plan.AddStep(s)
    workspace.RunPlan(plan)
    return plan


# ---------------------------------------------------------------------------
# num_iter and nesting
# ---------------------------------------------------------------------------
def test_num_iter_runs_the_nets_that_many_times():
    feed_counter("c")
    run_plan(core.execution_step("loop", inc_net("inc", "c"), num_iter=5))
    assert count("c") == 5


def test_step_without_num_iter_or_stop_blob_runs_once():
    feed_counter("c")
    run_plan(core.execution_step("once", inc_net("inc", "c")))
    assert count("c") == 1


def test_num_iter_zero_runs_nothing():
    feed_counter("c")
    run_plan(core.execution_step("never", inc_net("inc", "c"), num_iter=0))
    assert count("c") == 0


def test_nets_of_a_step_run_in_order_each_iteration():
    run_plan(core.execution_step("s", [log_net("a", "a"), log_net("b", "b")], num_iter=2))
    assert _LOG == ["a", "b", "a", "b"]


def test_nested_substeps_iterate_inside_their_parent():
    inner_a = core.execution_step("inner_a", log_net("net_a", "a"), num_iter=2)
    inner_b = core.execution_step("inner_b", log_net("net_b", "b"))
    outer = core.execution_step("outer", [inner_a, inner_b], num_iter=3)
    run_plan(outer)
    assert _LOG == ["a", "a", "b"] * 3


def test_three_levels_of_nesting_multiply_iterations():
    feed_counter("c")
    leaf = core.execution_step("leaf", inc_net("inc", "c"), num_iter=2)
    mid = core.execution_step("mid", [leaf], num_iter=3)
    top = core.execution_step("top", [mid], num_iter=4)
    run_plan(top)
    assert count("c") == 2 * 3 * 4


def test_plan_steps_run_in_order():
    init = core.execution_step("init", log_net("init_net", "init"))
    train = core.execution_step("train", log_net("train_net", "train"), num_iter=2)
    run_plan(init, train)
    assert _LOG == ["init", "train", "train"]


def test_execution_step_class_api_builds_the_same_proto():
    net = inc_net("inc", "c")
    step = core.ExecutionStep("s", net, num_iter=4)
    assert step.Name() == "s"
    assert step.HasNets() and not step.HasSubsteps()
    assert list(step.Proto().network) == [net.Name()]
    assert step.Proto().num_iter == 4
    assert step.Nets() == [net]
    outer = core.ExecutionStep("outer")
    outer.AddSubstep(step)
    outer.SetIter(2)
    assert outer.HasSubsteps() and outer.Nets() == [net]
    feed_counter("c")
    run_plan(outer)
    assert count("c") == 8


def test_plan_collects_nets_of_nested_substeps_once():
    shared = inc_net("shared", "c")
    s1 = core.execution_step("s1", shared)
    s2 = core.execution_step("s2", [core.execution_step("deep", shared, num_iter=2)])
    plan = core.Plan("p")
    plan.AddStep(s1)
    plan.AddStep(s2)
    assert [n.name for n in plan.Proto().network] == [shared.Name()]
    feed_counter("c")
    workspace.RunPlan(plan)
    assert count("c") == 3


# ---------------------------------------------------------------------------
# should_stop_blob and only_once
# ---------------------------------------------------------------------------
def test_should_stop_blob_ends_a_loop_without_num_iter():
    feed_counter("c")
    workspace.FeedBlob("stop", np.array(False))
    step = core.execution_step("until7", counting_stop_net("count", "c", "stop", 7),
                               should_stop_blob="stop")
    run_plan(step)
    assert count("c") == 7
    assert bool(workspace.FetchBlob("stop")) is True


def test_should_stop_blob_is_checked_after_every_substep():
    # Caffe2 checks the parent's stop blob after each substep, so "after" is
    # skipped in the iteration where "counting" sets the flag.
    feed_counter("c")
    feed_counter("after")
    workspace.FeedBlob("stop", np.array(False))
    counting = core.execution_step("counting", counting_stop_net("count", "c", "stop", 3))
    after = core.execution_step("after", inc_net("inc_after", "after"))
    run_plan(core.execution_step("outer", [counting, after], should_stop_blob="stop"))
    assert count("c") == 3
    assert count("after") == 2


def test_should_stop_blob_is_checked_after_every_net_of_a_step():
    feed_counter("c")
    feed_counter("after")
    workspace.FeedBlob("stop", np.array(False))
    step = core.execution_step(
        "s", [counting_stop_net("count", "c", "stop", 3), inc_net("inc_after", "after")],
        should_stop_blob="stop")
    run_plan(step)
    assert count("c") == 3
    assert count("after") == 2


def test_stop_blob_already_true_stops_after_the_first_pass():
    feed_counter("c")
    workspace.FeedBlob("stop", np.array(True))
    run_plan(core.execution_step("s", inc_net("inc", "c"), should_stop_blob="stop"))
    assert count("c") == 1


def test_should_stop_blob_of_an_inner_loop_leaves_the_outer_loop_running():
    feed_counter("c")
    feed_counter("outer_runs")
    workspace.FeedBlob("stop", np.array(False))
    inner = core.execution_step("inner", counting_stop_net("count", "c", "stop", 4),
                                should_stop_blob="stop")
    tail = core.execution_step("tail", inc_net("inc_outer", "outer_runs"))
    run_plan(core.execution_step("outer", [inner, tail], num_iter=3))
    # the first outer pass counts up to 4; later passes stop after one count
    assert count("c") == 6
    assert count("outer_runs") == 3


def test_only_once_step_stops_early_when_its_stop_blob_is_set():
    feed_counter("b")
    workspace.FeedBlob("stop", np.array(False))
    workspace.FeedBlob("limit_reached", np.array(True))
    set_stop = core.Net("set_stop")
    set_stop.StopIf(["limit_reached"], ["stop"], limit=0.0)   # True >= 0 -> stop
    a = core.execution_step("a", set_stop)
    b = core.execution_step("b", inc_net("inc_b", "b"))
    run_plan(core.execution_step("guarded", [a, b], should_stop_blob="stop", only_once=True))
    assert count("b") == 0


def test_only_once_step_with_stop_blob_runs_a_single_iteration():
    # The stop blob becomes true at 5, so a wrong implementation still terminates.
    feed_counter("c")
    workspace.FeedBlob("stop", np.array(False))
    step = core.execution_step("once", counting_stop_net("count", "c", "stop", 5),
                               should_stop_blob="stop", only_once=True)
    run_plan(step)
    assert count("c") == 1


def test_only_once_substep_runs_once_in_every_parent_iteration():
    # The stop blob becomes true at 10, so a wrong implementation still terminates.
    feed_counter("c")
    workspace.FeedBlob("stop", np.array(False))
    once = core.execution_step("once", counting_stop_net("count", "c", "stop", 10),
                               should_stop_blob="stop", only_once=True)
    run_plan(core.execution_step("outer", [once], num_iter=3))
    assert count("c") == 3


def test_only_once_proto_field_is_set_by_execution_step():
    step = core.execution_step("s", inc_net("inc", "c"), should_stop_blob="stop", only_once=True)
    assert step.Proto().only_once is True
    assert step.Proto().should_stop_blob == "stop"
    assert not step.Proto().HasField("num_iter")


def test_should_stop_blob_with_many_values_is_an_error():
    feed_counter("c")
    workspace.FeedBlob("stop", np.array([False, False]))
    with pytest.raises(C2Error, match="stop"):
        run_plan(core.execution_step("s", inc_net("inc", "c"), should_stop_blob="stop"))


# ---------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------
def test_concurrent_substeps_give_correct_results():
    feed_counter("x")
    feed_counter("y")
    sx = core.execution_step("sx", inc_net("inc_x", "x", by=1.0), num_iter=50)
    sy = core.execution_step("sy", inc_net("inc_y", "y", by=2.0), num_iter=30)
    run_plan(core.execution_step("par", [sx, sy], concurrent_substeps=True, num_iter=2))
    assert count("x") == 100
    assert count("y") == 120


def _rendezvous_net(name, barrier):
    net = core.Net(name)
    net.Rendezvous([], [], barrier=barrier)
    return net


def test_concurrent_substeps_really_run_at_the_same_time():
    # Each substep waits for the other at a barrier: sequential execution would
    # break the barrier (timeout) instead of passing it.
    _BARRIERS["b"] = threading.Barrier(2, timeout=5)
    s1 = core.execution_step("s1", _rendezvous_net("r1", "b"))
    s2 = core.execution_step("s2", _rendezvous_net("r2", "b"))
    run_plan(core.execution_step("par", [s1, s2], concurrent_substeps=True))
    assert _BARRIERS["b"].n_waiting == 0 and not _BARRIERS["b"].broken


def test_num_concurrent_instances_runs_substeps_that_many_times_at_once():
    feed_counter("c")
    _BARRIERS["b"] = threading.Barrier(3, timeout=5)
    net = core.Net("work")
    net.Rendezvous([], [], barrier="b")
    net.Inc(["c"], ["c"])
    inner = core.execution_step("inner", net)
    run_plan(core.execution_step("workers", [inner], num_concurrent_instances=3))
    assert count("c") == 3


def test_num_concurrent_instances_with_iterations():
    feed_counter("c")
    inner = core.execution_step("inner", inc_net("inc", "c"), num_iter=10)
    run_plan(core.execution_step("workers", [inner], num_concurrent_instances=4, num_iter=2))
    assert count("c") == 4 * 10 * 2


def test_num_concurrent_instances_does_not_multiply_a_step_of_nets():
    feed_counter("c")
    step = core.execution_step("nets", inc_net("inc", "c"), num_iter=3, num_concurrent_instances=2)
    run_plan(step)
    assert count("c") == 3


def test_concurrent_substeps_with_stop_blob():
    feed_counter("c")
    feed_counter("other")
    workspace.FeedBlob("stop", np.array(False))
    counting = core.execution_step("counting", counting_stop_net("count", "c", "stop", 4))
    other = core.execution_step("other", inc_net("inc_other", "other"))
    run_plan(core.execution_step("par", [counting, other], concurrent_substeps=True,
                                 should_stop_blob="stop"))
    # the stop blob is checked after each concurrent round
    assert count("c") == 4
    assert count("other") == 4


def test_failure_in_a_concurrent_substep_propagates():
    feed_counter("c")
    bad = core.Net("bad_net")
    bad.Fail([], [], name="broken")
    s1 = core.execution_step("good", inc_net("inc", "c"), num_iter=5)
    s2 = core.execution_step("bad", bad)
    with pytest.raises(C2Error, match="Fail op 'broken'"):
        run_plan(core.execution_step("par", [s1, s2], concurrent_substeps=True))


# ---------------------------------------------------------------------------
# report_net
# ---------------------------------------------------------------------------
def _report_net():
    net = core.Net("report")
    net.Inc(["reports"], ["reports"])
    net.Sum(["c"], ["reported"])         # a copy of the counter as seen by the report
    return net


def test_report_net_runs_every_interval_and_once_at_the_end():
    feed_counter("c")
    feed_counter("reports")
    work = core.Net("work")
    work.WaitFor(["reports"], [], limit=1.0)    # the first iteration waits for a periodic report
    work.Inc(["c"], ["c"])
    step = core.execution_step("train", work, num_iter=2, report_net=_report_net(), report_interval=1)
    assert step.Proto().report_net == "report" and step.Proto().report_interval == 1
    run_plan(step)
    # at least one periodic report, plus the final one that sees the finished counter
    assert count("reports") >= 2
    assert count("reported") == 2


def test_report_net_of_a_short_step_runs_once_with_the_final_values():
    feed_counter("c")
    feed_counter("reports")
    step = core.execution_step("quick", inc_net("inc", "c"), num_iter=3,
                               report_net=_report_net(), report_interval=1)
    run_plan(step)
    assert count("reports") == 1
    assert count("reported") == 3


def test_run_every_ms_substep_is_a_periodic_reporter_not_a_recurring_substep():
    feed_counter("c")
    feed_counter("ticks")
    work = core.execution_step("work", inc_net("inc", "c"))
    ticker = core.execution_step("ticker", inc_net("tick", "ticks"), run_every_ms=1000)
    run_plan(core.execution_step("outer", [work, ticker], num_iter=3))
    assert count("c") == 3
    assert count("ticks") == 1


def test_create_workspace_substep_keeps_its_blobs_private():
    feed_counter("c", 5.0)
    net = core.Net("private")
    net.Sum(["c"], ["tmp"])
    sub = core.execution_step("sub", net, create_workspace=True)
    run_plan(core.execution_step("outer", [sub]))
    assert not workspace.HasBlob("tmp")


# ---------------------------------------------------------------------------
# how plans are given to RunPlan
# ---------------------------------------------------------------------------
def _simple_plan():
    step = core.execution_step("s", inc_net("inc", "c"), num_iter=3)
    plan = core.Plan("p")
    plan.AddStep(step)
    return plan


def test_run_plan_accepts_a_plan_object():
    feed_counter("c")
    assert workspace.RunPlan(_simple_plan()) is True
    assert count("c") == 3


def test_run_plan_accepts_a_plandef_proto():
    feed_counter("c")
    proto = _simple_plan().Proto()
    assert isinstance(proto, caffe2_pb2.PlanDef)
    workspace.RunPlan(proto)
    assert count("c") == 3


def test_run_plan_accepts_serialized_plandef_bytes():
    feed_counter("c")
    workspace.RunPlan(_simple_plan().Proto().SerializeToString())
    assert count("c") == 3


def test_plandef_survives_a_serialization_round_trip():
    data = _simple_plan().Proto().SerializeToString()
    proto = caffe2_pb2.PlanDef.FromString(data)
    assert proto.execution_step[0].num_iter == 3
    feed_counter("c")
    workspace.RunPlan(proto)
    assert count("c") == 3


def test_plan_built_from_a_step_takes_its_name_and_nets():
    net = inc_net("inc", "c")
    step = core.execution_step("main", net, num_iter=2)
    plan = core.Plan(step)
    assert plan.Proto().name == "main"
    assert [n.name for n in plan.Proto().network] == [net.Name()]
    assert [s.name for s in plan.Steps()] == ["main"]
    feed_counter("c")
    workspace.RunPlan(plan)
    assert count("c") == 2


def test_run_plan_accepts_an_execution_step_whose_nets_exist():
    feed_counter("c")
    net = inc_net("inc", "c")
    workspace.CreateNet(net)
    workspace.RunPlan(core.execution_step("s", net, num_iter=2))
    assert count("c") == 2


def test_run_plan_accepts_an_execution_step_proto_whose_nets_exist():
    feed_counter("c")
    net = inc_net("inc", "c")
    workspace.CreateNet(net)
    workspace.RunPlan(core.execution_step("s", net, num_iter=2).Proto())
    assert count("c") == 2


def test_run_plan_accepts_an_execution_step_and_creates_its_nets():
    feed_counter("c")
    workspace.RunPlan(core.execution_step("s", inc_net("inc", "c"), num_iter=2))
    assert count("c") == 2


def test_plan_nets_replace_nets_of_the_same_name():
    feed_counter("c")
    old = caffe2_pb2.NetDef()
    old.CopyFrom(inc_net("x", "c", by=100.0).Proto())
    old.name = "same"
    new = caffe2_pb2.NetDef()
    new.CopyFrom(inc_net("y", "c", by=1.0).Proto())
    new.name = "same"
    workspace.CreateNet(old)
    plan = caffe2_pb2.PlanDef(name="p")
    plan.network.add().CopyFrom(new)
    plan.execution_step.add(name="s", network=["same"], num_iter=2)
    workspace.RunPlan(plan)
    assert count("c") == 2


def test_nets_created_by_a_plan_stay_in_the_workspace():
    feed_counter("c")
    net = inc_net("inc", "c")
    run_plan(core.execution_step("s", net))
    assert net.Name() in workspace.Nets()
    workspace.RunNet(net)
    assert count("c") == 2


def test_execution_step_wraps_nets_mixed_with_steps_into_substeps():
    feed_counter("c")
    sub = core.execution_step("sub", inc_net("inc", "c"), num_iter=2)
    step = core.execution_step("mixed", [sub, inc_net("inc10", "c", by=10.0)])
    run_plan(step)
    assert count("c") == 12


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
def test_step_naming_a_missing_net_names_the_step_and_the_net():
    plan = caffe2_pb2.PlanDef(name="p")
    step = plan.execution_step.add(name="train_step")
    step.network.append("no_such_net")
    with pytest.raises(C2Error) as info:
        workspace.RunPlan(plan)
    msg = str(info.value)
    assert "train_step" in msg and "no_such_net" in msg


def test_missing_net_in_a_nested_substep_names_that_substep():
    plan = caffe2_pb2.PlanDef(name="p")
    outer = plan.execution_step.add(name="outer")
    inner = outer.substep.add(name="inner_step")
    inner.network.append("ghost")
    with pytest.raises(C2Error, match=r"inner_step.*ghost"):
        workspace.RunPlan(plan)


def test_missing_net_in_a_later_step_fails_that_step():
    feed_counter("c")
    plan = core.Plan("p")
    plan.AddStep(core.execution_step("first", inc_net("inc", "c")))
    bad = plan.Proto().execution_step.add(name="second")
    bad.substep.add(name="deep").network.append("ghost")
    with pytest.raises(C2Error, match="ghost"):
        workspace.RunPlan(plan)
    # as in Caffe2, each top-level step is checked when its turn comes: the first one ran
    assert count("c") == 1


def test_missing_report_net_is_an_error():
    feed_counter("c")
    step = core.execution_step("s", inc_net("inc", "c"))
    step.Proto().report_net = "no_report"
    step.Proto().report_interval = 1
    plan = core.Plan("p")
    plan.AddStep(step)
    with pytest.raises(C2Error, match="no_report"):
        workspace.RunPlan(plan)


def test_step_with_nets_and_substeps_is_refused():
    sub = core.execution_step("sub", inc_net("inc", "c"))
    step = core.ExecutionStep("both")
    step.AddSubstep(sub)
    with pytest.raises(C2Error):
        step.AddNet(inc_net("other", "c"))
    proto = caffe2_pb2.PlanDef(name="p")
    bad = proto.execution_step.add(name="both")
    bad.network.append("inc")
    bad.substep.add(name="sub").network.append("inc")
    proto.network.add().CopyFrom(inc_net("inc", "c").Proto())
    feed_counter("c")
    with pytest.raises(C2Error, match="both"):
        workspace.RunPlan(proto)


def test_failing_op_inside_a_plan_names_the_op():
    feed_counter("c")
    bad = core.Net("bad_net")
    bad.Inc(["c"], ["c"])
    bad.Fail(["c"], [], name="exploder")
    inner = core.execution_step("inner", bad, num_iter=3)
    with pytest.raises(C2Error) as info:
        run_plan(core.execution_step("outer", [inner], num_iter=2))
    msg = str(info.value)
    assert "Fail op 'exploder'" in msg
    assert "bad_net" in msg
    assert "always fails" in msg
    assert count("c") == 1        # the plan stopped at the first failure


def test_failing_op_in_a_stop_blob_loop_ends_the_loop():
    feed_counter("c")
    workspace.FeedBlob("stop", np.array(False))
    net = core.Net("loop")
    net.Inc(["c"], ["c"])
    net.Fail([], [], name="halt")
    with pytest.raises(C2Error, match="halt"):
        run_plan(core.execution_step("forever", net, should_stop_blob="stop"))
    assert count("c") == 1


def test_net_with_unknown_op_in_a_plan_fails_at_creation():
    net = caffe2_pb2.NetDef(name="n")
    net.op.add(type="NoSuchOperator", input=[], output=["y"])
    plan = caffe2_pb2.PlanDef(name="p")
    plan.network.add().CopyFrom(net)
    plan.execution_step.add(name="s").network.append("n")
    with pytest.raises(C2Error, match="NoSuchOperator"):
        workspace.RunPlan(plan)


def test_empty_plan_does_nothing():
    assert workspace.RunPlan(core.Plan("empty")) is True
