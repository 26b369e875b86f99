"""The report's tables and findings, on hand-made summaries whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import report_tables as rt
from experiments.report_findings import LARGE_ERROR, what_to_look_at


def summary(real: list[float], planned: float = 1.0, sla: str = "p95", planner: str = "heft") -> pd.DataFrame:
    n = len(real)
    return pd.DataFrame({"cell_id": [f"w.{planner}.{sla}.r{i}" for i in range(n)], "workflow": "w", "planner": planner,
                         "sla": sla, "repetition": range(n), "planned_makespan_s": planned,
                         "simulated_makespan_s": planned * 1.1, "real_makespan_s": real,
                         "plan_error": [(planned - r) / r for r in real]})


def test_bootstrap_ci_brackets_the_mean_and_needs_two_values() -> None:
    lo, hi = rt.bootstrap_ci([1.0, 2.0, 3.0, 4.0])
    assert 1.0 <= lo < 2.5 < hi <= 4.0
    assert rt.bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)
    assert all(np.isnan(rt.bootstrap_ci([1.0])))


def test_sla_met_is_the_share_of_real_runs_within_the_plan() -> None:
    s = pd.concat([summary([0.5, 0.9, 1.05, 1.2]), summary([0.9, 1.08], sla="mean")])
    met = rt.sla_met(s).set_index("sla")
    assert met.at["p95", "met_plan"] == 0.5 and met.at["p95", "target"] == 0.95 and met.at["p95", "runs"] == 4
    assert met.at["p95", "met_simulation"] == 0.75          # 1.1 s simulated: 0.5, 0.9, 1.05 within
    assert met.at["mean", "target"] == 0.5 and met.at["mean", "met_plan"] == 0.5
    assert rt.sla_met(summary([1.0]).assign(real_makespan_s=np.nan)).empty


def test_host_load_is_read_when_recorded_and_said_when_not() -> None:
    s = summary([1.0, 1.0])
    assert set(rt.host_load(s)["host_load_1m"]) == {"not recorded"}
    loads = rt.host_load(s.assign(host_load_1m=[0.5, np.nan]))["host_load_1m"].tolist()
    assert loads == ["0.50", "not recorded"]


def test_gb_seconds_and_price_sum_each_cells_workers() -> None:
    s = summary([1.0])
    workers = pd.DataFrame({"cell_id": [s.cell_id[0]] * 2, "gb_s": [1.5, 2.5], "cost": [0.1, 0.2]})
    out = rt.resources(s, {"real": workers})
    assert out.at[0, "real_gb_s"] == 4.0 and out.at[0, "real_cost"] == pytest.approx(0.3)


def test_errors_by_phase_and_kind_join_on_task_id() -> None:
    base = {"cell_id": "c", "task_id": ["a", "b"], "kind": ["k1", "k2"], "attempt": 0, "startup_s": [0.2, 0.0],
            "download_start_s": 0.0, "download_end_s": 0.1, "exec_start_s": 0.1, "upload_start_s": 2.0,
            "upload_end_s": 2.0}
    plan = pd.DataFrame({**base, "exec_end_s": [1.1, 0.6]})
    real = pd.DataFrame({**base, "exec_end_s": [2.1, 0.6]})
    by_phase = rt.error_by_phase({"plan": plan}, real).set_index("phase")
    assert by_phase.at["execution", "mean_error_s"] == pytest.approx(-0.5)
    assert by_phase.at["download", "mean_abs_error_s"] == 0.0
    by_kind = rt.error_by_kind({"plan": plan}, real).set_index("kind")
    assert by_kind.at["k1", "median_ratio_real_to_predicted"] == pytest.approx(2.0)
    assert by_kind.at["k2", "median_ratio_real_to_predicted"] == pytest.approx(1.0)


def test_cost_model_fit_lists_kinds_transfers_and_start_ups() -> None:
    model = {"kinds": [{"kind": "map", "source": "history", "samples": 27, "sigma": 0.2, "ratio_p50": 0.98,
                        "ratio_p95": 1.37}],
             "transfers": {"download": {"samples": 120, "source": "history", "ratio_p95": 2.3}},
             "startup": [{"profile": "*", "cold": True, "mean_s": 0.23, "samples": 3, "source": "extrapolated"}]}
    fit = rt.cost_model_fit(model)
    assert fit["part"].tolist() == ["runtime", "transfer", "start-up"]
    assert fit.loc[2, "name"] == "* cold" and fit.loc[0, "sigma"] == 0.2


def test_what_to_look_at_warns_on_large_errors_and_missed_slas() -> None:
    s = summary([0.5, 0.6, 0.95])   # plan 1.0 s: +100%, +67%, +5%
    met = rt.sla_met(s)
    findings = what_to_look_at(s, pd.DataFrame(), pd.DataFrame(), met, load_recorded=False)
    texts = [f.text for f in findings]
    assert texts[0].startswith("w.heft.p95.r0: planned 1 s, real 0.5 s (+100%)") and findings[0].warning
    assert any("promises 95%" in t for t in texts) is False   # all three runs were within the plan
    assert any("host load was not recorded" in t for t in texts)
    late = summary([1.5, 1.6, 0.9])
    missed = what_to_look_at(late, pd.DataFrame(), pd.DataFrame(), rt.sla_met(late), load_recorded=True)
    assert any("33% of 3 real runs finished within the plan, the SLA promises 95%" in f.text and f.warning
               for f in missed)
    calm = what_to_look_at(summary([0.99, 1.01], sla="mean"), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), True)
    assert calm[0].text.startswith(f"no cell's makespan error exceeds {100 * LARGE_ERROR:.0f}%")


def test_sla_met_per_workflow_tells_the_workflows_apart() -> None:
    s = pd.concat([summary([0.5, 0.6]), summary([1.5, 1.6]).assign(workflow="v")])
    assert rt.sla_met(s)["met_plan"].tolist() == [0.5]
    per = rt.sla_met(s, by_workflow=True).set_index("workflow")["met_plan"]
    assert per["w"] == 1.0 and per["v"] == 0.0


def test_where_the_time_went_draws_one_run_per_planner_and_sla_when_there_are_many() -> None:
    from experiments.report_study_figures import phases_figure

    rows = []
    for rep, execution in enumerate([1.0, 3.0, 2.0]):
        for engine in ("plan", "real"):
            rows.append({"cell_id": f"w.p.mean.r{rep}", "workflow": "w", "planner": "p", "sla": "mean",
                         "repetition": rep, "engine": engine, "edges": "saved", "step": 0, "task_id": "a",
                         "kind": "k", "worker": "w0", "phase": "execution", "start_s": 0.0,
                         "seconds": execution if engine == "real" else 1.5})
    phases = pd.DataFrame(rows)
    assert len(phases_figure(phases, "w").axes[0].get_yticklabels()) == 6
    fig = phases_figure(phases, "w", max_runs=2)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["p mean r2  plan", "real"]   # 2.0 s: the median of 1, 3 and 2
    assert phases_figure(phases[phases.engine == "plan"], "w") is None


def test_what_to_look_at_names_plans_that_ask_for_more_cpus_than_the_host_has() -> None:
    from experiments.report_findings import capacity_findings

    summary = pd.DataFrame({"cell_id": ["a", "b", "c"], "planner": ["heft", "uniform", "heft"],
                            "peak_cpus": [16.0, 1.0, 32.0],
                            "capacity_note": ["holds up to 16 CPUs", None, "holds up to 32 CPUs"]})
    [finding] = capacity_findings(summary)
    assert finding.text.startswith("2 cell(s) (heft) planned more CPUs at once than this host has, e.g. c: holds up")
    assert capacity_findings(summary.drop(columns="capacity_note")) == []
    assert capacity_findings(summary.iloc[[1]]) == []
