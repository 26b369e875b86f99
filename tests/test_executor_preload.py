"""Pre-load's blocking wait (issue 17): the thread sleeps on its worker's wake-up list, a commit wakes it, the
worker's stop sentinel ends it, and nothing is left on the server - on a real Redis-protocol server."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from executor import Executor, ExecutorSettings
from executor import worker_preload
from executor.keys import RunKeys
from executor.wire import Wire
from executor.worker_preload import STOP, WorkerPreload, _Preload
from planning.protocol import WorkerProtocol
from planning.protocol.optimizations import optimize

from tests.test_optimizations_io import EDGE, MODEL, PRE, PRE_PLACES, PRE_SEQ, assigned, workflow


@pytest.fixture(scope="module")
def ex():
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0, keep_keys=True)) as executor:
        yield executor


def _blocked_on(client, n: int) -> None:
    """Wait until ``n`` clients of the server are blocked in a pop (the thread is asleep on its list)."""
    deadline = time.monotonic() + 20.0
    while client.info("clients")["blocked_clients"] < n:
        assert time.monotonic() < deadline, "the pre-load thread never blocked on its wake-up list"
        time.sleep(0.01)


def test_a_blocked_thread_fetches_an_input_when_its_commit_pushes_the_wake_up(ex) -> None:
    r, k = ex.client, RunKeys("preload-wake")
    r.rpush(k.preload_wake("w1"), b"stale")             # an earlier thread's leftover: dropped, not taken
    thread = _Preload(Wire(r), [("a", k.out("a"), None)], threading.Event(), k.preload_wake("w1"))
    thread.start()
    try:
        _blocked_on(r, 1)
        assert not thread.complete and thread.start_s is None
        r.set(k.out("a"), b"payload")
        r.rpush(k.preload_wake("w1"), b"a")             # what the commit's 'P' op does after the store
        thread.join(timeout=20.0)
        assert not thread.is_alive() and thread.error is None
        assert thread.complete and thread.data == {"a": b"payload"} and thread.start_s is not None
    finally:
        thread.hurry.set()
        r.delete(k.out("a"), k.preload_wake("w1"))


def test_the_stop_sentinel_ends_a_blocked_thread_before_its_pop_times_out(ex, monkeypatch) -> None:
    monkeypatch.setattr(worker_preload, "BLOCK_S", 25.0)    # only the sentinel can end the pop within the join
    r, k = ex.client, RunKeys("preload-stop")
    thread = _Preload(Wire(r), [("a", k.out("a"), None)], threading.Event(), k.preload_wake("w1"))
    thread.start()
    try:
        _blocked_on(r, 1)
        thread.hurry.set()
        r.rpush(k.preload_wake("w1"), STOP)
        thread.join(timeout=15.0)
        assert not thread.is_alive() and thread.error is None
        assert not thread.complete and thread.data == {}
    finally:
        r.delete(k.preload_wake("w1"))


def _wake_ops(protocol: WorkerProtocol, worker: str, task: str) -> list:
    owner = SimpleNamespace(protocol=protocol, worker=worker, keys=RunKeys("r"), _preload_firsts=None)
    return WorkerPreload._wake_ops(owner, task)     # type: ignore[arg-type]


def test_only_a_commit_for_a_pre_loading_worker_on_another_worker_pushes_a_wake_up() -> None:
    plan = assigned(PRE, PRE_PLACES, PRE_SEQ)
    pre, cls = optimize(plan, PRE, MODEL, ["preload"])
    preloading = cls.for_plan(PRE, pre)
    assert _wake_ops(preloading, "w2", "p") == ["P", RunKeys("r").preload_wake("w1"), "p"]   # y (w1) waits for p
    assert _wake_ops(preloading, "w1", "x") == []            # y reads x from w1's memory
    assert _wake_ops(WorkerProtocol.for_plan(PRE, plan), "w2", "p") == []     # pre-load off: the commit as before


def _run_counting_exists(ex, wf, plan, **kw):
    """A run and the ``EXISTS`` commands the server served meanwhile (every client's)."""
    ex.client.config_resetstat()
    result = ex.run(wf, plan, **kw)
    return result, ex.client.info("commandstats").get("cmdstat_exists", {"calls": 0})["calls"]


def test_a_pre_loading_run_waits_without_polls_and_leaves_no_wake_up_list(ex) -> None:
    # p (w2) is stored ~0.6 s after x (w1) starts: the thread that pre-loads y waits that long for it
    wf = workflow("preload_wait", {"p": 0.6, "x": 0.9, "y": 0.05}, [("p", "y"), ("x", "y")])
    plan = assigned(wf, PRE_PLACES, PRE_SEQ)
    pre, cls = optimize(plan, wf, MODEL, ["preload"])
    base, base_exists = _run_counting_exists(ex, wf, plan)
    real, real_exists = _run_counting_exists(ex, wf, pre, protocol=cls.for_plan(wf, pre))
    assert real.results == base.results
    t = real.trace.tasks.set_index("task_id")
    assert t.loc["y", "download_end_s"] < t.loc["x", "exec_end_s"]          # fetched while x ran
    # one look for y's inputs when the thread starts, then a blocking pop: no EXISTS every 20 ms while it waits
    # (with polls: 37-42 more than the base run's, the launchers' and the client's)
    assert real_exists <= base_exists + 10, (real_exists, base_exists)
    prefix = f"pl:{{{real.meta['run_id']}}}:"
    assert not [key for key in ex.client.scan_iter(match=prefix + "wake:*")]    # the worker deleted its list
    assert t.loc["y", "input_bytes"] >= EDGE
