"""The optimizations benchmark's bookkeeping: bytes moved, changes against base, the noise floor, the targets."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_optimizations as bench  # noqa: E402
from planning.costs.cost_model import CostModel  # noqa: E402
from planning.plan import Plan  # noqa: E402
from planning.profiles import load_catalog  # noqa: E402
from planning.protocol import WorkerProtocol  # noqa: E402
from planning.planners import get_planner  # noqa: E402
from planning.protocol.optimizations import optimize  # noqa: E402
from planning.tasks import Task  # noqa: E402
from planning.workflow import Workflow  # noqa: E402
from simulator import simulate  # noqa: E402
from simulator.platform import Platform  # noqa: E402


def test_bytes_moved_counts_stored_outputs_and_fetched_inputs() -> None:
    wf = bench.fan_large()
    model, catalog = CostModel(), load_catalog("local")
    estimates = model.estimate_workflow(wf, catalog, "mean")
    spread = {t: ("w0" if t in ("split", "gather") else t) for t in wf.task_ids}
    plan = Plan.from_assignment(wf, catalog, estimates, model, "mean", spread, {w: "small" for w in spread.values()},
                                planner="spread")
    # split's 1 MB stored once and fetched by the four first chunks; nine 32 MB partials stored and fetched (every
    # task on its own worker but split and gather); the five chained chunks fetch their 1 MB state (a share of the
    # stored partial before them); gather's 1 MB stored
    mb = bench.MB
    assert bench.bytes_moved(wf, WorkerProtocol.for_plan(wf, plan)) == (1 + 4 + 9 * 32 * 2 + 5 + 1) * mb
    one_worker, _ = optimize(Plan.from_assignment(wf, catalog, estimates, model, "mean", dict.fromkeys(spread, "w0"),
                                                  {"w0": "small"}, planner="one"), wf, model, ["retention"])
    assert bench.bytes_moved(wf, WorkerProtocol.for_plan(wf, one_worker)) == 1 * mb    # the sink's result only


def test_fan_large_is_a_skewed_scatter_gather_of_large_partials() -> None:
    from planning.planners import get_planner

    wf = bench.fan_large()
    chunks = {b: [t for t in wf.task_ids if t.startswith(f"b{b}c")] for b in range(4)}
    assert [len(c) for c in chunks.values()] == [2, 4, 2, 1]
    assert [wf.task(c[0]).runtime_s for c in chunks.values()] == [0.6, 0.15, 0.15, 0.15]
    assert len(wf.parents("gather")) == 9 and all(wf.task(p).output_bytes == 32 * bench.MB
                                                 for p in wf.parents("gather"))
    for name in bench.PLANNERS:   # each branch on one worker, the gather on the large partition's
        plan = get_planner(name).plan(wf, load_catalog("local"), CostModel(bandwidth_Bps=800e6), "mean")
        assert all(len({plan.worker_of[t] for t in c}) == 1 for c in chunks.values())
        assert len({plan.worker_of[c[0]] for c in chunks.values()}) == 4
        assert plan.worker_of["gather"] == plan.worker_of["b0c0"]


def test_the_real_change_interval_resamples_interleaved_pairs() -> None:
    # every pair 20 % slower: any resample says +20 %
    assert bench.change_ci([1.2, 2.4, 3.6], [1.0, 2.0, 3.0]) == pytest.approx([0.2, 0.2])
    lo, hi = bench.change_ci([1.0, 1.3, 0.8, 1.1, 0.9], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert lo < 0 < hi and lo >= -0.2 - 1e-9 and hi <= 0.3 + 1e-9    # within the runs' own spread
    assert bench.change_ci([1.0, 1.1], [1.0, 1.0]) is None      # two pairs: no interval


def test_a_sign_is_judged_only_where_the_runs_tell_one() -> None:
    # a real effect (its interval excludes 0): the prediction must go the same way, by at least the dead band
    assert bench.sign_agrees(-0.05, -0.2, [-0.3, -0.1], floor=0.02)
    assert not bench.sign_agrees(0.0, -0.2, [-0.3, -0.1], floor=0.02)      # "no change" for an effect: wrong
    assert not bench.sign_agrees(0.05, -0.2, [-0.3, -0.1], floor=0.02)
    # a small real effect whose interval excludes 0 has the interval's sign, though its median is in the dead band
    assert bench.sign_agrees(-0.026, -0.005, [-0.018, -0.001], floor=0.02)
    assert not bench.sign_agrees(0.026, -0.005, [-0.018, -0.001], floor=0.02)
    # no effect the runs can tell (the interval includes 0): the prediction agrees within the noise
    assert bench.sign_agrees(0.0, 0.3, [-0.05, 0.5], floor=0.02)
    assert bench.sign_agrees(-0.04, 0.03, [-0.05, 0.08], floor=0.02)      # inside the interval
    assert bench.sign_agrees(-0.015, 0.03, [0.0, 0.08], floor=0.02)       # under the noise floor
    assert not bench.sign_agrees(-0.3, 0.03, [-0.05, 0.08], floor=0.02)   # a predicted effect the runs do not show
    assert bench.sign_agrees(-0.1, -0.05, None, floor=0.02) and not bench.sign_agrees(0.1, -0.05, None, floor=0.02)


def test_judge_sets_each_variants_change_against_its_base() -> None:
    def row(variant: str, plan: float, sim: float, runs: list[float]) -> dict:
        return {"workflow": "w", "planner": "p", "variant": variant, "planned": {"makespan_s": plan},
                "simulated": {"makespan_s": sim}, "real_makespans_s": runs}
    rows = bench.judge([row("base", 2.0, 4.0, [1.0, 1.0, 1.0]), row("preload", 1.5, 3.0, [0.8, 0.8, 0.8])])
    c = rows[1]["change"]
    assert "change" not in rows[0]
    assert (c["planned"], c["simulated"]) == (pytest.approx(-0.25), pytest.approx(-0.25))
    assert c["real"] == pytest.approx(-0.2) and c["real_ci95"] == pytest.approx([-0.2, -0.2])
    assert c["sign_right"] and c["within_10pp"]


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
    late_without_host = [{**good[0], "cold_on_path_any_host": 1}, good[1]]
    assert not bench.targets(late_without_host)["prewarm_cold_starts_on_planned_path"]["pass"]
    checks = bench.targets(good)
    assert checks["prediction_sign_every_cell"]["pass"] and checks["prediction_within_10pp_share"]["value"] == 1.0
    assert checks["prewarm_cold_starts_on_planned_path"]["pass"]
    bad = bench.targets([_row("prewarm", -0.2, -0.15, 0.12, cold=1)])
    assert not bad["prediction_sign_every_cell"]["pass"] and not bad["prewarm_cold_starts_on_planned_path"]["pass"]


def _sweep_row(workflow: str, variant: str, planned: float, real_s: list[float]) -> dict:
    row = {"workflow": workflow, "planner": "heft", "variant": variant, "real_makespans_s": real_s,
           "repetitions": len(real_s), "load_median": 1.0}
    if variant != "base":
        row["change"] = {"planned": planned, "simulated": planned, "real": -0.1, "real_ci95": [-0.2, 0.0],
                         "sign_right": True, "within_10pp": True}
    return row


def test_the_partial_size_sweep_tabulates_the_cut_by_size_with_the_records_own_fan_large() -> None:
    sweep = [_sweep_row("fan-large@64MB", "base", 0, [4.0, 4.2, 4.1]),
             _sweep_row("fan-large@64MB", "preload+delayed_io", -0.3, [2.0, 2.1, 2.2]),
             _sweep_row("fan-large@16MB", "base", 0, [2.0]), _sweep_row("fan-large@16MB", "preload+delayed_io", -0.05, [1.9])]
    rows = [_sweep_row("fan-large", "base", 0, [3.0]), _sweep_row("fan-large", "preload+delayed_io", -0.2, [2.0]),
            {**_sweep_row("fan-large", "preload+delayed_io", -0.5, [1.0]), "planner": "critical-path"},
            _sweep_row("ladder", "preload+delayed_io", -0.4, [1.0])]
    table = bench.partial_size_sweep(sweep, rows)
    assert [r["partial_mb"] for r in table] == [16, bench.FAN_PARTIAL_MB, 64]
    assert [r["planned"] for r in table] == [-0.05, -0.2, -0.3]
    assert table[2]["base_real_s"] == 4.1 and table[2]["optimized_real_s"] == 2.1 and table[2]["gather_input_mb"] == 448
    assert table[1]["gather_input_mb"] == 7 * bench.FAN_PARTIAL_MB
    assert bench.sweep_workflows((16,))["fan-large@16MB"].task("b0c0").output_bytes == 16 * bench.MB


def test_prepare_takes_chosen_workflows_and_variants() -> None:
    cells = bench.prepare(CostModel(bandwidth_Bps=800e6), load_catalog("local"), Platform.for_local_host(),
                          planners=("heft",), chosen=bench.sweep_workflows((16,)), variants=bench.SWEEP_VARIANTS)
    assert [(c["workflow"], c["variant"]) for c in cells] == [("fan-large@16MB", v) for v in bench.SWEEP_VARIANTS]
    assert cells[1]["planned"]["makespan_s"] < cells[0]["planned"]["makespan_s"]     # pre-load hides a download


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



def test_the_host_probe_measures_the_executors_link_and_cold_start() -> None:
    from executor import Executor, ExecutorSettings

    with Executor(settings=ExecutorSettings(keep_alive_s=bench.KEEP_ALIVE_S)) as ex:
        probe = bench.probe_host(ex, CostModel(), load_catalog("local"), nbytes=4 * bench.MB, repetitions=1)
    assert probe["bytes"] == 4 * bench.MB
    seconds = (probe["upload_s_median"] + probe["download_s_median"]) / 2
    assert probe["upload_s_median"] > 0 and probe["download_s_median"] > 0
    assert probe["bandwidth_Bps"] == pytest.approx(4 * bench.MB / seconds)
    assert 0 < probe["cold_start_s"] < 5.0
    assert 0 <= probe["launcher_serial_s"] <= probe["cold_start_s"]     # a part of the cold start
    assert 1.0 <= probe["storage_sharing"] <= 2.0     # two concurrent downloads: 1x (no contention) to 2x one alone
    assert 0.0 <= probe["storage_first_come"] <= 1.0  # the first of two: half the link (equal shares) to all of it
    assert probe["sharing_lone_download_s"] > 0 and probe["sharing_bytes"] == bench.SHARING_BYTES
    assert probe["small_bytes"] == bench.SMALL_PROBE_BYTES
    assert all(probe[f"warm_{k}_s_median"] > 0 for k in ("small_up", "small_down", "large_up", "large_down"))


def test_the_cold_start_probe_starts_non_root_workers_cold_after_small_parents() -> None:
    catalog = load_catalog("local")
    wf, worker_of, profile_of = bench.cold_start_probe_workflow(catalog)
    readers = ["k0", "k1"]
    assert all(wf.parents(k) and wf.edge_bytes(p, k) == 1 for k in readers for p in wf.parents(k))
    assert {worker_of[p] for p in wf.parents("k0") + wf.parents("k1")} == {"w0"}   # the spine's worker, still busy
    # no reader finds an idle process of its profile: each has its own, not the spine's, of one CPU or more
    profiles = [profile_of[worker_of[k]] for k in readers]
    assert len(set(profiles)) == 2 and profile_of["w0"] not in profiles
    assert all(catalog[p].cpus >= 1.0 for p in profiles)


def test_the_simulated_platform_starts_the_probes_workers_as_late_as_probed() -> None:
    # measured the probe's way on a simulation of the probe's own workflow, the simulated cold start is the probed
    # one (plus the invocation's round trip): the launcher's part and the rest add up to it
    catalog = load_catalog("local")
    probe = {"bandwidth_Bps": 4e8, "cold_start_s": 0.08, "launcher_serial_s": 0.03}
    platform = bench.simulated_platform(probe)
    model = CostModel(bandwidth_Bps=4e8, cold_start_s=0.08)
    wf, worker_of, profile_of = bench.cold_start_probe_workflow(catalog)
    plan = Plan.from_assignment(wf, catalog, model.estimate_workflow(wf, catalog, "mean"), model, "mean",
                                worker_of, profile_of, planner="test")
    t = simulate(wf, plan, model, platform=platform).tasks.set_index("task_id")
    for k in ("k0", "k1"):
        assert bench.cold_start_seconds(t, k) == pytest.approx(0.08 + platform.invoke_s, abs=1e-6)


def test_the_probed_cold_start_runs_to_the_first_tasks_start_not_to_the_new_processs_first_line() -> None:
    from executor import Executor, ExecutorSettings

    catalog = load_catalog("local")
    runs = []
    with Executor(settings=ExecutorSettings(keep_alive_s=bench.KEEP_ALIVE_S)) as ex:
        real_run = ex.run

        def recorded(*args, **kwargs):
            result = real_run(*args, **kwargs)
            runs.append(result.trace.tasks.set_index("task_id"))
            return result

        ex.run = recorded
        cold = bench.probe_cold_start(ex, CostModel(), catalog, repetitions=1)
    (t,) = runs
    assert t.loc[["k0", "k1"], "cold_start"].all()
    # the spec, code, claim and cgroups come after the process's first line (worker_start_s): counted too
    first_line = (t.loc[["k0", "k1"], "worker_start_s"] - t.loc[["k0", "k1"], "ready_s"]).median()
    assert cold > first_line
    assert cold == pytest.approx((bench.cold_start_seconds(t, "k0") + bench.cold_start_seconds(t, "k1")) / 2)


def test_the_sharing_probe_starts_its_readers_downloads_together_and_takes_their_span() -> None:
    wf, worker_of = bench.sharing_probe_workflow(2, nbytes=3)
    assert sorted(wf.parents("b0")) == ["a", "p0"] and sorted(wf.parents("b1")) == ["a", "p1"]
    assert {worker_of[t] for t in ("a", "b0", "b1")} == {"w0", "w1", "w2"} and worker_of["p1"] == worker_of["b1"]
    assert wf.edge_bytes("a", "b1") == 3 and wf.task("a").output_bytes == 3
    import pandas as pd
    # b0 downloads 1.00-1.06, b1 1.01-1.07: the pair's span 0.07
    tasks = pd.DataFrame({"download_start_s": [1.0, 1.01], "download_end_s": [1.06, 1.07]}, index=["b0", "b1"])
    assert bench.download_span(tasks, ["b0", "b1"]) == pytest.approx(0.07)
    assert bench.download_span(tasks, ["b0"]) == pytest.approx(0.06)


def simulated_probe_downloads(platform, readers: int, late_s: float):
    """The sharing probe's workflow (``readers`` downloads of one 20 MB output) simulated on ``platform``, b1's
    worker running its root until a's output is stored (0.4 s) plus ``late_s``: its tasks by id."""
    catalog = load_catalog("local")
    model = CostModel(latency_s=0.0, bandwidth_Bps=100 * bench.MB, cold_start_s=0.0, warm_start_s=0.0)
    probe, worker_of = bench.sharing_probe_workflow(readers, nbytes=20 * bench.MB)
    wf = Workflow(probe.name)
    for t in probe.tasks:
        wf.add_task(dataclasses.replace(t, runtime_s=0.4 + late_s) if t.id == "p1" else t)
    for t in probe.task_ids:
        for parent in probe.parents(t):
            wf.add_edge(parent, t, probe.edge_bytes(parent, t))
    plan = Plan.from_assignment(wf, catalog, model.estimate_workflow(wf, catalog, "mean"), model, "mean",
                                worker_of, {w: "medium" for w in set(worker_of.values())}, planner="test")
    return simulate(wf, plan, model, platform=platform).tasks.set_index("task_id")


