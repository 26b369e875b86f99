"""The pre-load's start lag (Platform.preload_lag_s): a pre-loaded input's fetch starts that long after the input is
stored, or after its pre-load started when stored before. Hand-computed on free transfers (Platform.zero)."""

from __future__ import annotations

import pytest

from planning.plan import Plan
from planning.protocol.optimizations import optimize
from planning.workflow import Workflow
from simulator import simulate
from simulator.platform import Platform
from tests.test_optimizations_io import CATALOG, MODEL, workflow

# w0 runs p (0.1 s); w1 runs l0 (0.05 s), l (1 s) then c, which reads p's output (stored at 0.1, pre-loaded while l
# runs: its thread starts with w1's first task, l0, at 0 - c is w1's first pre-loaded task) and l's
WF = workflow("lag", {"p": 0.1, "l0": 0.05, "l": 1.0, "c": 0.1}, [("p", "c"), ("l0", "l"), ("l", "c")])
PLACES = {"p": "w0", "l0": "w1", "l": "w1", "c": "w1"}
SEQ = {"w0": ["p"], "w1": ["l0", "l", "c"]}


def preloaded(lag_s: float, wf: Workflow = WF, places: dict[str, str] = PLACES,
              seq: dict[str, list[str]] = SEQ) -> dict[str, dict]:
    """``wf``'s pre-loaded plan's task table (download start, execution start) on free transfers with ``lag_s``."""
    estimates = MODEL.estimate_workflow(wf, CATALOG, "mean")
    plan = Plan.from_assignment(wf, CATALOG, estimates, MODEL, "mean", places, {w: "medium" for w in seq},
                                planner="assigned", sequence=seq)
    pre, cls = optimize(plan, wf, MODEL, ["preload"])
    platform = Platform.zero().with_(preload_lag_s=lag_s)
    tasks = simulate(wf, pre, MODEL, protocol=cls.for_plan(wf, pre), platform=platform).tasks.set_index("task_id")
    return tasks[["download_start_s", "exec_start_s"]].to_dict("index")


def test_a_fetch_starts_the_lag_after_its_input_is_stored() -> None:
    # p's output stored at 0.1 (free upload), l running since 0.05: c's fetch at 0.1 + 0.02; c runs at l's end, 1.05
    c = preloaded(0.02)["c"]
    assert c["download_start_s"] == pytest.approx(0.12) and c["exec_start_s"] == pytest.approx(1.05)
    assert preloaded(0.0)["c"]["download_start_s"] == pytest.approx(0.1)         # no lag: at once, as before


def test_a_lag_longer_than_the_task_before_delays_the_task() -> None:
    # fetch from 0.1 + 1.2 = 1.3 (free): c waits for it past l's end at 1.05
    c = preloaded(1.2)["c"]
    assert c["download_start_s"] == pytest.approx(1.3) and c["exec_start_s"] == pytest.approx(1.3)


def test_an_input_stored_while_the_first_task_runs_is_fetched_then_not_when_the_task_before_starts() -> None:
    # l0 runs 0.3 s: p's output is stored at 0.1, while l0 (c's anchor: w1's first task) runs; the fetch starts
    # 0.02 after that, not at l's start (0.3; the rule before issue 17's fan-large study: 0.32)
    late = workflow("lag-late", {"p": 0.1, "l0": 0.3, "l": 1.0, "c": 0.1}, [("p", "c"), ("l0", "l"), ("l", "c")])
    assert preloaded(0.02, late)["c"]["download_start_s"] == pytest.approx(0.12)


def test_an_input_stored_before_the_preload_starts_is_fetched_the_lag_after_that_start() -> None:
    # w1's first task l0 waits for r (w2, 0.3 s): c's pre-load starts with l0 at 0.3, after p's output is stored
    # (0.1); the fetch starts 0.02 after that
    late = workflow("lag-anchor", {"p": 0.1, "r": 0.3, "l0": 0.05, "l": 1.0, "c": 0.1},
                    [("p", "c"), ("r", "l0"), ("l0", "l"), ("l", "c")])
    places = {**PLACES, "r": "w2"}
    assert preloaded(0.02, late, places, {**SEQ, "w2": ["r"]})["c"]["download_start_s"] == pytest.approx(0.32)


def test_the_lag_is_a_platform_term_in_seconds() -> None:
    assert Platform().preload_lag_s == 0.0
    with pytest.raises(Exception, match="preload_lag_s must be >= 0"):
        Platform(preload_lag_s=-0.01)
