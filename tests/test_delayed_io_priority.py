"""A lazy upload yields the CPU to the executions when the plan leaves it room: the executor's uploader thread is
niced, the simulator weighs its CPU work so (weighted max-min shares), hand-computed."""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest
import redis

from executor.switching import BACKGROUND_NICE, yield_to_running_work
from executor.worker_delayed import _Uploader
from planning.protocol.optimizations import DelayedIO, delayed_io_protocol
from planning.protocol.optimizations.delayed_io import YIELD_MIN_SLACK_S, yielding_workers
from simulator import overlap_loop, simulate
from simulator.host import BACKGROUND_UPLOAD_NICE, fair_rates, nice_weight
from simulator.platform import Platform
from tests.test_optimizations_io import CATALOG, DIO, DIO_PLACES, DIO_SEQ, EDGE, MODEL, assigned, workflow

linux_threads = pytest.mark.skipif(not hasattr(os, "getpriority") or not hasattr(threading, "get_native_id"),
                                   reason="a thread's own priority is Linux's")


def priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux_threads
def test_a_thread_lowers_only_its_own_priority() -> None:
    seen: dict[str, object] = {}

    def background() -> None:
        before = priority()
        seen["yielded"], seen["change"] = yield_to_running_work(), priority() - before

    main = priority()
    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == {"yielded": True, "change": min(BACKGROUND_NICE, 19 - main)}
    assert priority() == main          # the task's thread keeps its priority


@linux_threads
@pytest.mark.parametrize("yields", [True, False])
def test_the_uploader_thread_yields_to_the_executions_when_the_plan_says_so(yields: bool) -> None:
    # the worker an uploader serves: its protocol says whether its uploads yield
    owner = SimpleNamespace(worker="w1", protocol=SimpleNamespace(lazy_upload_yields=lambda w: yields and w == "w1"))
    up = _Uploader(owner=owner, client=redis.Redis(unix_socket_path="/nonexistent"))   # never connects: no job
    up.start()
    up.jobs.put(None)
    up.join(timeout=5.0)
    assert not up.is_alive() and up.yields is yields and up.error is None


def test_a_worker_yields_when_each_of_its_lazy_uploads_has_room_in_the_plan() -> None:
    # a (w1, 1 s) feeds b (w1, 2 s) and c (w2, 0.5 s), whose worker first runs x: with x as long as a, c runs as
    # soon as a's upload is read (a download's time, under YIELD_MIN_SLACK_S): w1 keeps its priority; c is a
    # sink, fetched at the plan's end after b: w2 yields.  With x 3 s, a's upload has 2 s of room: w1 yields, and
    # c ends last (the client fetches its output at once): w2 does not.
    # (every output lazy: the protocol as a plan with both lazy would have it; which are is lazy_outputs' rule)
    places, seq = {"a": "w1", "b": "w1", "x": "w2", "c": "w2"}, {"w1": ["a", "b"], "w2": ["x", "c"]}
    for x, room, yielding in ((1.0, (0.0, YIELD_MIN_SLACK_S), {"w2"}), (3.0, (1.5, 5.0), {"w1"})):
        wf = workflow("room", {"a": 1.0, "b": 2.0, "x": x, "c": 0.5}, [("a", "b"), ("a", "c"), ("x", "c")])
        every = delayed_io_protocol(DelayedIO, ())
        lazy = assigned(wf, places, seq).retimed(wf, MODEL, every)
        t = lazy.tasks
        assert room[0] < t.loc["c", "exec_start_s"] - t.loc["a", "done_s"] < room[1]
        assert bool(lazy.makespan_s - t.loc["c", "done_s"] >= YIELD_MIN_SLACK_S) is ("w2" in yielding)
        assert yielding_workers(lazy, wf, every.for_plan(wf, lazy)) == yielding
        cls = delayed_io_protocol(DelayedIO, (), yielding_workers(lazy, wf, every.for_plan(wf, lazy)))
        assert cls.for_plan(wf, lazy).lazy_upload_yields("w1") is ("w1" in yielding)


def test_weighted_fair_shares() -> None:
    assert fair_rates([1.0, 1.0, 1.0], 2.0, [1.0, 1.0, 0.5]) == pytest.approx([0.8, 0.8, 0.4])
    # the capped job first (0.3), then the level 1.7 / 1.1 = 1.55 caps the second; the light one gets what is left
    assert fair_rates([0.3, 1.0, 1.0], 2.0, [1.0, 1.0, 0.1]) == pytest.approx([0.3, 1.0, 0.7])
    caps = [0.5, 1.0, 1.0, 2.0]
    assert fair_rates(caps, 2.0, [1.0] * 4) == fair_rates(caps, 2.0)     # weights of 1: the unweighted shares
    assert nice_weight(0) == 1.0 and nice_weight(10) == pytest.approx(110 / 1024, rel=0.01)   # CFS's table
    assert BACKGROUND_UPLOAD_NICE == BACKGROUND_NICE


def test_a_lazy_upload_takes_a_light_share_of_a_shared_host_in_the_simulation() -> None:
    # DIO on one core, free transfers: a (w1) runs 0 -> 1; then b (w1, 2 s), c (w2, 0.5 s) and a's lazy upload
    # (1 s of CPU at weight w) share the core: c ends at 1 + 0.5 (2 + w); then b, the upload and c's own (a sink's
    # output, lazy too) share it: b's 1.5 s left end 1.5 (1 + 2 w) later (unweighted: both uploads would be done
    # first and b end at 5.5)
    # the upload's CPU is the server's here (the thread's, inside its worker's quota: tests/test_overlap_quota.py)
    costs = {"upload_server_s_per_byte": 1.0 / EDGE, "upload_thread_s_per_byte": 0.0,
             "fetch_server_s_per_byte": 0.0, "fetch_thread_s_per_byte": 0.0}   # c's (foreground) fetch: no CPU here
    w = overlap_loop.upload_weight()
    assert w == pytest.approx(nice_weight(10) / 0.5)
    estimates = MODEL.estimate_workflow(DIO, CATALOG, "mean")
    from planning.plan import Plan
    plan = Plan.from_assignment(DIO, CATALOG, estimates, MODEL, "mean", DIO_PLACES, {x: "medium" for x in DIO_SEQ},
                                planner="assigned", sequence=DIO_SEQ)
    lazy = plan.retimed(DIO, MODEL, DelayedIO)
    cls = delayed_io_protocol(DelayedIO, (), {"w1", "w2"})      # both outputs lazy, both workers' uploads yield
    one_core = Platform.zero().with_(host_cores=1.0, **costs)
    s = simulate(DIO, lazy, MODEL, protocol=cls.for_plan(DIO, lazy), platform=one_core).tasks.set_index("task_id")
    c_end = 1 + 0.5 * (2 + w)
    assert s.loc["c", "exec_end_s"] == pytest.approx(c_end)
    assert s.loc["b", "exec_end_s"] == pytest.approx(c_end + 1.5 * (1 + 2 * w))
