"""The runner's logic: the matrix, per-cell persistence, resume, interruption, provenance, refusing mixed results."""

from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import pandas as pd
import pytest

from experiments.config import parse_config
from experiments.pipeline import relative_errors
from experiments.results import CELL_TABLES, ResultsError, ResultsStore, load_results
from experiments.runner import Cell, cells_of, run_experiment
from planning.errors import ConfigError, PlanError
from planning.planners import PLANNERS, Planner, get_planner, register_planner
from planning.sla import SLA

PLAN_ONLY = {
    "name": "plans",
    "phases": ["plan"],
    "slas": ["mean", "p95"],
    "repetitions": 2,
    "workflow": [{"spec": "gen:fork_join:width=3", "name": "fj"}, {"spec": "gen:chain:length=3", "name": "chain"}],
    "planner": [{"name": "uniform", "label": "uniform-small", "params": {"profile": "small"}},
                {"name": "critical-path"}],
}


def config(**changes):
    return parse_config({**PLAN_ONLY, **changes}, name="plans")


def run(cfg, out: Path, **kw):
    return run_experiment(cfg, out, progress=False, log=lambda msg: None, **kw)


def test_matrix_order_ids_and_seeds() -> None:
    cells = cells_of(config())
    assert len(cells) == 2 * 2 * 2 * 2
    assert cells[0] == Cell("fj", "uniform-small", SLA.parse("mean"), 0, 0)
    assert cells[1].repetition == 1 and cells[1].seed == 1
    assert len({c.id for c in cells}) == len(cells)
    assert cells[3].id == "fj.uniform-small.p95.r1"


def test_plan_only_run_writes_every_table(tmp_path: Path) -> None:
    outcome = run(config(), tmp_path / "r")
    assert (outcome.cells_total, outcome.cells_run, outcome.cells_skipped) == (16, 16, 0)
    results = load_results(tmp_path / "r")
    s = results.summary
    assert len(s) == 16 and s["cell_id"].is_unique
    assert s["planned_makespan_s"].gt(0).all() and s["planned_cost"].gt(0).all()
    assert s["real_makespan_s"].isna().all() and s["simulated_makespan_s"].isna().all()
    # the plans table is the plan's schedule in the Trace schema, tagged with its cell
    assert set(results.plans["engine"]) == {"plan"}
    per_cell = results.plans.groupby("cell_id")["task_id"].count()
    assert per_cell.to_dict() == {c: (5 if c.startswith("fj") else 3) for c in s["cell_id"]}
    for name in CELL_TABLES:
        assert (tmp_path / "r" / f"{name}.parquet").is_file()
    assert (tmp_path / "r" / "config.toml").is_file() and (tmp_path / "r" / "cost_model.json").is_file()
    assert (tmp_path / "r" / "cells" / s["cell_id"][0] / "plan.json").is_file()


def test_plans_agree_with_planning_directly(tmp_path: Path) -> None:
    cfg = config()
    run(cfg, tmp_path / "r")
    s = load_results(tmp_path / "r").summary.set_index("cell_id")
    from planning.costs.cost_model import CostModel
    plan = get_planner("critical-path").plan(cfg.workflow("chain"), cfg.catalog, CostModel(), SLA.parse("p95"))
    assert s.at["chain.critical-path.p95.r0", "planned_makespan_s"] == pytest.approx(plan.makespan_s)
    assert s.at["chain.critical-path.p95.r0", "planned_cost"] == pytest.approx(plan.cost)


def test_resume_skips_finished_cells(tmp_path: Path) -> None:
    cfg = config()
    run(cfg, tmp_path / "r")
    again = run(cfg, tmp_path / "r")
    assert (again.cells_run, again.cells_skipped) == (0, 16)
    store = ResultsStore.open(tmp_path / "r")
    stamp = store.cell_summary("chain.uniform-small.mean.r0")["finished_utc"]
    (store.cell_dir("fj.critical-path.p95.r1") / "summary.json").unlink()   # as if killed mid-cell
    third = run(cfg, tmp_path / "r")
    assert (third.cells_run, third.cells_skipped) == (1, 15)
    assert store.cell_summary("chain.uniform-small.mean.r0")["finished_utc"] == stamp
    assert len(load_results(tmp_path / "r").summary) == 16
    sessions = json.loads((tmp_path / "r" / "provenance.json").read_text())["sessions"]
    assert [x["cells_run"] for x in sessions] == [16, 0, 1]


