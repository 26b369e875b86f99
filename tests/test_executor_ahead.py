"""A static worker's decisions for its next task, taken while it waits (``executor.worker._Ahead``).

They must be exactly what the hooks answer when the task runs, and be used only for the task
and the tasks-run-here they were taken for.
"""

from __future__ import annotations

from types import SimpleNamespace

from executor import codec, keys
from executor.plans import assigned_plan
from executor.worker import _LogicalWorker
from planning.protocol import WorkerProtocol
from planning.sources.dsl import build_workflow, task


@task
def inc(x):
    return x + 1


@task
def add(x, y):
    return x + y


def _worker(protocol: WorkerProtocol, workflow, worker: str, **state) -> _LogicalWorker:
    """A logical worker's state as far as deciding ahead reads it (no process, no server)."""
    w = _LogicalWorker.__new__(_LogicalWorker)
    code = {t.id: codec.TaskCode(t.func, t.args, dict(t.kwargs)) for t in workflow.tasks}
    w.protocol, w.worker, w.keys = protocol, worker, keys.RunKeys("r1")
    w.spec = SimpleNamespace(n_parents={t: len(workflow.parents(t)) for t in workflow.task_ids}, coded=set(code))
    w.code, w.ran, w._ahead = code, set(), None
    w.replaying = w.recovering = False
    for name, value in state.items():
        setattr(w, name, value)
    return w


def _chain():
    a = inc.named("a")(1)
    b = inc.named("b")(a)
    c = inc.named("c")(b)
    d = add.named("d")(c, a)       # d has two parents: its downstream is decided after the commit
    wf = build_workflow(d, name="ahead")
    plan = assigned_plan(wf, {"a": "w0", "b": "w1", "c": "w0", "d": "w1"}, "large")
    return wf, WorkerProtocol.for_plan(wf, plan)


def test_decisions_taken_ahead_are_the_hooks_answers_when_the_task_runs() -> None:
    wf, protocol = _chain()
    w = _worker(protocol, wf, "w0")
    w.ran = {"a"}
    w._decide_ahead("c")
    ahead = w._take_ahead("c")
    assert ahead.inputs == protocol.handle_inputs("c", "w0", {"a"})   # b is fetched (it ran on w1)
    assert [f.parent for f in ahead.inputs.fetch] == ["b"] and ahead.inputs.local == ()
    assert ahead.profile == protocol.handle_execution("c", "w0").profile
    assert ahead.output == protocol.handle_output("c", "w0") and ahead.output.store     # d runs on w1
    assert ahead.downstream is None                                       # d has two parents
    assert ahead.release == []                                            # no stored_readers counted here
    assert ahead.runnable.id == "c" and ahead.runnable.func is w.code["c"].func
    assert ahead.runnable.args == w.code["c"].args
    assert w._take_ahead("c") is None                                     # used once

    w1 = _worker(protocol, wf, "w1")
    w1._decide_ahead("b")
    ahead = w1._take_ahead("b")
    assert ahead.downstream == protocol.handle_downstream("b", "w1", ["c"])   # c: one parent, on w0
    assert [i.worker for i in ahead.downstream.invocations] == ["w0"]


def test_decisions_are_dropped_for_another_task_or_when_the_tasks_run_here_changed() -> None:
    wf, protocol = _chain()
    w = _worker(protocol, wf, "w0")
    w._decide_ahead("c")
    assert w._take_ahead("a") is None and w._ahead is None       # taken for c, asked for a: the hooks are asked live
    w._decide_ahead("c")
    w.ran = {"a"}                                                # a ran since: handle_inputs would answer otherwise
    assert w._take_ahead("c") is None


def test_a_dynamic_protocol_or_a_rerun_after_a_death_decides_live() -> None:
    wf, protocol = _chain()
    for state in ({"recovering": True}, {"replaying": True}):
        w = _worker(protocol, wf, "w0", **state)
        w._decide_ahead("c")
        assert w._ahead is None
    dynamic = SimpleNamespace(dynamic=True)
    w = _worker(protocol, wf, "w0")
    w.protocol = dynamic
    w._decide_ahead("c")
    assert w._ahead is None