@pytest.mark.parametrize("factor", [1.0, 1.4, 1.7, 2.0])
def test_the_sharing_factor_is_recovered_from_the_simulated_links_downloads_whatever_their_offset(factor) -> None:
    from simulator import Platform

    links = dict(storage_latency_s=0.0, storage_bandwidth_Bps=100 * bench.MB, cold_start_s=0.0, warm_start_s=0.0,
                 invoke_s=0.0, coordination_s=0.0, storage_sharing=factor)

    def downloads(readers: int, late_s: float) -> "object":
        return simulated_probe_downloads(Platform(**links), readers, late_s)

    lone = bench.download_span(downloads(1, 0.0), ["b0"])
    assert lone == pytest.approx(0.2)
    for late_s in (0.0, 0.05, 0.15):
        pair = downloads(2, late_s)
        starts = pair.loc[["b0", "b1"], "download_start_s"]
        assert starts["b1"] - starts["b0"] == pytest.approx(late_s, abs=1e-3)
        assert bench.sharing_factor(pair, ["b0", "b1"], lone) == pytest.approx(factor, rel=1e-3)
    # the pair's span over the lone download (the probe's factor before) reads an offset as sharing (below 2)
    span_ratio = bench.download_span(downloads(2, 0.15), ["b0", "b1"]) / lone
    assert span_ratio > factor + 0.1 if factor < 2 else span_ratio == pytest.approx(2.0)


