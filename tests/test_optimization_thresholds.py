"""Pre-load and delayed I/O leave out transfers too small to pay for a background thread, in every engine.

``PRELOAD_MIN_BYTES`` (a task's fetched inputs in all) and ``LAZY_MIN_BYTES`` (a stored
output) are protocol decisions (``preloads_inputs``, ``lazy_upload``): the schedule, the
simulator and the executor all follow them.  Hand-computed on ``test_optimizations_io``'s
workflows with 1 MB edges (under the thresholds), the same as the base protocol.
"""

from __future__ import annotations

import threading

import pytest

from executor import Executor, ExecutorSettings
from executor.worker_preload import WorkerPreload, _Preload
from planning.protocol import WorkerProtocol
from planning.protocol.optimizations import DelayedIO, Preload, optimize
from planning.protocol.optimizations.delayed_io import LAZY_MIN_BYTES
from planning.protocol.optimizations.preload import PRELOAD_MIN_BYTES
from planning.workflow import Workflow
from simulator import simulate
from tests.test_optimizations_io import (DIO_PLACES, DIO_SEQ, MB, MODEL, PRE_PLACES, PRE_SEQ, assigned,
                                         hand_schedule, workflow)

COLUMNS = ["download_start_s", "download_end_s", "exec_start_s", "exec_end_s", "done_s"]


def pre(nbytes: int) -> Workflow:
    return workflow("preload", {"p": 1.0, "x": 3.0, "y": 1.0}, [("p", "y"), ("x", "y")], nbytes)


def dio(nbytes: int) -> Workflow:
    return workflow("delayed", {"a": 1.0, "b": 2.0, "c": 0.5}, [("a", "b"), ("a", "c")], nbytes)


def test_the_protocols_decide_by_bytes_at_the_thresholds() -> None:
    assert PRELOAD_MIN_BYTES == LAZY_MIN_BYTES == 4 << 20
    for n, expected in ((PRELOAD_MIN_BYTES - 1, False), (PRELOAD_MIN_BYTES, True)):
        wf = pre(n)
        protocol = Preload.for_plan(wf, assigned(wf, PRE_PLACES, PRE_SEQ))
        assert protocol.preloads_inputs("y") is expected       # y fetches p's output (x's is local)
        assert protocol.preloads_inputs("x") is False            # fetches nothing
        wf = dio(n)
        protocol = DelayedIO.for_plan(wf, assigned(wf, DIO_PLACES, DIO_SEQ))
        assert protocol.lazy_upload("a", "w1") is expected
    # two inputs under the threshold each, over it together: one fetch worth pre-loading
    half = PRELOAD_MIN_BYTES // 2
    wf = workflow("two", {"p": 1.0, "q": 1.0, "x": 3.0, "y": 1.0}, [("p", "y"), ("q", "y"), ("x", "y")], half)
    places, seq = {"p": "w2", "q": "w3", "x": "w1", "y": "w1"}, {"w1": ["x", "y"], "w2": ["p"], "w3": ["q"]}
    assert Preload.for_plan(wf, assigned(wf, places, seq)).preloads_inputs("y")


def test_small_transfers_are_timed_as_the_base_in_the_schedule() -> None:
    wf = pre(MB)
    base = hand_schedule(wf, PRE_PLACES, PRE_SEQ, WorkerProtocol)
    small = hand_schedule(wf, PRE_PLACES, PRE_SEQ, Preload)
    # as the base: y downloads p after x (3 -> 3.5), runs 3.5 -> 4.5 (pre-load would have fetched it at 1.5)
    assert small.tasks.loc["y", COLUMNS].tolist() == base.tasks.loc["y", COLUMNS].tolist() == [3, 3.5, 3.5, 4.5, 5]
    assert small.makespan_s == base.makespan_s == 5.5
    wf = dio(MB)
    base = hand_schedule(wf, DIO_PLACES, DIO_SEQ, WorkerProtocol)
    small = hand_schedule(wf, DIO_PLACES, DIO_SEQ, DelayedIO)
    # as the base: a uploads (1 -> 1.5) before b starts (a lazy upload would have let b start at 1)
    assert small.tasks.loc["b", "exec_start_s"] == base.tasks.loc["b", "exec_start_s"] == 1.5
    assert small.makespan_s == base.makespan_s == 4.5