class _Interrupting(Planner):
    """Plans like uniform but presses Ctrl-C on its third call (a user interrupting the run)."""

    calls = 0

    def __init__(self, *, profile: str = "small") -> None:
        self.profile = profile

    failure: type[BaseException] = KeyboardInterrupt

    def plan(self, workflow, catalog, cost_model, sla):
        type(self).calls += 1
        if type(self).calls == 3:
            if self.failure is PlanError:
                raise PlanError("no plan", "fix the planner")
            raise self.failure()
        return get_planner("uniform", profile=self.profile).plan(workflow, catalog, cost_model, sla)


@pytest.fixture
def interrupting_planner():
    register_planner("test-interrupting")(_Interrupting)
    _Interrupting.calls = 0
    _Interrupting.failure = KeyboardInterrupt
    yield "test-interrupting"
    PLANNERS.pop("test-interrupting", None)


def test_interrupt_keeps_finished_cells_and_resume_completes(tmp_path: Path, interrupting_planner) -> None:
    cfg = config(planner=[{"name": interrupting_planner}], repetitions=1)
    messages: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "r", progress=False, log=messages.append)
    store = ResultsStore.open(tmp_path / "r")
    assert store.done_cells() == sorted(["fj.test-interrupting.mean.r0", "fj.test-interrupting.p95.r0"])
    assert "run the same command again to resume" in messages[-1]
    assert len(load_results(tmp_path / "r").summary) == 2, "partial results are readable after an interrupt"
    outcome = run(cfg, tmp_path / "r")
    assert (outcome.cells_run, outcome.cells_skipped) == (2, 2)
    assert len(outcome.results.summary) == 4


def test_a_different_config_is_refused_unless_fresh(tmp_path: Path) -> None:
    run(config(), tmp_path / "r")
    other = config(slas=["mean"])
    with pytest.raises(ConfigError, match="different config.*--fresh"):
        run(other, tmp_path / "r")
    outcome = run(other, tmp_path / "r", fresh=True)
    assert outcome.cells_run == 8 and len(outcome.results.summary) == 8


def test_refuses_a_directory_that_is_not_results(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "thesis.tex").write_text("precious")
    with pytest.raises(ResultsError, match="not empty"):
        run(config(), tmp_path / "r")
    with pytest.raises(ResultsError, match="not empty"):
        run(config(), tmp_path / "r", fresh=True)
    assert (tmp_path / "r" / "thesis.tex").read_text() == "precious"


def test_provenance(tmp_path: Path) -> None:
    cfg = config()
    run(cfg, tmp_path / "r")
    p = load_results(tmp_path / "r").provenance
    assert p["config_hash"] == cfg.hash and p["config_name"] == "plans"
    assert len(p["git"]["revision"] or "x" * 40) == 40
    assert p["packages"]["pandas"] == pd.__version__
    assert p["machine"]["cpus"] >= 1 and p["machine"]["python"].startswith("3.")
    assert "limits_enforced" in p and p["sessions"][0]["finished_utc"]
    from simulator import compiled
    assert p["simulator_build"] == compiled.status()     # the fast loop's build: compiled, or Python and why


def test_relative_errors() -> None:
    errors = relative_errors({"planned_makespan_s": 9.0, "simulated_makespan_s": 12.0, "real_makespan_s": 10.0,
                              "planned_cost": 2.0, "real_cost": 4.0, "simulated_cost": float("nan")})
    assert errors["plan_error"] == pytest.approx(-0.1) and errors["sim_error"] == pytest.approx(0.2)
    assert errors["plan_cost_error"] == pytest.approx(-0.5) and errors["sim_cost_error"] != errors["sim_cost_error"]
    assert errors["plan_vs_sim_error"] == pytest.approx(-0.25)
    missing = relative_errors({"planned_makespan_s": 1.0, "real_makespan_s": None})
    assert all(v != v for v in missing.values()), "no reference, no error (NaN), never a crash"