@pytest.mark.parametrize("factor, first_come", [(2.0, 0.0), (1.6, 0.0), (1.6, 0.5), (1.3, 0.3), (2.0, 0.8), (2.0, 1.0)])
def test_the_sharing_probe_recovers_the_links_factor_and_first_share_from_pairs_at_any_offset(factor,
                                                                                               first_come) -> None:
    # the probe's readers simulated on a link of known terms, b1 started 0 / 30 / 80 ms after b0: the pairs' shapes
    # give back both terms, whatever the offsets (the first's lead, not the offset, is what first_come is)
    from simulator import Platform

    links = dict(storage_latency_s=0.0, storage_bandwidth_Bps=100 * bench.MB, cold_start_s=0.0, warm_start_s=0.0,
                 invoke_s=0.0, coordination_s=0.0, storage_sharing=factor, storage_first_come=first_come)

    def downloads(readers: int, late_s: float):
        return simulated_probe_downloads(Platform(**links), readers, late_s)

    lone = bench.download_span(downloads(1, 0.0), ["b0"])
    assert lone == pytest.approx(0.2)
    shapes = [bench.pair_shape(downloads(2, late_s), ["b0", "b1"]) for late_s in (0.03, 0.08)]
    assert [d for d, o, a in shapes] == pytest.approx([0.03, 0.08], abs=1e-3)
    for some in (shapes[:1], shapes[1:], shapes):
        terms = bench.link_sharing_terms(some, lone)
        assert terms["storage_sharing"] == pytest.approx(factor, rel=1e-3)
        assert terms["storage_first_come"] == pytest.approx(first_come, abs=1e-3)
    assert bench.simulated_platform({"bandwidth_Bps": 4e8, "cold_start_s": 0.08, **terms}).storage_first_come \
        == pytest.approx(first_come, abs=1e-3)


