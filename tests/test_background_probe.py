"""The optimizations benchmark's probe of a background fetch's CPU (benchmarks/_background_probe.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _background_probe as probe  # noqa: E402
import bench_optimizations as bench  # noqa: E402
from planning.costs.cost_model import CostModel  # noqa: E402
from planning.plan import Plan  # noqa: E402
from planning.profiles import load_catalog  # noqa: E402
from planning.protocol.optimizations import optimize  # noqa: E402


def test_the_probe_pre_loads_beside_one_task_with_the_other_core_idle_or_busy() -> None:
    catalog, model = load_catalog("local"), CostModel()
    assert probe.one_cpu_profile(catalog) == "medium"
    for busy in (False, True):
        wf, places, seq = probe.probe_workflow(busy, nbytes=8 * probe.MB)
        assert sorted(wf.parents("c")) == ["l", "p"] and wf.edge_bytes("p", "c") == 8 * probe.MB
        assert seq["w1"] == ["l", "c"] and seq["w0"] == (["p", "q"] if busy else ["p"])
        plan = Plan.from_assignment(wf, catalog, model.estimate_workflow(wf, catalog, "mean"), model, "mean", places,
                                    {w: "medium" for w in seq}, planner="probe", sequence=seq)
        pre, cls = optimize(plan, wf, model, ("preload",))
        protocol = cls.for_plan(wf, pre)
        assert protocol.preloads() and protocol.preloads_inputs("c")       # c's input moves while l runs


def test_the_terms_are_the_lone_tasks_loss_and_what_both_tasks_lost_beyond_it_in_cpu_seconds() -> None:
    # other core idle: l lost 0.03 s (median), its base ran 1.0 s for 0.5 s of CPU (dilation 2): 0.015 CPU-s;
    # busy, no dilation: l lost 0.06, q 0.02: the server's 0.08 - 0.015 = 0.065 CPU-s; per 1e6 bytes
    r = probe.fetch_cpu({"l_idle": [0.02, 0.04, 0.03], "l_busy": [0.06], "q_busy": [0.02]},
                        {"l_idle": [1.0, 1.0, 1.0], "l_busy": [0.5], "q_busy": [0.5]}, 1e6)
    assert r["fetch_thread_s_per_byte"] == pytest.approx(1.5e-8)
    assert r["fetch_server_s_per_byte"] == pytest.approx(6.5e-8)
    assert r["background_dilation_l_idle"] == pytest.approx(2.0)
    # a negative loss (noise) counts as none
    r = probe.fetch_cpu({"l_idle": [-0.01], "l_busy": [-0.02], "q_busy": [0.0]},
                        {"l_idle": [0.5], "l_busy": [0.5], "q_busy": [0.5]}, 1e6)
    assert r["fetch_thread_s_per_byte"] == 0.0 and r["fetch_server_s_per_byte"] == 0.0


def test_the_simulated_platform_takes_the_probed_fetch_cpu() -> None:
    link = {"bandwidth_Bps": 4e8, "cold_start_s": 0.08, "launcher_serial_s": 0.03}
    default = bench.simulated_platform(link)
    probed = bench.simulated_platform({**link, "fetch_thread_s_per_byte": 1e-9, "fetch_server_s_per_byte": 2e-9})
    assert (probed.fetch_thread_s_per_byte, probed.fetch_server_s_per_byte) == (1e-9, 2e-9)
    assert probed.upload_thread_s_per_byte == default.upload_thread_s_per_byte      # not probed: the default
    assert default.fetch_thread_s_per_byte == 2.9e-10


def test_the_probe_runs_on_the_executor() -> None:
    from executor import Executor, ExecutorSettings

    with Executor(settings=ExecutorSettings(keep_alive_s=bench.KEEP_ALIVE_S, max_replay_bytes=64 * probe.MB)) as ex:
        r = probe.probe_background(ex, CostModel(), load_catalog("local"), repetitions=1, nbytes=8 * probe.MB)
    assert r["background_probe_bytes"] == 8 * probe.MB and r["background_probe_profile"] == "medium"
    assert r["fetch_thread_s_per_byte"] >= 0 and r["fetch_server_s_per_byte"] >= 0
    assert all(r[f"background_dilation_{k}"] >= 1.0 for k in ("l_idle", "l_busy", "q_busy"))
