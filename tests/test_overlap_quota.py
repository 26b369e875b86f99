"""A background transfer's CPU on a shared host (simulator.quota): the worker's thread inside its worker's quota,
beside the task it runs; the server's on the host's cores. Hand-computed on free transfers (Platform.zero)."""

from __future__ import annotations

import pytest

from planning.plan import Plan
from planning.protocol.optimizations import optimize
from simulator import simulate
from simulator.platform import Platform
from tests.test_optimizations_io import CATALOG, EDGE, MODEL, workflow

# w0 runs p (0.1 s) then q (1 s); w1 runs l (1 s) then c, which reads p's output (pre-loaded while l runs: from
# 0.1 on, when p's output is stored) and l's
WF = workflow("quota", {"p": 0.1, "q": 1.0, "l": 1.0, "c": 0.1}, [("p", "c"), ("l", "c")])
PLACES = {"p": "w0", "q": "w0", "l": "w1", "c": "w1"}
SEQ = {"w0": ["p", "q"], "w1": ["l", "c"]}


def exec_end(cores: float, thread_s: float, server_s: float, profile: str = "medium") -> dict[str, float]:
    """Executions' ends of the pre-loaded plan: ``thread_s`` / ``server_s`` seconds of CPU per fetch of EDGE bytes."""
    estimates = MODEL.estimate_workflow(WF, CATALOG, "mean")
    plan = Plan.from_assignment(WF, CATALOG, estimates, MODEL, "mean", PLACES, {w: profile for w in SEQ},
                                planner="assigned", sequence=SEQ)
    pre, cls = optimize(plan, WF, MODEL, ["preload"])
    assert cls.for_plan(WF, pre).preloads()
    platform = Platform.zero().with_(host_cores=cores, fetch_thread_s_per_byte=thread_s / EDGE,
                                     fetch_server_s_per_byte=server_s / EDGE, upload_thread_s_per_byte=0.0,
                                     upload_server_s_per_byte=0.0)
    tasks = simulate(WF, pre, MODEL, protocol=cls.for_plan(WF, pre), platform=platform).tasks.set_index("task_id")
    return tasks["exec_end_s"].to_dict()


def test_the_fetching_thread_takes_its_cpu_from_its_own_workers_task_on_a_one_cpu_quota() -> None:
    # three cores: nothing shares the host; the thread's 0.2 s come out of l's 1-CPU quota: l ends at 1.2; the
    # server's 0.3 s run on a free core and cost nobody anything
    ends = exec_end(3.0, 0.2, 0.3)
    assert ends["l"] == pytest.approx(1.2) and ends["q"] == pytest.approx(1.1)
    # no thread's CPU: l runs its second as if alone
    assert exec_end(3.0, 0.0, 0.3)["l"] == pytest.approx(1.0)


def test_the_servers_cpu_takes_its_share_of_busy_cores() -> None:
    # two cores, both busy from 0.1 (q on w0, l on w1): the server's 0.3 s join them at 2/3 core each until it
    # ends at 0.1 + 0.45 = 0.55; q and l have each lost 0.15 s by then (q ends at 1.25); l also carries the
    # thread's 0.2 s inside its quota: 1 + 0.15 + 0.2 = 1.35
    ends = exec_end(2.0, 0.2, 0.3)
    assert ends["q"] == pytest.approx(1.25) and ends["l"] == pytest.approx(1.35)


def test_a_thread_that_outlasts_the_task_takes_what_is_left_of_it_then_runs_alone() -> None:
    # the thread needs 1.5 s from 0.1; l has 0.9 s left: within the quota the two share it, so l loses 0.9 s and
    # ends at 1.9 (the thread's last 0.6 s then run on their own, beside c, on a free core: c's 0.1 s unslowed)
    ends = exec_end(3.0, 1.5, 0.0)
    assert ends["l"] == pytest.approx(1.9) and ends["c"] == pytest.approx(2.0)
