"""Every registered planner makes a valid, bounded, deterministic plan for every generator and shipped WfFormat file.

Parametrized over the registry, so a newly registered planner is covered as soon
as it needs no parameters (or is given some in ``PARAMS``).
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from planning import SLA, CostModel, generate, load_catalog, read_wfformat
from planning.planners import PLANNERS, get_planner
from planning.sources.generators import GENERATORS
from planning.workflow import Workflow

CATALOG = load_catalog("lambda")
SLA_MEAN = SLA.parse("mean")
DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"
SMALL = {"fan_out": {"width": 40}, "deep_chain": {"length": 40}, "random_layered": {"tasks": 60},
         "chain": {"length": 6}, "tree_reduction": {"leaves": 8}, "fork_join": {"width": 6}}


def memory_fit(wf: Workflow) -> str:
    """The cheapest profile every task fits in."""
    need = max((t.memory_mb or 0.0) for t in wf.tasks)
    return next(p.name for p in CATALOG.by_price() if p.memory_mb >= need)


def params_for(name: str, wf: Workflow) -> dict:
    if name == "uniform":
        return {"profile": memory_fit(wf)}
    if name == "cost-deadline":     # feasible: half again the all-fastest makespan
        fastest = get_planner("uniform", profile=CATALOG.fastest().name).plan(wf, CATALOG, CostModel(), SLA_MEAN)
        return {"deadline": fastest.makespan_s * 1.5}
    return {}


def needs_no_parameters(cls) -> bool:
    sig = inspect.signature(cls.__init__)
    return all(p.default is not inspect.Parameter.empty for n, p in sig.parameters.items()
               if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


COVERED = sorted(n for n, cls in PLANNERS.items() if n in ("uniform", "cost-deadline") or needs_no_parameters(cls))


@lru_cache(maxsize=None)
def load(source: str) -> Workflow:
    if source.startswith("gen:"):
        name = source[4:]
        return generate(name, **SMALL.get(name, {}))
    return read_wfformat(DATA / source)


SOURCES = [f"gen:{g}" for g in sorted(GENERATORS)] + sorted(p.name for p in DATA.glob("*.json"))


def test_the_five_planners_are_registered_and_covered() -> None:
    assert {"uniform", "critical-path", "wukong", "heft", "cost-deadline"} <= set(COVERED)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", COVERED)
def test_valid_bounded_deterministic(name: str, source: str) -> None:
    wf = load(source)
    params = params_for(name, wf)
    plan = get_planner(name, **params).plan(wf, CATALOG, CostModel(), SLA_MEAN)
    assert plan.validate(wf) is plan and plan.planner == name
    assert sorted(plan.tasks.index) == sorted(wf.task_ids)
    assert plan.makespan_s >= max(plan.lower_bounds.values()) - 1e-9
    assert plan.makespan_s > 0 and plan.cost >= 0      # a pseudo-planner of a recorded cluster costs nothing
    if name == "cost-deadline":
        assert plan.feasible and plan.makespan_s <= params["deadline"]
    again = get_planner(name, **params).plan(wf, CATALOG, CostModel(), SLA_MEAN)
    assert again.worker_of == plan.worker_of and again.worker_profile == plan.worker_profile
    assert again.makespan_s == plan.makespan_s
    pd.testing.assert_frame_equal(again.tasks, plan.tasks)


# ---------------------------------------------------------------- the typed abstract base
def test_the_planner_base_is_abstract_and_typed() -> None:
    from planning.planners import Planner

    with pytest.raises(TypeError):
        Planner()

    class NoPlan(Planner):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoPlan()
    params = inspect.signature(Planner.plan).parameters
    assert [params[p].annotation for p in ("workflow", "catalog", "cost_model", "sla")] == \
        ["Workflow", "Catalog", "CostModel", "SLA"]
    assert inspect.signature(Planner.plan).return_annotation == "Plan"


@pytest.mark.parametrize("name", ["uniform", "critical-path", "heft", "cost-deadline", "recorded"])
def test_built_in_planners_say_their_types(name: str) -> None:
    signature = inspect.signature(PLANNERS[name].plan)
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values() if p.name != "self")
    assert signature.return_annotation == "Plan"
