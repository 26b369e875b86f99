"""One cell pipeline: ``planlab plan``/``simulate`` and a config's cell plan and simulate through the same stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.config import parse_config
from experiments.pipeline import PlannedCell, make_protocol, plan_cell, simulate_cell
from experiments.runner import run_experiment
from planning import SLA, CostModel, generate, load_catalog
from planning.errors import PlanError
from planning.planners import get_planner
from planning.protocol import WorkerProtocol

WORKFLOW = "gen:fork_join:width=4"


def test_plan_cell_builds_the_named_protocol_for_its_plan() -> None:
    workflow, catalog = generate("fork_join", width=4), load_catalog("lambda")
    cell = plan_cell(get_planner("heft"), workflow, catalog, CostModel(), SLA.parse("p95"))
    assert isinstance(cell, PlannedCell) and cell.protocol is None and cell.protocol_option == {}
    named = plan_cell(get_planner("heft"), workflow, catalog, CostModel(), SLA.parse("p95"),
                      "planning.protocol:WorkerProtocol")
    assert type(named.protocol) is WorkerProtocol and named.protocol_option == {"protocol": named.protocol}
    assert named.plan.makespan_s == cell.plan.makespan_s
    with pytest.raises(PlanError, match="unknown protocol"):
        make_protocol("no-such-protocol", workflow, cell.plan)


def test_simulate_cell_passes_the_protocol_to_the_engine() -> None:
    workflow, catalog = generate("chain", length=3), load_catalog("local")
    plain = plan_cell(get_planner("uniform", profile="small"), workflow, catalog, CostModel(), SLA.parse("mean"))
    seen = {}

    def engine(workflow, plan, cost_model, **options):
        seen.update(options)
        from simulator import simulate
        return simulate(workflow, plan, cost_model, **options)

    trace = simulate_cell(plain, simulate_fn=engine, seed=3)
    assert seen == {"seed": 3} and trace.makespan_s > 0
    protocol = WorkerProtocol.for_plan(workflow, plain.plan)
    with_protocol = PlannedCell(workflow, plain.plan, plain.cost_model, plain.sla, protocol)
    simulate_cell(with_protocol, simulate_fn=engine)
    assert seen["protocol"] is protocol


def test_the_single_commands_and_a_config_cell_agree(tmp_path: Path, capsys) -> None:
    """The same workflow, planner, catalog and SLA: planlab plan/simulate print what the runner's cell records."""
    args = [WORKFLOW, "--planner", "heft", "--catalog", "lambda", "--sla", "p95"]
    assert main(["plan", *args, "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert main(["simulate", *args, "--replications", "0", "--json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    config = parse_config({"name": "agree", "phases": ["plan", "simulate"], "catalog": "lambda", "slas": ["p95"],
                           "simulate": {"replications": 20}, "workflow": [{"spec": WORKFLOW, "name": "fj"}],
                           "planner": [{"name": "heft"}]})
    row = run_experiment(config, tmp_path / "r", progress=False, log=lambda msg: None).results.summary.iloc[0]
    assert row["planned_makespan_s"] == planned["makespan_s"] == simulated["planned_makespan_s"]
    assert row["sim_trace_makespan_s"] == simulated["makespan_deterministic_s"]