def test_pairs_that_did_not_overlap_leave_the_link_equal_shares() -> None:
    import pandas as pd

    apart = pd.DataFrame({"download_start_s": [0.0, 0.02], "download_end_s": [0.01, 0.03]}, index=["b0", "b1"])
    assert bench.pair_shape(apart, ["b0", "b1"]) is None
    assert bench.link_sharing_terms([], 0.01) == {"storage_sharing": 2.0, "storage_first_come": 0.0}
    # the second ending first (the first's lead lost): clipped to equal shares, not a negative preference
    assert bench.link_sharing_terms([(0.0, 0.015, -0.005)], 0.01)["storage_first_come"] == 0.0
    assert bench.simulated_platform({"bandwidth_Bps": 4e8, "cold_start_s": 0.08}).storage_first_come == 0.0


def test_the_preload_lag_runs_from_the_input_stored_or_the_threads_start_to_the_fetch() -> None:
    import pandas as pd

    wf, places, seq = bench.preload_lag_workflow(nbytes=7)
    assert sorted(wf.parents("y")) == ["a", "x"] and wf.edge_bytes("a", "y") == 7
    assert places["a"] != places["y"] == places["x"] and seq[places["y"]] == ["x", "y"]
    assert bench.LAG_PARENT_S < bench.LAG_BEFORE_S     # a's output is stored while x runs
    # a stored at 0.15, x runs 0.05-0.35, y's pre-loaded fetch 0.154-0.16: lag 4 ms
    t = pd.DataFrame({"upload_end_s": [0.15, 0.0, 0.0], "exec_start_s": [0.0, 0.05, 0.36],
                      "exec_end_s": [0.14, 0.35, 0.37], "download_start_s": [0.0, 0.0, 0.154],
                      "download_end_s": [0.0, 0.0, 0.16]}, index=["a", "x", "y"])
    assert bench.preload_lag(t) == pytest.approx(0.004)
    t.loc["x", "exec_start_s"] = 0.152                 # stored before x (the thread) started: from x's start
    assert bench.preload_lag(t) == pytest.approx(0.002)
    t.loc["y", "download_end_s"] = 0.355              # ended after x: the worker's own fetch, not the pre-load's
    assert bench.preload_lag(t) is None