def test_replayed_wfformat_workflow_plans_and_simulates(tmp_path: Path) -> None:
    """BLAST's recorded run ends transfers within a clock tick of hundreds of seconds: the run must still end."""
    data = Path(__file__).resolve().parents[1] / "experiments" / "data"
    cfg = parse_config({"phases": ["plan", "simulate"], "slas": ["mean"],
                        "workflow": [{"spec": str(data / "blast-chameleon-small-001.json"), "name": "blast"}],
                        "planner": [{"name": "heft"}, {"name": "uniform", "params": {"profile": "large"}}]},
                       name="blast")
    outcome = run(cfg, tmp_path / "r")
    s = outcome.results.summary
    assert len(s) == 2 and s["simulated_makespan_s"].gt(0).all()
    assert (s["simulated_makespan_s"] / s["planned_makespan_s"]).between(0.9, 1.5).all()
    assert len(outcome.results.sim_tasks) == 2 * 43


def test_progress_bar_shows_the_current_cell_and_time_left(tmp_path: Path, capsys) -> None:
    run_experiment(config(repetitions=1), tmp_path / "r", progress=True, log=lambda msg: None)
    err = capsys.readouterr().err
    assert "8/8" in err and "chain.critical-path.p95.r0" in err
    assert "<00:00" in err, "elapsed<remaining, tqdm's time left"


def test_a_failing_cell_is_named_and_finished_cells_stay_readable(tmp_path: Path, interrupting_planner) -> None:
    _Interrupting.failure = PlanError
    cfg = config(planner=[{"name": interrupting_planner}], repetitions=1)
    with pytest.raises(PlanError, match=r"cell chain\.test-interrupting\.mean\.r0: no plan"):
        run(cfg, tmp_path / "r")
    assert len(load_results(tmp_path / "r").summary) == 2


# ====================================================================== profile phase, host load, saved runs
PROFILED = {"name": "profiled", "phases": ["profile", "plan", "execute"], "slas": ["mean"],
            "workflow": [{"spec": "gen:chain:length=3", "name": "chain"}],
            "planner": [{"name": "uniform", "label": "uniform-small", "params": {"profile": "small"}}],
            "profile": {"repetitions": 2}, "execute": {"settings": {"keep_alive_s": 5.0}}}


def test_profile_and_execute_record_host_load_and_save_every_run(tmp_path: Path) -> None:
    """Real runs on the embedded server: 3 profiles x 2 repetitions, then one execute cell."""
    from executor import ExecutorSettings
    from experiments.profiling import fit_profile_model
    from experiments.saved_runs import find_saved_runs, load_saved_run

    outcome = run(parse_config(PROFILED, name="profiled"), tmp_path / "r")
    root = tmp_path / "r"
    runs = pd.read_parquet(root / "profile" / "runs.parquet")
    assert len(runs) == 6 and sorted(runs["repetition"].unique()) == [0, 1]
    assert {"host_load_1m", "cpu_probe_s", "host_load_1m_after", "threads", "unstable_kinds"} <= set(runs.columns)
    assert runs["cpu_probe_s"].gt(0).all() and runs["threads"].notna().all()
    assert (root / "profile" / "kind_spread.parquet").is_file()
    history = outcome.results.history
    assert set(history["phase"]) == {"profile", "execute"} and history["cpu_probe_s"].gt(0).all()
    assert history["threads"].ge(1).all(), "the BLAS threads each task's worker had"
    summary = outcome.results.summary
    assert summary["cpu_probe_s"].gt(0).all() and "host_load_1m" in summary and summary["threads"].notna().all()
    small = set(runs.loc[runs["profile"] == "small", "limits_enforced"])
    assert summary["limits_enforced"].iloc[0] in small, "profiled under the limits the execute cell ran with"

    saved = [load_saved_run(p) for p in find_saved_runs(root)]
    assert sorted(r.phase for r in saved) == ["cell"] + ["profile"] * 6
    assert {dataclasses.replace(r.settings, measure_contention=False) for r in saved} == {
        ExecutorSettings(keep_alive_s=5.0)}, "one executor setting for both phases"
    assert {r.phase for r in saved if r.settings.measure_contention} == {"profile"}, "profiling measures contention"
    profiled = history[history["phase"] == "profile"]
    if "cpu_wait_s" in profiled:   # where the kernel reports it (executor.contention)
        assert profiled["cpu_wait_s"].ge(0).all() and profiled["exec_cpu_s"].ge(0).all()
    cell = next(r for r in saved if r.phase == "cell")
    assert cell.run_id == summary["cell_id"].iloc[0] and cell.trace.makespan_s == summary["real_makespan_s"].iloc[0]
    assert cell.host.before.cpu_probe_s == pytest.approx(summary["cpu_probe_s"].iloc[0])
    expected = fit_profile_model(ResultsStore.open(root).profile_history())
    pd.testing.assert_frame_equal(cell.cost_model.describe(), expected.describe())
    assert cell.plan.to_dict() == json.loads((root / "cells" / cell.run_id / "plan.json").read_text())


