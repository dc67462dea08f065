"""RunPlan: execution steps over created nets (Caffe2's plan executor).

Semantics follow caffe2/core/plan_executor.cc: a step runs either its nets
or its substeps, `num_iter` times (or, with a `should_stop_blob` and no
`num_iter`, until the blob is true; once if also `only_once`). The stop blob
is read after every net and substep. Substeps with `run_every_ms` run in the
background while their siblings run, and once more at the end.
"""
from __future__ import annotations

import threading

import numpy as np

from c2core.errors import C2Error

_FOREVER = 2 ** 62


def run_plan(plan, ws):
    """Run the plan's execution steps in order.

    The plan's nets are created lazily, in the workspace of the step that
    first runs them (a step with ``create_workspace`` gets its own copies).
    """
    nets = _PlanNets(plan, ws)
    for step in plan.execution_step:
        _Step(step, ws, plan.name, nets).run()


class _PlanNets:
    """The plan's NetDefs, created on first use in each workspace that runs them."""

    def __init__(self, plan, ws):
        self.defs = {}
        for net_def in plan.network:
            if net_def.name in self.defs:
                raise C2Error(f"plan '{plan.name}' defines net '{net_def.name}' twice")
            self.defs[net_def.name] = net_def
        self.created = set()
        self.lock = threading.Lock()

    def known(self, ws, name):
        return name in self.defs or ws.find_net(name) is not None

    def run(self, ws, name):
        if name in self.defs:
            with self.lock:
                key = (id(ws), name)
                if key not in self.created:
                    ws.create_net(self.defs[name], overwrite=True)
                    self.created.add(key)
        ws.run_net(name)


class _Step:
    def __init__(self, step, ws, where, nets):
        self.step = step
        self.ws = ws
        self.nets = nets
        self.where = f"plan '{where}', step '{step.name}'"
        if step.substep and step.network:
            raise C2Error(f"{self.where}: a step has either substeps or networks, not both")
        for name in step.network:
            if not nets.known(ws, name):
                raise C2Error(f"{self.where}: net '{name}' is neither in the plan nor created in the workspace")
        if step.HasField("report_net") and not nets.known(ws, step.report_net):
            raise C2Error(f"{self.where}: report_net '{step.report_net}' was not created")
        self.substeps = [_Step(s, ws, where, nets) for s in step.substep]

    def should_stop(self, ws) -> bool:
        if not self.step.should_stop_blob:
            return False
        blob = ws.get_blob(self.step.should_stop_blob)
        if blob is None or blob.value is None:
            return False
        value = np.asarray(blob.value)
        if value.size != 1:
            raise C2Error(f"{self.where}: should_stop_blob '{self.step.should_stop_blob}' must hold "
                          f"one value, holds shape {list(value.shape)}")
        return bool(value.reshape(()))

    def run(self, ws=None):
        ws = ws or self.ws
        step = self.step
        if step.create_workspace:
            ws = ws.child(f"{ws.name}/{step.name}")
        if self.substeps and step.num_concurrent_instances > 1:
            return _run_threads([lambda: self._run_once(ws)] * step.num_concurrent_instances)
        return self._run_once(ws)

    def _iterations(self):
        step = self.step
        if step.HasField("num_iter"):
            return step.num_iter
        if step.should_stop_blob:
            return 1 if step.only_once else _FOREVER
        return 1

    def _run_once(self, ws):
        step = self.step
        reporters = []
        if step.HasField("report_net"):
            reporters.append(_Periodic(lambda: self.nets.run(ws, step.report_net),
                                       max(step.report_interval, 0) or 1))
        recurring = [s for s in self.substeps if not s.step.run_every_ms]
        for s in self.substeps:
            if s.step.run_every_ms:
                reporters.append(_Periodic(lambda s=s: s.run(ws), s.step.run_every_ms / 1000.0))
        try:
            for _ in range(self._iterations()):
                if self.substeps:
                    if step.concurrent_substeps and len(recurring) > 1:
                        _run_threads([lambda s=s: s.run(ws) for s in recurring])
                    else:
                        for s in recurring:
                            s.run(ws)
                            if self.should_stop(ws):
                                return
                else:
                    for name in step.network:
                        self.nets.run(ws, name)
                        if self.should_stop(ws):
                            return
                if self.should_stop(ws):
                    return
        finally:
            for r in reporters:
                r.stop()


def _run_threads(fns):
    """Run callables on threads; re-raise the first failure after all finish."""
    errors = []

    def call(fn):
        try:
            fn()
        except BaseException as e:  # reported below, after every thread has joined
            errors.append(e)

    threads = [threading.Thread(target=call, args=(fn,), daemon=True) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class _Periodic:
    """Calls `fn` every `interval` seconds while a step runs, and once when it ends."""

    def __init__(self, fn, interval: float):
        self.fn = fn
        self.interval = interval
        self.done = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.done.wait(self.interval):
            try:
                self.fn()
            except BaseException as e:  # surfaced by stop()
                self.error = e
                return

    def stop(self):
        self.done.set()
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.fn()