def test_the_preload_lag_probe_runs_the_executors_preload() -> None:
    from executor import Executor, ExecutorSettings

    with Executor(settings=ExecutorSettings(keep_alive_s=bench.KEEP_ALIVE_S)) as ex:
        probe = bench.probe_preload_lag(ex, CostModel(), load_catalog("local"), repetitions=1)
    # the reader's input was fetched by the pre-load thread while x ran (a's output stored at ~0.1 s of x's 0.3 s)
    assert probe["preload_lag_runs"] == 1.0 and 0.0 <= probe["preload_lag_s"] < bench.LAG_BEFORE_S


def test_the_simulated_platform_starts_a_preload_as_late_as_probed() -> None:
    probe = {"bandwidth_Bps": 4e8, "cold_start_s": 0.08}
    assert bench.simulated_platform(probe).preload_lag_s == 0.0                    # not probed: at once
    assert bench.simulated_platform({**probe, "preload_lag_s": 0.004}).preload_lag_s == 0.004


def test_a_bursts_start_spacing_is_the_median_gap_between_consecutive_starts() -> None:
    # sorted 0.10 0.15 0.22 0.30 0.31: gaps 0.05 0.07 0.08 0.01, median (0.05 + 0.07) / 2 = 0.06
    assert bench.start_spacing([0.30, 0.10, 0.22, 0.15, 0.31]) == pytest.approx(0.06)
    assert bench.start_spacing([0.4]) == 0.0


def test_the_simulated_platform_splits_the_probed_cold_start_into_the_launchers_part_and_the_rest() -> None:
    probe = {"bandwidth_Bps": 4e8, "cold_start_s": 0.08, "launcher_serial_s": 0.03}
    platform = bench.simulated_platform(probe)
    assert platform.process_start_s == pytest.approx(0.03) and platform.cold_start_s == pytest.approx(0.05)
    assert platform.storage_bandwidth_Bps == 4e8 and platform.keep_alive_s == bench.KEEP_ALIVE_S
    assert platform.storage_sharing == 2.0                                       # not probed: equal shares
    assert bench.simulated_platform({**probe, "storage_sharing": 1.7}).storage_sharing == 1.7
    # a lone cold start takes as long as the probed 0.08 s all in the start-up: the launcher's 0.03, then 0.05
    wf = Workflow("one")
    wf.add_task(Task("a", "probe", runtime_s=0.0, output_bytes=1))
    # (a 1-CPU profile: a start-up is one core's work, and the probe's cold start was one such)
    plan = get_planner("uniform", profile="medium").plan(wf, load_catalog("local"), CostModel(), "mean")
    whole = platform.with_(process_start_s=0.0, cold_start_s=0.08)
    ready = [float(simulate(wf, plan, CostModel(), platform=p, durations={"a": 0.0}).workers["ready_s"].iloc[0])
             for p in (platform, whole)]
    assert ready[0] == pytest.approx(ready[1])
    assert whole.with_(cold_start_s=0.05) != platform        # the split is the probe's, not the default's


def test_the_simulated_link_moves_uploads_and_downloads_at_their_probed_rates() -> None:
    # the probe's 64 MB: up in 0.08 s, down in 0.2 s; the cost model keeps their mean (bandwidth_Bps), the link not
    probe = {"bandwidth_Bps": 4.57e8, "cold_start_s": 0.08, "bytes": 64e6, "upload_s_median": 0.08,
             "download_s_median": 0.2}
    platform = bench.simulated_platform(probe)
    assert platform.storage_bandwidth_Bps == pytest.approx(8e8) and platform.download_bandwidth_Bps == pytest.approx(3.2e8)
    older = bench.simulated_platform({k: v for k, v in probe.items() if not k.endswith("_s_median")})
    assert older.storage_bandwidth_Bps == 4.57e8 and older.download_bandwidth_Bps == 0.0   # a probe without them


def test_each_variant_runs_first_in_turn_and_every_other_repetition_goes_backwards() -> None:
    orders = [bench.run_order(8, rep) for rep in range(8)]
    assert all(sorted(o) == list(range(8)) for o in orders)            # every variant once per repetition
    assert sorted(o[0] for o in orders) == list(range(8))              # each first once in 8 repetitions
    assert orders[0] == [0, 1, 2, 3, 4, 5, 6, 7] and orders[1] == [1, 0, 7, 6, 5, 4, 3, 2]


def test_each_repetition_of_a_cell_starts_with_an_unrecorded_warm_up_run(monkeypatch) -> None:
    from planning.planners import get_planner
    from simulator import simulate

    wf = bench.ladder(steps=2)
    model, catalog = CostModel(), load_catalog("local")
    cells = [{"workflow": "ladder", "planner": "heft", "variant": v, "wf": wf, "cls": WorkerProtocol, "real_runs": [],
              "plan": get_planner("heft").plan(wf, catalog, model, "mean")} for v in ("base", "retention", "clustering")]
    ran: list[str] = []

    class _Executor:      # a simulated run stands for the real one; records which cell's plan ran
        def run(self, workflow, p, protocol):
            ran.append(next(c["variant"] for c in cells if c["plan"] is p))
            return type("Result", (), {"trace": simulate(workflow, p, model, protocol=protocol)})()

    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    bench.run_real(_Executor(), cells, repetitions=2)   # type: ignore[arg-type]
    # repetition 1: base's warm-up, then base, retention, clustering; repetition 2 (from the second variant,
    # backwards): retention's warm-up, then retention, base, clustering
    assert ran == ["base", "base", "retention", "clustering", "retention", "retention", "base", "clustering"]
    assert [len(c["real_runs"]) for c in cells] == [2, 2, 2]


