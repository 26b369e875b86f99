"""The live view's state model: polls -> task states, progress, projected finish, bars; the Trace at the end.

Every expected number is worked out by hand from a diamond ``a -> (b, c) -> d`` whose
plan runs ``a, b, d`` on worker ``w0`` and ``c`` on ``w1``, with planned completions
a 1 s, b 2 s, c 2.5 s, d 4 s (planned makespan 4 s).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from experiments.live.layout import layered_layout
from experiments.live.runplan import RunPlan
from experiments.live.state import Observation, RunState
from planning.trace import TASK_COLUMNS, WORKER_COLUMNS, Trace
from planning.workflow import Task, Workflow


def diamond() -> Workflow:
    return Workflow.from_tasks([Task(t, "k") for t in "abcd"], {"b": ["a"], "c": ["a"], "d": ["b", "c"]})


def diamond_plan() -> RunPlan:
    wf = diamond()
    layout = layered_layout(wf)
    assert layout.ids == ("a", "b", "c", "d")
    done = {"a": 1.0, "b": 2.0, "c": 2.5, "d": 4.0}
    start = {"a": 0.0, "b": 1.0, "c": 1.0, "d": 2.5}
    phases = tuple((start[t], start[t], start[t], done[t], done[t], done[t]) for t in layout.ids)
    return RunPlan(run_id="r1", label="diamond", workflow="diamond", planner="hand", sla="mean", ids=layout.ids,
                   kinds=("k",) * 4, parents=((), (0,), (0,), (1, 2)),
                   planned_worker=("w0", "w0", "w1", "w0"), planned_profile=("large", "large", "small", "large"),
                   planned_phases=phases, planned_done=tuple(done[t] for t in layout.ids), planned_makespan_s=4.0,
                   simulated_makespan_s=4.4, sequence={"w0": ("a", "b", "d"), "w1": ("c",)},
                   workers=(("w0", "large"), ("w1", "small")), layout=layout)


def row(task: str, worker: str, start: float, end: float, cold: bool = False) -> dict:
    """An uploaded timing row: download start..end = 0.1 s, execution, upload 0.1 s; 10 bytes in, 20 out."""
    return {"task_id": task, "worker": worker, "cold_start": cold, "input_bytes": 10.0, "output_bytes": 20.0,
            "ready_s": start, "worker_start_s": start, "download_start_s": start, "download_end_s": start + 0.1,
            "exec_start_s": start + 0.1, "exec_end_s": end - 0.1, "upload_start_s": end - 0.1,
            "upload_end_s": end, "done_s": end}


# ---------------------------------------------------------------------- layout
def test_layout_puts_levels_in_columns_and_centres_each_column() -> None:
    layout = layered_layout(diamond())
    assert layout.column == (0, 1, 1, 2)
    assert layout.rows == 2 and layout.columns == 3
    assert layout.row == (0.5, 0.0, 1.0, 0.5)                 # a and d centred on the two-wide column
    assert set(layout.edges) == {(0, 1), (0, 2), (1, 3), (2, 3)}


def test_layout_orders_a_column_by_its_parents_rows() -> None:
    # x2's parent is p0 (row 0) and x1's is p1 (row 1): the barycenter puts x2 above x1 although x1 comes first
    wf = Workflow.from_tasks([Task(t, "k") for t in ("p0", "p1", "x1", "x2")], {"x1": ["p1"], "x2": ["p0"]})
    layout = layered_layout(wf)
    rows = dict(zip(layout.ids, layout.row))
    assert rows["p0"] < rows["p1"] and rows["x2"] < rows["x1"]


# ---------------------------------------------------------------------- projected finish
def test_projection_is_the_rest_of_the_plan_at_the_runs_pace() -> None:
    from dataclasses import replace

    from experiments.live.projection import Projection

    plan = diamond_plan()      # durations a 1, b 1, c 1.5, d 1.5; no tail (last completion = makespan)
    p = Projection(plan)
    assert p.tail_s == 0.0
    assert p.finish_s(0.0, set(), {}, {}) == pytest.approx(4.0)                  # the plan itself
    assert p.finish_s(1.2, {"a"}, {"b": 1.2, "c": 1.2}, {}) == pytest.approx(4.2)   # 1.2 + max(1, 1.5) + 1.5
    assert p.finish_s(3.0, {"a", "b"}, {"c": 1.2}, {}) == pytest.approx(4.5)     # c overdue: only d (1.5) left
    rows = {"a": row("a", "w0", 0.2, 1.1)}                                       # a took 0.9 s of its 1: pace 0.9
    assert p.pace(rows) == pytest.approx(0.9)
    assert p.finish_s(1.2, {"a"}, {"b": 1.2, "c": 1.2}, rows) == pytest.approx(1.2 + 1.35 + 1.35)
    assert p.finish_s(5.0, set(plan.ids), {}, {}) == 5.0                         # all done: now
    # one worker running a, c, b, d in that order: b also waits for c (1.2 + 1.5 + 1 + 1.5)
    serial = replace(plan, sequence={"w0": ("a", "c", "b", "d")})
    assert Projection(serial).finish_s(1.2, {"a"}, {"c": 1.2}, {}) == pytest.approx(5.2)
    # a plan whose sink's result is fetched 0.5 s after its last completion adds that tail
    tailed = replace(plan, planned_makespan_s=4.5)
    assert Projection(tailed).finish_s(0.0, set(), {}, {}) == pytest.approx(4.5)


# ---------------------------------------------------------------------- states from polls
def test_before_any_poll_only_the_root_is_ready() -> None:
    snap = RunState(diamond_plan()).snapshot()
    assert snap["status"] == "starting" and snap["states"] == "ywww"
    assert snap["counts"] == {"waiting": 3, "ready": 1, "running": 0, "done": 0, "failed": 0}
    assert snap["progress"]["projected_finish_s"] == 4.0 and snap["progress"]["makespan_s"] is None
    assert snap["progress"]["simulated_makespan_s"] == 4.4 and snap["progress"]["planned_makespan_s"] == 4.0


def test_a_busy_workers_first_unfinished_task_runs_once_its_parents_are_done() -> None:
    state = RunState(diamond_plan())
    state.observe(Observation(at_s=0.5, running_workers=frozenset({"w0"}), started_workers=1))
    assert state.snapshot()["states"] == "rwww"
    state.observe(Observation(at_s=1.2, done=frozenset({"a"}), running_workers=frozenset({"w0", "w1"}),
                              started_workers=2))
    snap = state.snapshot()
    assert snap["states"] == "drrw"                          # b on w0 and c on w1 run; d waits for both
    assert snap["progress"]["done"] == 1 and snap["progress"]["elapsed_s"] == 1.2
    assert snap["progress"]["projected_finish_s"] == pytest.approx(4.2)
    assert snap["progress"]["planned_done_by_now"] == 1     # the plan had a done by 1.2 s
    state.observe(Observation(at_s=3.0, done=frozenset({"a", "b"}), running_workers=frozenset({"w0", "w1"}),
                              started_workers=2))
    snap = state.snapshot()
    assert snap["states"] == "ddrw"                          # w0's next task d still waits for c
    assert snap["progress"]["projected_finish_s"] == pytest.approx(4.5)
    assert snap["starts"]["workers_started"] == 2


def test_a_worker_holding_no_process_runs_nothing() -> None:
    state = RunState(diamond_plan())
    state.observe(Observation(at_s=1.0, done=frozenset({"a"}), running_workers=frozenset({"w0"})))
    assert state.snapshot()["states"] == "dryw"              # c is ready but w1 has not started


def test_bars_are_exact_from_rows_and_seen_times_otherwise() -> None:
    state = RunState(diamond_plan())
    state.observe(Observation(at_s=0.5, running_workers=frozenset({"w0"})))
    state.observe(Observation(at_s=1.2, done=frozenset({"a"}), running_workers=frozenset({"w0", "w1"}),
                              rows=[row("a", "w0", 0.2, 1.1, cold=True)]))
    state.observe(Observation(at_s=3.0, done=frozenset({"a", "b"}), running_workers=frozenset({"w0", "w1"})))
    bars = {b[0]: b for b in state.snapshot()["bars"]}
    assert bars[0] == [0, "w0", 0.2, pytest.approx(0.3), pytest.approx(0.3), pytest.approx(1.0),
                       pytest.approx(1.0), 1.1, True]
    assert bars[1] == [1, "w0", 1.2, 1.2, 1.2, 3.0, 3.0, 3.0, False]       # b: seen running at 1.2, done at 3.0
    assert bars[2] == [2, "w1", 1.2, 1.2, 1.2, 3.0, 3.0, 3.0, False]       # c: running since 1.2, up to now
    assert 3 not in bars
    snap = state.snapshot()
    assert snap["progress"]["projected_finish_s"] == pytest.approx(3.0 + 1.35)   # pace 0.9 from a's row: d left
    assert snap["starts"] == {"workers_started": 0, "cold": 1, "warm": 0}
    assert snap["bytes"] == {"downloaded": 10.0, "uploaded": 20.0}


def test_a_row_marks_its_task_done_even_before_the_done_hash_is_read() -> None:
    state = RunState(diamond_plan())
    state.observe(Observation(at_s=2.0, rows=[row("a", "w0", 0.0, 1.0)]))
    assert state.snapshot()["states"][0] == "d"


def test_failed_attempts_and_the_final_error_are_shown_with_their_message() -> None:
    state = RunState(diamond_plan())
    state.observe(Observation(at_s=1.5, done=frozenset({"a"}), running_workers=frozenset({"w0", "w1"}),
                              attempts={"c": "attempt 1 of 2 on w1:\nValueError: bad"}))
    snap = state.snapshot()
    assert snap["states"] == "drfw"
    assert snap["failures"] == [{"task": "c", "message": "attempt 1 of 2 on w1:\nValueError: bad", "final": False}]
    state.fail("task 'c' failed on worker 'w1' after 2 attempt(s): ValueError: bad")
    snap = state.snapshot()
    assert snap["status"] == "failed" and snap["states"] == "dyfw"    # cancelled: b no longer runs
    assert snap["progress"]["projected_finish_s"] is None             # a failed run does not finish
    assert snap["failures"][-1] == {"task": "c", "final": True, "message": state.error["message"]}
    assert "ValueError: bad" in snap["failures"][-1]["message"]
    state.observe(Observation(at_s=9.0, done=frozenset({"a", "b", "c", "d"})))   # late polls change nothing
    assert state.snapshot()["states"] == "dyfw"


def test_a_failure_seen_only_in_the_clients_message_marks_the_task_and_its_ancestors() -> None:
    state = RunState(diamond_plan())
    state.observe(Observation(at_s=1.0, running_workers=frozenset({"w0"})))     # the last poll: a running
    state.fail("task 'd' failed on worker 'w0' after 1 attempt(s) (not retried): ValueError: late (fix: ...)")
    snap = state.snapshot()
    assert snap["states"] == "dddf"                  # d ran, so a, b and c had committed
    assert snap["failures"] == [{"task": "d", "final": True, "message": state.error["message"]}]
    other = RunState(diamond_plan())
    other.fail("the embedded Redis-protocol server died during run r1")     # no task named: none marked
    assert other.snapshot()["states"] == "ywww" and other.snapshot()["failures"][0]["task"] is None


# ---------------------------------------------------------------------- the end: the client's Trace
def hand_trace(makespan: float) -> Trace:
    rows = [row("a", "w0", 0.05, 1.0, cold=True), row("b", "w0", 1.0, 2.2), row("c", "w1", 1.1, 2.9, cold=True),
            row("d", "w0", 2.9, 4.3)]
    tasks = pd.DataFrame([{**{c: None for c in TASK_COLUMNS}, **r, "run_id": "r1", "engine": "execute", "kind": "k",
                           "profile": "large", "cpus": 2.0, "memory_mb": 1024.0, "startup_s": 0.0, "attempt": 0}
                          for r in rows])
    workers = pd.DataFrame([{"run_id": "r1", "engine": "execute", "worker": w, "profile": "large", "cpus": 2.0,
                             "memory_mb": 1024.0, "cold_start": cold, "start_s": 0.0, "ready_s": 0.05,
                             "stop_s": 4.3, "busy_s": 1.0, "tasks": 1, "gb_s": 0.0, "cost": 0.0}
                            for w, cold in (("w0", True), ("w1", True), ("w2", False))], columns=list(WORKER_COLUMNS))
    return Trace(tasks, workers, makespan, {"run_id": "r1"})


def test_at_the_end_every_number_is_the_traces() -> None:
    state = RunState(diamond_plan())
    state.observe(Observation(at_s=1.2, done=frozenset({"a"}), running_workers=frozenset({"w0", "w1"})))
    trace = hand_trace(4.3217)
    state.finish(trace)
    snap = state.snapshot()
    assert snap["status"] == "finished" and snap["states"] == "dddd"
    assert snap["progress"]["makespan_s"] == trace.makespan_s == 4.3217
    assert snap["progress"]["elapsed_s"] == snap["progress"]["projected_finish_s"] == 4.3217
    assert snap["starts"] == {"workers_started": 3, "cold": 2, "warm": 1}
    assert snap["bytes"] == {"downloaded": 40.0, "uploaded": 80.0}
    bars = sorted(snap["bars"])
    columns = ["download_start_s", "download_end_s", "exec_start_s", "exec_end_s", "upload_start_s", "upload_end_s"]
    expected = trace.tasks.set_index("task_id")
    for bar in bars:
        task = diamond_plan().ids[bar[0]]
        assert bar[1] == expected.at[task, "worker"] and bar[8] is True
        assert bar[2:8] == [expected.at[task, c] for c in columns]
    state.observe(Observation(at_s=5.0))                       # a poll after the end changes nothing
    assert state.snapshot()["progress"]["makespan_s"] == 4.3217


def test_the_snapshot_is_plain_json() -> None:
    import json

    state = RunState(diamond_plan())
    state.finish(hand_trace(float("3.5")))
    text = json.dumps(state.snapshot(), allow_nan=False)
    assert json.loads(text)["progress"]["makespan_s"] == 3.5
    assert not math.isnan(json.loads(text)["progress"]["elapsed_s"])


def test_the_pages_gantt_phases_are_the_reports() -> None:
    from experiments.live.runplan import PHASE_PAIRS
    from experiments.plan_figures import PHASES

    assert PHASE_PAIRS == tuple((start, end) for start, end, _alpha in PHASES)
