"""A plan says how many CPUs it holds at once, and warns when the host it will run on has fewer."""

from __future__ import annotations

import math

from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)


def test_peak_cpus_counts_the_workers_alive_at_once():
    """fork_join width 8 on 'large' (2 CPUs): the fork's worker and 7 more branch workers run together: 16."""
    workflow = generate("fork_join", width=8)
    plan = get_planner("uniform", profile="large").plan(workflow, load_catalog("local"), FREE, "mean")
    assert plan.peak_cpus == 16.0
    note = plan.capacity_note(2.0)
    assert note is not None and "16 CPUs" in note and "2 cores" in note
    assert plan.capacity_note(16.0) is None
    assert plan.summary()["peak_cpus"] == 16.0


def test_a_chain_on_one_worker_holds_one_quota():
    workflow = generate("chain", length=5)
    plan = get_planner("uniform", profile="small").plan(workflow, load_catalog("local"), FREE, "mean")
    assert plan.peak_cpus == 0.5
    assert plan.capacity_note(2.0) is None


def test_planlab_plan_warns_when_a_local_plan_is_bigger_than_this_machine(capsys):
    import json

    from experiments.cli import main
    from simulator.platform import local_cores

    assert main(["plan", "gen:fork_join:width=16", "--planner", "uniform", "--profile", "large", "--catalog", "local",
                 "--sla", "mean", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["peak_cpus"] == 32.0
    if local_cores() < 32:
        assert any("the plan holds up to 32 CPUs at once" in note for note in info["notes"])
    # a serverless catalog runs on someone else's machines: no warning about this one
    assert main(["plan", "gen:fork_join:width=16", "--planner", "uniform", "--profile", "lambda-3008", "--catalog",
                 "lambda", "--sla", "mean", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert not any("CPUs at once" in note for note in info["notes"])