def test_a_null_cell_is_checked_on_the_plans_decisions_and_on_every_real_run() -> None:
    from _null_cells import is_null, plan_decisions, trace_decisions
    from planning.planners import get_planner
    from simulator import simulate

    model, catalog = CostModel(), load_catalog("local")
    chain, fan = bench.generate("chain", length=4, units=20_000), bench.fan_large()

    def decisions(wf, names):
        base = get_planner("heft").plan(wf, catalog, model, "mean")
        plan, cls = optimize(base, wf, model, names)
        trace = simulate(wf, plan, model, protocol=cls.for_plan(wf, plan))    # a trace with the real one's columns
        return plan_decisions(wf, plan, cls.for_plan(wf, plan)), trace_decisions(trace.tasks)

    # a chain on one worker: clustering finds nothing to merge, pre-load nothing to fetch - the same decisions
    assert decisions(chain, ()) == decisions(chain, ("clustering",)) == decisions(chain, ("preload",))
    # retention removes outputs: the protocol decides otherwise, though the trace looks alike
    assert decisions(chain, ("retention",))[0] != decisions(chain, ())[0]
    # fan-large: pre-load fetches ahead, delayed I/O's next task starts before the upload ends - both in the trace
    base = decisions(fan, ())
    for names in (("preload",), ("delayed_io",)):
        assert decisions(fan, names)[0] != base[0] and decisions(fan, names)[1] != base[1]
    cell = {"plan_decisions": "p", "trace_decisions": ["a", "a", "b"]}
    assert is_null(cell, {"plan_decisions": "p", "trace_decisions": ["b", "a"]})["null"]
    assert not is_null(cell, {"plan_decisions": "q", "trace_decisions": ["a", "b"]})["null"]      # plan differs
    assert not is_null(cell, {"plan_decisions": "p", "trace_decisions": ["a"]})["null"]           # a run did not
    assert not is_null({"plan_decisions": "p"}, {"plan_decisions": "p"})["null"]                   # no runs: unknown


def test_a_null_cell_whose_interval_excludes_0_is_judged_against_its_bases_spread() -> None:
    from _null_cells import run_spread

    assert run_spread([1.0, 1.1, 0.9, 1.0, 1.05]) == pytest.approx(0.2) and run_spread([1.0, 1.0]) is None

    def row(variant: str, runs: list[float], decided: str = "p", sim: float = 4.0) -> dict:
        return {"workflow": "w", "planner": "p", "variant": variant, "planned": {"makespan_s": 2.0},
                "simulated": {"makespan_s": sim}, "real_makespans_s": runs, "plan_decisions": decided,
                "trace_decisions": ["t"] * len(runs)}
    base = row("base", [1.0, 1.1, 0.9, 1.0, 1.05])                   # spread 0.2
    slower = [1.06, 1.16, 0.96, 1.06, 1.11]                          # every pair +6 %: the interval excludes 0
    rows = bench.judge([base, row("clustering", slower), row("retention", slower, decided="q"),
                        row("preload", [x * 1.3 for x in base["real_makespans_s"]]),
                        row("prewarm", slower, sim=3.6)])
    null, not_null, too_far, predicted = (r["change"] for r in rows[1:])
    assert null["real_ci95"][0] > 0 and rows[1]["null_check"]["null"]
    assert null["sign_right"] and null["null_floor"] == pytest.approx(0.2)          # noise the base showed itself
    assert not rows[2]["null_check"]["null"] and not not_null["sign_right"]        # its protocol decides otherwise
    assert not too_far["sign_right"]                                                 # +30 %: beyond the base's spread
    assert not predicted["sign_right"]           # a null cell's prediction must be "no change" (here -10 %)


def test_replay_workflows_are_predicted_without_a_speed_up_from_more_cpus() -> None:
    """A replay task burns one thread: on the 2-CPU "large" profile the ladder's 0.3 s spine task is predicted at
    0.3 s (it ran 300-310 ms), not at 0.3 / sqrt(2); a workflow with code keeps the caller's model."""
    from planning.sources.generators import generate

    model = CostModel(bandwidth_Bps=5e8, cold_start_s=0.06)
    ladder = bench.ladder()
    replay = bench.model_for(ladder, model)
    assert replay is not model and replay.prior_exponent == bench.REPLAY_PRIOR_EXPONENT == 0.0
    assert (replay.bandwidth_Bps, replay.cold_start_s) == (5e8, 0.06)
    catalog = load_catalog("local")
    def spine(m: CostModel) -> dict[str, float]:
        est = m.estimate_workflow(ladder, catalog, "mean")
        return dict(zip(est.profiles, est.base_exec_s[est.task_ids.index("c0")]))

    assert spine(replay)["large"] == pytest.approx(0.3) and spine(replay)["medium"] == pytest.approx(0.3)
    assert spine(model)["large"] == pytest.approx(0.3 / 2 ** 0.5)
    gemm = generate("gemm", blocks=2, block_size=64)
    assert bench.model_for(gemm, model) is model


