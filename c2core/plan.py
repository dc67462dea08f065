"""RunPlan: execution steps over created nets (Caffe2's plan executor)."""
from __future__ import annotations

import threading

import numpy as np

from c2core.errors import C2Error

_FOREVER = 2 ** 62


def run_plan(plan, ws):
    """Create the plan's nets in `ws`, then run its execution steps in order."""
    for net_def in plan.network:
        ws.create_net(net_def, overwrite=True)
    for step in plan.execution_step:
        _Step(step, ws, plan.name).run()


class _Step:
    def __init__(self, step, ws, where):
        self.step = step
        self.ws = ws
        self.where = f"plan '{where}', step '{step.name}'"
        if step.substep and step.network:
            raise C2Error(f"{self.where}: a step has either substeps or networks, not both")
        for name in step.network:
            if name not in ws.nets:
                raise C2Error(f"{self.where}: net '{name}' is neither in the plan nor created in the workspace")
        if step.HasField("report_net") and step.report_net not in ws.nets:
            raise C2Error(f"{self.where}: report_net '{step.report_net}' was not created")
        self.substeps = [_Step(s, ws, where) for s in step.substep]

    def should_stop(self) -> bool:
        if not self.step.should_stop_blob:
            return False
        blob = self.ws.get_blob(self.step.should_stop_blob)
        if blob is None or blob.value is None:
            return False
        value = np.asarray(blob.value)
        if value.size != 1:
            raise C2Error(f"{self.where}: should_stop_blob '{self.step.should_stop_blob}' must hold "
                          f"one value, holds shape {list(value.shape)}")
        return bool(value.reshape(()))

    def run(self, stop_event: threading.Event | None = None):
        step = self.step
        if step.num_concurrent_instances > 1:
            return _run_threads([lambda: self._run_once(stop_event)] * step.num_concurrent_instances)
        return self._run_once(stop_event)

    def _run_once(self, stop_event):
        step = self.step
        if step.HasField("num_iter"):
            num_iter = step.num_iter
        else:
            num_iter = _FOREVER if step.should_stop_blob else 1
        reporter = _Reporter(self) if step.HasField("report_net") else None
        try:
            for it in range(num_iter):
                if stop_event is not None and stop_event.is_set():
                    return
                if self.substeps:
                    active = [s for s in self.substeps if not s.step.only_once or it == 0]
                    if step.concurrent_substeps and len(active) > 1:
                        _run_threads([lambda s=s: s.run() for s in active])
                    else:
                        for s in active:
                            s.run(stop_event)
                            if self.should_stop():
                                break
                else:
                    for name in step.network:
                        self.ws.run_net(name)
                if self.should_stop():
                    break
        finally:
            if reporter is not None:
                reporter.stop()


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


class _Reporter:
    """Runs the step's report_net every report_interval seconds while the step runs."""

    def __init__(self, owner: _Step):
        self.owner = owner
        self.done = threading.Event()
        self.interval = max(owner.step.report_interval, 0) or 1
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.done.wait(self.interval):
            self.owner.ws.run_net(self.owner.step.report_net)

    def stop(self):
        self.done.set()
        self.thread.join()
        self.owner.ws.run_net(self.owner.step.report_net)   # a last report with final values
