"""The optimizations benchmark's bookkeeping: bytes moved, changes against base, the noise floor, the targets."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_optimizations as bench  # noqa: E402
from planning.costs.cost_model import CostModel  # noqa: E402
from planning.plan import Plan  # noqa: E402
from planning.profiles import load_catalog  # noqa: E402
from planning.protocol import WorkerProtocol  # noqa: E402
from planning.protocol.optimizations import optimize  # noqa: E402


def test_bytes_moved_counts_stored_outputs_and_fetched_inputs() -> None:
    wf = bench.fan_large()
    model, catalog = CostModel(), load_catalog("local")
    estimates = model.estimate_workflow(wf, catalog, "mean")
    spread = {t: ("w0" if t in ("split", "gather") else t) for t in wf.task_ids}
    plan = Plan.from_assignment(wf, catalog, estimates, model, "mean", spread, {w: "small" for w in spread.values()},
                                planner="spread")
    # split's 1 MB stored once and fetched six times; six 30 MB outputs stored and fetched; gather's 1 MB stored
    mb = bench.MB
    assert bench.bytes_moved(wf, WorkerProtocol.for_plan(wf, plan)) == (1 + 6 + 6 * 30 * 2 + 1) * mb
    one_worker, _ = optimize(Plan.from_assignment(wf, catalog, estimates, model, "mean", dict.fromkeys(spread, "w0"),
                                                  {"w0": "small"}, planner="one"), wf, model, ["retention"])
    assert bench.bytes_moved(wf, WorkerProtocol.for_plan(wf, one_worker)) == 1 * mb    # the sink's result only


def _row(variant: str, planned: float, simulated: float, real: float, cold: int = 0) -> dict:
    return {"variant": variant, "cold_on_path": cold,
            "change": {"planned": planned, "simulated": simulated, "real": real,
                       "sign_right": bench._same_sign(simulated, real),
                       "within_10pp": abs(simulated - real) <= 0.10}}


def test_the_noise_floor_is_the_real_change_of_variants_predicted_to_change_nothing() -> None:
    rows = [_row("retention", 0.0, 0.0, 0.04), _row("clustering", 0.0, 0.0, -0.10), _row("prewarm", -0.2, -0.1, -0.3)]
    assert bench.noise_floor(rows) == {"cells": 2, "median_abs_real_change": 0.07, "max_abs_real_change": 0.10}


def test_targets_judge_sign_size_and_cold_starts() -> None:
    good = [_row("prewarm", -0.2, -0.15, -0.12), _row("retention", 0.0, 0.0, 0.005)]
    checks = bench.targets(good)
    assert checks["prediction_sign_every_cell"]["pass"] and checks["prediction_within_10pp_share"]["value"] == 1.0
    assert checks["prewarm_cold_starts_on_planned_path"]["pass"]
    bad = bench.targets([_row("prewarm", -0.2, -0.15, 0.12, cold=1)])
    assert not bad["prediction_sign_every_cell"]["pass"] and not bad["prewarm_cold_starts_on_planned_path"]["pass"]


def test_the_preload_target_is_the_smallest_real_cut_on_fan_large() -> None:
    rows = [{**_row("preload+delayed_io", -0.1, -0.1, -0.25), "workflow": "fan-large"},
            {**_row("preload+delayed_io", -0.1, -0.1, -0.15), "workflow": "fan-large"},
            {**_row("preload+delayed_io", -0.1, -0.1, -0.60), "workflow": "ladder"}]
    cut = bench.targets(rows)["preload_plus_delayed_io_real_cut"]
    assert cut["value"] == 0.15 and cut["pass"] is False


def test_the_ladder_is_a_deep_chain_both_planners_spread() -> None:
    from planning.planners import get_planner

    wf, model, catalog = bench.ladder(), CostModel(), load_catalog("local")
    spine = [f"c{i}" for i in range(10)]
    for name in bench.PLANNERS:
        plan = get_planner(name).plan(wf, catalog, model, "mean")
        assert len(set(plan.worker_of.values())) >= 2
        assert len({plan.worker_of[t] for t in spine}) >= 2          # the chain itself crosses workers
        pre, cls = optimize(plan, wf, model, ["preload", "delayed_io"])
        # heft's placement leaves transfers to overlap; critical-path's strict alternation none (each input from
        # the other worker is stored after the task before it ends, each upload is critical)
        assert pre.makespan_s < plan.makespan_s if name == "heft" else pre.makespan_s <= plan.makespan_s