def test_pre_warm_is_planned_for_the_simulated_hosts_cores() -> None:
    """The cells' pre-warm weighs its start-ups against the simulated platform's cores: on a 2-core host
    epigenomics heft's workers all wait for their first tasks while the root's worker holds the other core's
    idle time only, so what does not fit is held back (and counted), and a warmed one is never late."""
    probe = {"bandwidth_Bps": 3e8, "cold_start_s": 0.2, "launcher_serial_s": 0.02}
    platform = bench.simulated_platform(probe).with_(host_cores=2.0)
    model = CostModel(bandwidth_Bps=3e8, cold_start_s=0.2)
    cells = {c["variant"]: c for c in bench.prepare(model, load_catalog("local"), platform, only=("epigenomics",),
                                                     planners=("heft",))}
    pre = cells["prewarm"]
    assert pre["plan"].annotations["prewarm"]["host_cores"] == 2.0
    warmed = set(pre["plan"].assignment.warm_starts)
    assert pre["prewarm_held_back"] and not warmed & set(pre["prewarm_held_back"])
    assert pre["cold_on_path"] == 0 and cells["base"]["prewarm_held_back"] == []
    # planned without the host's cores, pre-warm warms the held-back workers too, each on time
    assert pre["cold_on_path_any_host"] == 0 and cells["base"]["cold_on_path_any_host"] == 0
    unlimited, _ = optimize(cells["base"]["plan"], pre["wf"], bench.model_for(pre["wf"], model), ["prewarm"])
    assert set(pre["prewarm_held_back"]) <= set(unlimited.assignment.warm_starts)


def test_the_warm_probe_pairs_give_the_link_two_regimes() -> None:
    # warm pairs: 10 MB up in 5 ms, down in 8 ms; 64 MB up in 42 ms, down in 91.2 ms: the link's rates are the 10 MB
    # pair's (2 and 1.25 GB/s), and the 64 MB pair's time beyond them is its bytes past 32 MiB at the large rates
    probe = {"bandwidth_Bps": 4.57e8, "cold_start_s": 0.08, "bytes": 64e6, "upload_s_median": 0.08,
             "download_s_median": 0.2, "small_bytes": 10e6, "warm_small_up_s_median": 0.005,
             "warm_small_down_s_median": 0.008, "warm_large_up_s_median": 0.042, "warm_large_down_s_median": 0.0912}
    platform = bench.simulated_platform(probe)
    beyond = 64e6 - bench.LARGE_TRANSFER_BYTES
    assert platform.storage_bandwidth_Bps == pytest.approx(2e9) and platform.download_bandwidth_Bps == pytest.approx(1.25e9)
    assert platform.large_transfer_bytes == bench.LARGE_TRANSFER_BYTES
    assert platform.large_upload_s_per_byte * beyond == pytest.approx(0.01)
    assert platform.large_download_s_per_byte * beyond == pytest.approx(0.04)
    # a 64 MB pair no slower than the small one's rate costs nothing more
    flat = bench.simulated_platform(probe | {"warm_large_up_s_median": 0.03, "warm_large_down_s_median": 0.05})
    assert flat.large_upload_s_per_byte == 0.0 and flat.large_download_s_per_byte == 0.0


def test_a_short_workflow_gets_more_repetitions_up_to_four_times_as_many() -> None:
    assert bench.repetitions_for(2.0, 5) == 5                  # 10 s of runs already
    assert bench.repetitions_for(0.165, 5) == 19               # ceil(3 / 0.165): a 0.17 s matrix pipeline
    assert bench.repetitions_for(0.05, 5) == 20                # a 50 ms chain: capped at 4 x 5
    assert bench.repetitions_for(0.05, 5, min_real_s=0) == 5   # off
    assert bench.repetitions_for(0.0, 5) == 5                  # nothing predicted: the minimum


def test_the_short_cells_of_a_run_get_their_extra_repetitions_interleaved_with_nothing_else(monkeypatch) -> None:
    ran: list[tuple[str, str]] = []
    cells = [{"workflow": w, "planner": "heft", "variant": v, "wf": w, "plan": (w, v), "cls": WorkerProtocol,
              "real_runs": [], "simulated": {"makespan_s": s}}
             for w, s in (("long", 2.0), ("short", 0.5)) for v in ("base", "retention")]

    class _Protocol(WorkerProtocol):
        @classmethod
        def for_plan(cls, wf, plan):
            return None

    class _Executor:      # records which cell ran; a fixed trace stands for the run
        def run(self, workflow, p, protocol):
            ran.append(p)
            return type("Result", (), {"trace": type("Trace", (), {"tasks": None, "workers": None, "makespan_s": 1.0})})()

    for c in cells:
        c["cls"] = _Protocol
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    monkeypatch.setattr(bench, "measures", lambda *a: {"makespan_s": 1.0})
    monkeypatch.setattr(bench, "trace_decisions", lambda tasks: "")
    bench.run_real(_Executor(), cells, repetitions=2, warm_up=False, min_real_s=3.0)
    assert [len(c["real_runs"]) for c in cells] == [2, 2, 6, 6]    # the long one 2 x 2 s; the short one 6 x 0.5 s
    assert ran[:4] == [("long", "base"), ("long", "retention"), ("short", "base"), ("short", "retention")]
    assert all(w == "short" for w, _ in ran[8:])                   # after the long one's two: the short one alone