def test_small_transfers_are_timed_as_the_base_in_the_plan_and_the_simulation() -> None:
    for wf, places, seq, name in ((pre(MB), PRE_PLACES, PRE_SEQ, "preload"),
                                  (dio(MB), DIO_PLACES, DIO_SEQ, "delayed_io")):
        plan = assigned(wf, places, seq)
        optimized, cls = optimize(plan, wf, MODEL, [name])
        assert optimized.makespan_s == pytest.approx(plan.makespan_s, rel=1e-12)
        s = simulate(wf, optimized, MODEL, protocol=cls.for_plan(wf, optimized)).tasks.set_index("task_id")
        b = simulate(wf, plan, MODEL).tasks.set_index("task_id")
        assert s[COLUMNS].to_numpy() == pytest.approx(b[COLUMNS].to_numpy(), abs=1e-9)


def test_small_transfers_are_not_moved_in_the_background_in_the_real_run() -> None:
    # the real-run workflows of test_optimizations_io, at 1 MB: y fetches p after x ends, b waits for a's upload
    wf_pre = workflow("preload_small", {"p": 0.05, "x": 0.4, "y": 0.05}, [("p", "y"), ("x", "y")], MB)
    wf_dio = workflow("delayed_small", {"a": 0.05, "b": 0.05, "c": 0.05}, [("a", "b"), ("a", "c")], MB)
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as ex:
        plan = assigned(wf_pre, PRE_PLACES, PRE_SEQ)
        optimized, cls = optimize(plan, wf_pre, MODEL, ["preload"])
        t = ex.run(wf_pre, optimized, protocol=cls.for_plan(wf_pre, optimized)).trace.tasks.set_index("task_id")
        assert t.loc["y", "download_start_s"] >= t.loc["x", "exec_end_s"]
        plan = assigned(wf_dio, DIO_PLACES, DIO_SEQ)
        optimized, cls = optimize(plan, wf_dio, MODEL, ["delayed_io"])
        t = ex.run(wf_dio, optimized, protocol=cls.for_plan(wf_dio, optimized)).trace.tasks.set_index("task_id")
        assert t.loc["b", "exec_start_s"] >= t.loc["a", "upload_end_s"]


class _Stored:
    """A pre-load thread's wire on which every input is already stored."""

    def call(self, commands: list[tuple]) -> list[int]:
        return [1] * len(commands)

    def get_bulk(self, command: tuple) -> bytearray:
        return bytearray(b"v" * (command[3] + 1))


def test_a_complete_preload_is_taken_without_joining_its_thread() -> None:
    worker = WorkerPreload()
    worker.prefetched = {}
    thread = _Preload(_Stored(), [("p", "out:p", 3)], threading.Event(), "wake")     # type: ignore[arg-type]
    thread.run()                  # its work, on this thread: never started, so a join would raise
    assert thread.complete
    worker._preload, worker._preload_task = thread, "y"
    assert worker._take_preload("y") == (thread.start_s, thread.end_s)
    assert worker.prefetched == {"p": bytearray(b"vvv")}
    # a thread that has not fetched everything is joined (the worker fetches the rest itself)
    thread = _Preload(_Stored(), [("p", "out:p", 3)], threading.Event(), "wake")     # type: ignore[arg-type]
    worker._preload, worker._preload_task = thread, "y"
    woken: list[bool] = []
    worker._wake_preload = lambda own=True: woken.append(own)     # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="before it is started"):
        worker._take_preload("y")
    assert thread.hurry.is_set() and woken == [True]     # its stop sentinel pushed on the worker's own wire