class _SlowThirdRepetition:
    """An executor stand-in whose third profiling repetition runs 3x slower (a load spike the real host cannot be
    made to produce on demand); it returns the plan's own schedule as the trace."""

    def run(self, workflow, plan, run_id, measure_contention=None):
        from types import SimpleNamespace

        from planning.trace import Trace

        trace = Trace.from_plan(plan, run_id=run_id)
        factor = 3.0 if run_id.endswith(".r2") else 1.0
        t = trace.tasks
        t["exec_end_s"] = t["exec_start_s"] + factor * (t["exec_end_s"] - t["exec_start_s"])
        return SimpleNamespace(trace=trace, meta={})


def test_kinds_whose_repetitions_disagree_are_noted(tmp_path: Path) -> None:
    import contextlib

    from experiments.runner import Engines

    cfg = parse_config({**PROFILED, "phases": ["profile", "plan"], "profile": {"repetitions": 3}}, name="profiled")
    engines = Engines(executor=lambda settings: contextlib.nullcontext(_SlowThirdRepetition()))
    outcome = run(cfg, tmp_path / "r", engines=engines)
    [note] = [n for n in outcome.notes if "measured inconsistently" in n]
    assert "chain-3/spin on small x3.0" in note
    runs = pd.read_parquet(tmp_path / "r" / "profile" / "runs.parquet").set_index("run_id")
    assert runs.loc["profile.chain.small.r0", "unstable_kinds"] == "spin"
    assert runs.loc["profile.chain.small.r2", "unstable_kinds"] == "spin"
    assert note in load_results(tmp_path / "r").provenance["notes"]
    model = json.loads((tmp_path / "r" / "cost_model.json").read_text())
    assert model["fitted"] is True


def test_planlab_run_prints_the_disagreeing_kinds(tmp_path: Path, monkeypatch, capsys) -> None:
    import contextlib

    from experiments.cli import main
    from experiments.runner import Engines

    config_file = tmp_path / "profiled.toml"
    config_file.write_text('phases = ["profile", "plan"]\nslas = ["mean"]\n[[workflow]]\nspec = "gen:chain:length=3"\n'
                           'name = "chain"\n[[planner]]\nname = "uniform"\nparams = { profile = "small" }\n')
    monkeypatch.setattr(Engines, "for_config", classmethod(
        lambda cls, config: cls(executor=lambda settings: contextlib.nullcontext(_SlowThirdRepetition()))))
    assert main(["run", str(config_file), "--out", str(tmp_path / "r"), "--no-report", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "note: profile phase: 2 kind(s) measured inconsistently across repetitions" in err   # small, medium
    assert "chain-3/spin on small x3.0" in err
