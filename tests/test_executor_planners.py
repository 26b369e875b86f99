"""Every planner's plan runs for real: a DSL workflow with code and a replayed WfFormat execution.

Static plans must place every task where the plan says; dynamic (``wukong``)
plans where the protocol's run-time rules put it.  One run goes through a
separately started, password-protected server by URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import Executor, ExecutorSettings
from executor.server import EmbeddedRedis
from planning.costs.cost_model import CostModel
from planning.planners import PLANNERS, get_planner
from planning.profiles import load_catalog
from planning.sla import SLA
from planning.sources.generators import generate
from planning.sources.wfformat import read_wfformat
from planning.workflow import run_locally

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"
PARAMS = {"uniform": {"profile": "medium"}, "wukong": {"profile": "medium"}, "cost-deadline": {"deadline": 1e6}}
PLANNER_NAMES = sorted(n for n in PLANNERS if n != "recorded")  # recorded replays a cluster's machines


@pytest.fixture(scope="module")
def ex() -> Iterator[Executor]:
    with Executor(settings=ExecutorSettings(scale=0.001, max_replay_bytes=65536, keep_alive_s=10)) as executor:
        yield executor


def _plan(name: str, wf):
    return get_planner(name, **PARAMS.get(name, {})).plan(wf, load_catalog("local"), CostModel(), SLA.parse("p95"))


def _check_placement(plan, trace) -> None:
    placed = dict(zip(trace.tasks["task_id"], trace.tasks["worker"]))
    if not plan.dynamic:
        assert placed == plan.worker_of
    else:  # every task ran; roots on their own dynamic workers
        assert set(placed) == set(plan.worker_of)


@pytest.mark.parametrize("name", PLANNER_NAMES)
def test_a_dsl_workflow_runs_under_every_planner(ex: Executor, name: str) -> None:
    wf = generate("five_branches", size=8, rounds=2)
    plan = _plan(name, wf)
    result = ex.run(wf, plan)
    assert result.results == {"sink": run_locally(wf)["sink"]}
    _check_placement(plan, result.trace)
    assert result.meta["planner"] == plan.planner


@pytest.mark.parametrize("name", PLANNER_NAMES)
def test_a_replayed_wfformat_workflow_runs_under_every_planner(ex: Executor, name: str) -> None:
    wf = read_wfformat(DATA / "seismology-chameleon-100p-001.json")
    plan = _plan(name, wf)
    result = ex.run(wf, plan)
    assert set(result.results) == set(wf.sinks())
    assert len(result.trace.tasks) == len(wf)
    _check_placement(plan, result.trace)


def test_wukong_through_a_password_protected_server_by_url() -> None:
    wf = generate("tree_reduction", leaves=6, arity=2, units=200)
    plan = _plan("wukong", wf)
    assert plan.dynamic
    with EmbeddedRedis(tcp=True, password="wk-pass") as server:
        with Executor(server.url) as ex:
            result = ex.run(wf, plan)
    assert result.results == {s: run_locally(wf)[s] for s in wf.sinks()}
    assert "wk-pass" not in result.meta["redis"]
    # the wukong planner predicts the dynamic rule's placement; with these durations it is what ran
    placed = dict(zip(result.trace.tasks["task_id"], result.trace.tasks["worker"]))
    roots = [t for t in wf.task_ids if not wf.parents(t)]
    assert all(placed[r] == plan.worker_of[r] for r in roots)
