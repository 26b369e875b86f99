"""The profile phase's logic: interleaved repetitions, the median fit, disagreeing kinds, thread counts."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.config import DEFAULT_PROFILE_REPETITIONS, parse_config
from experiments.profiling import (MAX_CV, MAX_RATIO, ProfileJob, fit_profile_model, kind_spread, median_history,
                                   profile_fit_history, profile_jobs, slower_notes, slower_with_more_cpus, spread_notes,
                                   thread_mismatch_notes, threads_by_profile, threads_text)
from planning.costs.cost_model import CostModel
from planning.profiles import load_catalog

BASE = {"phases": ["profile", "plan"], "workflow": [{"spec": "gen:chain:length=3", "name": "chain"},
                                                     {"spec": "gen:fork_join:width=2", "name": "fj"}],
        "planner": [{"name": "heft"}]}


def _rows(times_by_rep: dict[int, list[float]], *, kind: str = "k", profile: str = "small", cpus: float = 0.5,
          workflow: str = "w") -> pd.DataFrame:
    """History rows: task t{i} takes times_by_rep[r][i] seconds in repetition r (warm starts; one cold first task)."""
    rows = []
    for rep, times in times_by_rep.items():
        for i, t in enumerate(times):
            rows.append({"run_id": f"profile.{workflow}.{profile}.r{rep}", "workflow": workflow, "structure_hash": "h",
                         "task_id": f"t{i}", "kind": kind, "profile": profile, "cpus": cpus, "memory_mb": 512.0,
                         "input_bytes": 1000.0 * (i + 1), "output_bytes": 8.0, "download_s": 0.001, "exec_s": t,
                         "upload_s": 0.001, "startup_s": 0.3 if i == 0 else 0.0, "cold_start": i == 0,
                         "repetition": rep})
    return pd.DataFrame(rows)


def test_profile_repetitions_default_to_three_and_interleave() -> None:
    config = parse_config(BASE, name="p")
    assert DEFAULT_PROFILE_REPETITIONS == 3 and config.profile_repetitions == 3
    jobs = profile_jobs(config)
    assert len(jobs) == 2 * 3 * 3
    assert jobs[:4] == [ProfileJob("chain", "small", 0), ProfileJob("chain", "medium", 0),
                        ProfileJob("chain", "large", 0), ProfileJob("fj", "small", 0)]
    assert [j.repetition for j in jobs[::6]] == [0, 1, 2], "every job's repetition r runs before any r + 1"
    assert parse_config({**BASE, "profile": {"repetitions": 1}}, name="p").profile_repetitions == 1


def test_median_history_keeps_one_row_per_task_profile_and_start_kind() -> None:
    h = _rows({0: [1.0, 2.0, 3.0], 1: [1.2, 2.2, 3.2], 2: [9.0, 9.0, 9.0]})
    cold_again = _rows({3: [1.1, 2.1, 3.1]})
    cold_again["cold_start"] = True      # a fourth run found no warm process: its rows stay apart from warm ones
    m = median_history(pd.concat([h, cold_again], ignore_index=True))
    warm = m[~m["cold_start"]].set_index("task_id")
    assert warm.loc["t1", "exec_s"] == pytest.approx(2.2) and warm.loc["t2", "exec_s"] == pytest.approx(3.2)
    assert warm.loc["t1", "repetitions"] == 3 and warm.loc["t1", "input_bytes"] == 2000.0
    cold = m[m["cold_start"]].set_index("task_id")
    assert cold.loc["t0", "repetitions"] == 4 and cold.loc["t0", "exec_s"] == pytest.approx(1.15)
    assert cold.loc["t1", "repetitions"] == 1 and cold.loc["t1", "exec_s"] == pytest.approx(2.1)
    assert len(m) == 3 + 2 and m["run_id"].eq("profile-median").all()
    assert median_history(pd.DataFrame()).empty


def test_one_disturbed_repetition_does_not_move_the_fit() -> None:
    clean = _rows({r: [1.0, 1.0, 1.0] for r in range(3)})
    spiked = _rows({0: [1.0, 1.0, 1.0], 1: [1.0, 1.0, 1.0], 2: [10.0, 10.0, 10.0]})   # a load spike in one run
    catalog = load_catalog("local")

    def mean_exec(model: CostModel) -> float:
        return model.estimate("k", catalog["small"], 1000.0, "mean").exec_s

    assert mean_exec(fit_profile_model(spiked)) == pytest.approx(mean_exec(fit_profile_model(clean)), rel=0.05)
    assert mean_exec(CostModel().fit(spiked)) > 1.5 * mean_exec(fit_profile_model(clean)), "the raw fit is pulled"
    assert not fit_profile_model(pd.DataFrame()).fitted


def test_kinds_whose_repetitions_disagree_are_flagged() -> None:
    steady = _rows({0: [1.0, 1.0], 1: [1.1, 1.1], 2: [1.05, 1.05]}, kind="steady")
    jumpy = _rows({0: [1.0, 1.0], 1: [1.0, 1.0], 2: [2.0, 2.0]}, kind="jumpy")
    jitter = _rows({0: [0.001], 1: [0.003], 2: [0.002]}, kind="jitter")    # x3, but 2 ms: timer noise
    spread = kind_spread(pd.concat([steady, jumpy, jitter], ignore_index=True)).set_index("kind")
    assert spread.loc["jumpy", "unstable"] and spread.loc["jumpy", "ratio"] == pytest.approx(2.0)
    assert not spread.loc["steady", "unstable"] and spread.loc["steady", "ratio"] == pytest.approx(1.1)
    assert not spread.loc["jitter", "unstable"]
    assert spread.loc["jumpy", "repetitions"] == 3
    within = kind_spread(_rows({0: [1.0], 1: [1.45], 2: [0.98], 3: [1.44], 4: [0.97]}, kind="wide"))
    assert within["ratio"].iloc[0] < MAX_RATIO and within["cv"].iloc[0] < MAX_CV and not within["unstable"].iloc[0]
    [note] = spread_notes(spread.reset_index())
    assert "1 kind(s) measured inconsistently" in note and "w/jumpy on small x2.0" in note
    assert spread_notes(kind_spread(steady)) == [] and kind_spread(steady.drop(columns="repetition")).empty


def test_thread_counts_are_read_from_the_executors_limits_and_compared() -> None:
    meta = {"limits_enforced": {"by_profile": {"large": {"threads": "threadpoolctl:2"},
                                               "small": {"threads": "env:1,threadpoolctl:1"},
                                               "medium": {"threads": "none"}}}}
    assert threads_by_profile(meta) == {"large": 2, "small": 1}
    assert threads_text(meta) == "large:2; small:1" and threads_text({}) is None
    profiled = pd.DataFrame({"threads": ["large:2; small:1", "large:2"]})
    executed = pd.DataFrame({"threads": ["large:1; small:1", "large:2", None, "large:1"]})
    [note] = thread_mismatch_notes(profiled, executed)
    assert note.startswith("profile 'large' was profiled with 2 BLAS thread(s) but ran with 1 in 2 of 3 execute")
    assert thread_mismatch_notes(profiled, profiled) == []
    assert thread_mismatch_notes(pd.DataFrame(), executed) == []


def test_kinds_slower_with_more_cpus_are_flagged() -> None:
    """The quickstart at load 11: matrix_work took 1.2 s on 'large' (2 CPUs, 2 threads), 0.1 s on 'medium'."""
    rows = [_rows({0: [0.2, 0.2]}, profile="small", cpus=0.5), _rows({0: [0.1, 0.1]}, profile="medium", cpus=1.0),
            _rows({0: [1.2, 1.2]}, profile="large", cpus=2.0)]
    h = pd.concat(rows, ignore_index=True).assign(threads=lambda f: f["cpus"].clip(lower=1).astype(float))
    [row] = slower_with_more_cpus(h).itertuples()
    assert (row.kind, row.profile, row.faster_profile, row.threads) == ("k", "large", "medium", 2.0)
    assert row.ratio == pytest.approx(12.0)
    [note] = slower_notes(slower_with_more_cpus(h))
    assert "w/k x12.0 slower on large (2 CPU, 2 thread(s)) than on medium" in note
    scaling = pd.concat([rows[0], rows[1]], ignore_index=True)          # small 0.2 s, medium 0.1 s: as it should be
    assert slower_with_more_cpus(scaling).empty and slower_notes(slower_with_more_cpus(scaling)) == []
    assert slower_with_more_cpus(pd.DataFrame()).empty


def test_the_fit_leaves_out_a_profile_on_which_a_kind_ran_slower_with_more_cpus() -> None:
    rows = [_rows({r: [0.2, 0.2] for r in range(3)}, profile="small", cpus=0.5),
            _rows({r: [0.1, 0.1] for r in range(3)}, profile="medium", cpus=1.0),
            _rows({r: [1.2, 1.2] for r in range(3)}, profile="large", cpus=2.0)]
    h = pd.concat(rows, ignore_index=True)
    fit_input = profile_fit_history(h)
    assert set(fit_input["profile"]) == {"small", "medium"} and fit_input["repetitions"].eq(3).all()
    large = load_catalog("local")["large"]
    kept = fit_profile_model(h).estimate("k", large, 1000.0, "p95").exec_s
    raw = CostModel().fit(median_history(h)).estimate("k", large, 1000.0, "p95").exec_s
    assert kept < 0.2 < 1.0 < raw, "the law predicts 'large' from the profiles that scaled; the inversion blew it up"
    assert profile_fit_history(pd.DataFrame()).empty
