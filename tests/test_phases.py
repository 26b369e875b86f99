"""Where the time went: a run's critical path cut into phases that add up to its makespan."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.phases import (PHASES, critical_path, critical_path_phases, load_parents, phase_totals,
                                results_phases, save_edges)
from planning import generate

COLS = ("task_id", "kind", "worker", "attempt", "ready_s", "worker_start_s", "download_start_s", "download_end_s",
        "exec_start_s", "exec_end_s", "upload_start_s", "upload_end_s", "done_s")


def hand_trace() -> pd.DataFrame:
    """a -> {b, c} -> d.  c finishes after b, so the critical path is a, c, d.

    a: cold worker w0 starts at 0.0, ready 0.3 after a 0.3 s start-up; no inputs; runs 1 s; uploads 0.2 s.
    c: ready 1.6 (0.1 s after a's 1.5 done), waits for worker w1 until 1.9, starts up 0.1, downloads 0.5,
       runs 2 s, uploads 0.4 -> done 4.9.   b (on w0) is done at 2.6, before c.
    d: ready 5.0, on warm w0 which "started" at 0.0 (clipped: no waiting), downloads 5.0-5.2, runs until 6.0,
       done 6.0.  The client holds the result at 6.25 (the makespan).
    """
    rows = [("a", "src", "w0", 0, 0.0, 0.0, 0.3, 0.3, 0.3, 1.3, 1.3, 1.5, 1.5),
            ("b", "mid", "w0", 0, 1.5, 0.0, 1.5, 1.6, 1.6, 2.6, 2.6, 2.6, 2.6),
            ("c", "mid", "w1", 0, 1.6, 1.9, 2.0, 2.5, 2.5, 4.5, 4.5, 4.9, 4.9),
            ("d", "sink", "w0", 0, 5.0, 0.0, 5.0, 5.2, 5.2, 6.0, 6.0, 6.0, 6.0)]
    return pd.DataFrame(rows, columns=COLS).assign(startup_s=[0.3, 0.0, 0.1, 0.0])


PARENTS = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_critical_path_follows_the_parent_that_finished_last() -> None:
    assert critical_path(hand_trace(), PARENTS) == ["a", "c", "d"]


def test_phases_are_the_hand_computed_ones_and_sum_to_the_makespan() -> None:
    table = critical_path_phases(hand_trace(), PARENTS, makespan_s=6.25)
    seconds = table.groupby(["task_id", "phase"])["seconds"].sum()
    expected = {("a", "coordination"): 0.0, ("a", "waiting"): 0.0, ("a", "start-up"): 0.3, ("a", "download"): 0.0,
                ("a", "execution"): 1.0, ("a", "upload"): 0.2,
                ("c", "coordination"): 0.1, ("c", "waiting"): 0.3, ("c", "start-up"): 0.1, ("c", "download"): 0.5,
                ("c", "execution"): 2.0, ("c", "upload"): 0.4,
                ("d", "coordination"): 0.1, ("d", "waiting"): 0.0, ("d", "start-up"): 0.0, ("d", "download"): 0.2,
                ("d", "execution"): 0.8, ("d", "upload"): 0.0, ("(client)", "coordination"): 0.25}
    for key, value in expected.items():
        assert seconds[key] == pytest.approx(value, abs=1e-9), key
    assert table["seconds"].sum() == pytest.approx(6.25)
    assert (table["seconds"] >= 0).all()
    assert list(table[table["task_id"] == "c"]["phase"]) == list(PHASES)


def test_a_retried_task_counts_its_last_attempt() -> None:
    trace = hand_trace()
    retry = trace[trace["task_id"] == "d"].assign(attempt=1, ready_s=6.0, worker_start_s=6.0, download_start_s=6.0,
                                                  download_end_s=6.0, exec_start_s=6.0, exec_end_s=7.0,
                                                  upload_start_s=7.0, upload_end_s=7.0, done_s=7.0)
    table = critical_path_phases(pd.concat([trace, retry]), PARENTS, makespan_s=7.0)
    assert table["seconds"].sum() == pytest.approx(7.0)
    assert table[(table.task_id == "d") & (table.phase == "execution")]["seconds"].iloc[0] == pytest.approx(1.0)


def test_without_edges_the_parent_is_inferred_from_the_timing() -> None:
    assert critical_path(hand_trace(), None) == ["a", "c", "d"]


def test_edges_round_trip_and_every_engine_of_every_cell(tmp_path) -> None:
    wf = generate("fork_join", width=2)
    save_edges(tmp_path, {"fj": wf})
    parents = load_parents(tmp_path)
    assert sorted(len(v) for v in parents["fj"].values()) == sorted(len(wf.parents(t)) for t in wf.task_ids
                                                                   if wf.parents(t))
    trace = hand_trace().assign(cell_id="c1", workflow="hw", planner="p", sla="mean", repetition=0)
    summary = pd.DataFrame({"cell_id": ["c1"], "planned_makespan_s": [6.0], "real_makespan_s": [6.25],
                            "sim_trace_makespan_s": [float("nan")]})
    phases = results_phases({"plans": trace, "real_tasks": trace}, summary, {"hw": PARENTS})
    assert set(phases["engine"]) == {"plan", "real"} and set(phases["edges"]) == {"saved"}
    totals = phase_totals(phases).set_index("engine")
    assert totals.loc["real", list(PHASES)].sum() == pytest.approx(6.25)
    assert totals.loc["plan", "execution"] == pytest.approx(3.8)


def test_start_up_comes_from_the_worker_rows_whatever_worker_start_means() -> None:
    """A real trace's worker_start_s marks the end of start-up (the plan's its beginning): the worker rows decide.

    Task a on w0: ready 0.0, w0 invoked at 0.0 and up at 0.3 (worker_start_s 0.3, as the executor writes it),
    download starts 0.5: 0.3 s start-up, then 0.2 s waiting inside the worker.
    """
    trace = hand_trace()
    trace.loc[trace.task_id == "a", ["worker_start_s", "download_start_s", "download_end_s", "exec_start_s"]] = 0.3
    trace.loc[trace.task_id == "a", ["download_start_s", "download_end_s", "exec_start_s"]] = 0.5
    workers = pd.DataFrame({"worker": ["w0", "w1"], "start_s": [0.0, 1.9], "ready_s": [0.3, 2.0]})
    table = critical_path_phases(trace, PARENTS, workers=workers)
    a = table[table.task_id == "a"].set_index("phase")["seconds"]
    assert a["start-up"] == pytest.approx(0.3) and a["waiting"] == pytest.approx(0.2)
    c = table[table.task_id == "c"].set_index("phase")["seconds"]
    assert c["start-up"] == pytest.approx(0.1) and c["waiting"] == pytest.approx(0.3)