def test_the_confirmation_interval_is_a_paired_t_interval_on_log_ratios() -> None:
    from _confirm import paired_change_interval

    base = [1.0, 1.2, 0.9, 1.1, 1.0, 1.05]
    lo, hi = paired_change_interval([x * 1.1 for x in base], base, 0.95)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)            # every pair +10 %: no spread
    noisy = [1.03, 1.24, 0.88, 1.16, 0.99, 1.02]                             # pairs +3, +3, -2, +5, -1, -3 %
    narrow, wide = paired_change_interval(noisy, base, 0.95), paired_change_interval(noisy, base, 0.995)
    assert narrow[0] < 0 < narrow[1] and wide[0] < narrow[0] and wide[1] > narrow[1]   # a stricter level: wider
    assert paired_change_interval([1.0, 1.1], [1.0, 1.0], 0.95) is None


def _judged(first: list[float], confirm: list[float] | None, base_confirm: list[float] | None,
            sim: float = 4.0) -> dict:
    def row(variant: str, runs: list[float], sim_s: float, fresh: list[float] | None) -> dict:
        r = {"workflow": "w", "planner": "p", "variant": variant, "planned": {"makespan_s": 2.0},
             "simulated": {"makespan_s": sim_s}, "real_makespans_s": runs}
        return r if fresh is None else {**r, "confirm_makespans_s": fresh}
    base = [1.0, 1.1, 0.9, 1.0, 1.05]
    return bench.judge([row("base", base, 4.0, base_confirm), row("retention", first, sim, confirm)])[1]["change"]


def test_a_cell_judged_wrong_takes_its_verdict_from_fresh_runs() -> None:
    base = [1.0, 1.1, 0.9, 1.0, 1.05]
    first = [x * 1.03 for x in base]               # 5/5 pairs +3 % where nothing was predicted: wrong at first
    assert not _judged(first, None, None)["sign_right"]
    fresh_base = [1.0, 1.2, 0.9, 1.1, 1.0, 1.05, 0.95, 1.1, 1.0, 1.15]
    noise = [+0.02, -0.03, +0.01, -0.01, +0.03, -0.02, 0.0, +0.01, -0.02, +0.01]
    c = _judged(first, [b * (1 + e) for b, e in zip(fresh_base, noise)], fresh_base)
    assert c["first_sign_right"] is False and c["sign_right"]                # the fresh pairs show no effect
    assert c["confirmation"]["pairs"] == 10 and c["confirmation"]["interval"][0] < 0 < c["confirmation"]["interval"][1]
    real = [b * (1.03 + e / 4) for b, e in zip(fresh_base, noise)]           # the fresh pairs +3 % again
    c = _judged(first, real, fresh_base)
    assert not c["sign_right"] and c["confirmation"]["interval"][0] > 0      # a real effect survives confirmation
    right = _judged([x * 1.1 for x in base], real, fresh_base, sim=4.4)       # right at first: fresh runs not asked
    assert right["sign_right"] and "confirmation" not in right


def test_only_the_cells_judged_wrong_and_their_bases_run_again(monkeypatch) -> None:
    from _confirm import shadow_cells

    cells = [{"workflow": w, "planner": "heft", "variant": v, "real_runs": [1], "trace_decisions": ["t"]}
             for w in ("a", "b") for v in ("base", "retention", "preload")]
    rows = [{"workflow": c["workflow"], "planner": "heft", "variant": c["variant"],
             **({} if c["variant"] == "base" else {"change": {"sign_right": (c["workflow"], c["variant"]) != ("a", "preload")}})}
            for c in cells]
    shadows = shadow_cells(cells, {("a", "heft", "preload")})
    assert [(s["workflow"], s["variant"]) for s in shadows] == [("a", "base"), ("a", "preload")]
    assert all(s["real_runs"] == [] and s["trace_decisions"] == [] for s in shadows)   # the first runs stay apart
    asked: list[int] = []

    def fake_run_real(ex, shadow, repetitions, **kw):
        asked.append(repetitions)
        for s in shadow:
            s["real_runs"] += [{"makespan_s": 1.0}] * repetitions
    monkeypatch.setattr(bench, "run_real", fake_run_real)
    assert bench.confirm_wrong_signs(None, cells, rows, 3) == 1 and asked == [3]   # type: ignore[arg-type]
    assert [c.get("confirm_makespans_s") for c in cells] == [[1.0] * 3, None, [1.0] * 3, None, None, None]
    assert cells[2]["real_runs"] == [1]
    assert bench.confirm_wrong_signs(None, cells, rows, 0) == 0                      # type: ignore[arg-type]


def test_a_pair_whose_first_download_ended_last_counts_its_lone_end_in_the_links_work() -> None:
    # b0 0-20 ms, b1 2-15 ms, 10 ms alone: 2 ms alone at the start, 5 ms alone at the end, 13 ms together -> f = 2,
    # as the overlap estimate (sharing_factor) reads it; the second got the larger share, so p is clipped to 0
    import pandas as pd
    tasks = pd.DataFrame({"download_start_s": [0.0, 0.002], "download_end_s": [0.020, 0.015]}, index=["b0", "b1"])
    shape = bench.pair_shape(tasks, ["b0", "b1"])
    assert shape == pytest.approx((0.002, 0.013, -0.005))
    terms = bench.link_sharing_terms([shape], 0.01)
    assert terms["storage_sharing"] == pytest.approx(bench.sharing_factor(tasks, ["b0", "b1"], 0.01)) \
        == pytest.approx(2.0)
    assert terms["storage_first_come"] == 0.0
