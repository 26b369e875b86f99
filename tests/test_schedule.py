"""The analytical schedule every planner times its assignment with: hand-computed cases."""

from __future__ import annotations

import pytest

from planning.errors import PlanError
from planning.profiles import load_catalog
from planning.schedule import evaluate_schedule
from planning.workflow import Task, Workflow

CATALOG = load_catalog("local")
EXEC = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 1.0}
WORKER_OF = {"a": "w0", "b": "w0", "d": "w0", "c": "w1"}
PROFILES = {"w0": "large", "w1": "small"}


def diamond() -> Workflow:
    tasks = [Task(t, "k") for t in "abcd"]
    sizes = {("a", "b"): 100, ("a", "c"): 200, ("b", "d"): 50, ("c", "d"): 300}
    return Workflow.from_tasks(tasks, {"b": ["a"], "c": ["a"], "d": ["b", "c"]}, sizes, name="diamond")


def test_free_transfers_is_the_list_schedule() -> None:
    result = evaluate_schedule(diamond(), WORKER_OF, PROFILES, EXEC, CATALOG)
    t = result.tasks
    assert t.loc[["a", "b", "c", "d"], "exec_start_s"].tolist() == [0.0, 1.0, 1.0, 4.0]
    assert result.makespan_s == 5.0


def test_transfers_follow_the_protocol() -> None:
    result = evaluate_schedule(diamond(), WORKER_OF, PROFILES, EXEC, CATALOG, transfer_s=lambda b, d: b / 100)
    t = result.tasks
    # a uploads its largest out-edge (200 B) because c runs elsewhere; b runs locally and stores nothing.
    assert (t.loc["a", "done_s"], bool(t.loc["a", "stored"])) == (3.0, True)
    assert (t.loc["b", "exec_start_s"], t.loc["b", "done_s"], bool(t.loc["b", "stored"])) == (3.0, 5.0, False)
    # c downloads 200 B, runs 3 s, uploads 300 B for d on w0.
    assert t.loc["c", ["download_start_s", "exec_start_s", "done_s"]].tolist() == [3.0, 5.0, 11.0]
    # d downloads c's 300 B only (b's output is local).
    assert t.loc["d", ["ready_s", "exec_start_s", "done_s"]].tolist() == [11.0, 14.0, 15.0]
    assert result.makespan_s == 15.0


def test_startup_invocation_and_cost() -> None:
    result = evaluate_schedule(diamond(), WORKER_OF, PROFILES, EXEC, CATALOG, startup_s=lambda p: 1.0, invoke_s=0.5)
    t = result.tasks
    assert t.loc["a", ["worker_start_s", "exec_start_s"]].tolist() == [0.5, 1.5]
    assert t.loc["c", ["worker_start_s", "exec_start_s"]].tolist() == [3.0, 4.0]
    assert t.loc["d", "exec_start_s"] == 7.5 and result.makespan_s == 8.5
    assert t["cold_start"].sum() == 2
    w = result.workers.set_index("worker")
    assert (w.loc["w0", "stop_s"] - w.loc["w0", "start_s"], w.loc["w1", "stop_s"] - w.loc["w1", "start_s"]) == (8.0, 4.0)
    expected = 8.0 * CATALOG["large"].price_per_s + 4.0 * CATALOG["small"].price_per_s
    assert result.cost == pytest.approx(expected)


def test_worker_order_against_dependencies_is_rejected() -> None:
    with pytest.raises(PlanError, match="contradicts"):
        evaluate_schedule(diamond(), WORKER_OF, PROFILES, EXEC, CATALOG, sequence={"w0": ["d", "a", "b"], "w1": ["c"]})


def test_unassigned_task_is_rejected() -> None:
    with pytest.raises(PlanError, match="no worker"):
        evaluate_schedule(diamond(), {"a": "w0"}, PROFILES, EXEC, CATALOG)


def test_explicit_sequence_changes_the_timeline() -> None:
    one_worker = {t: "w0" for t in "abcd"}
    default = evaluate_schedule(diamond(), one_worker, {"w0": "large"}, EXEC, CATALOG)
    swapped = evaluate_schedule(diamond(), one_worker, {"w0": "large"}, EXEC, CATALOG,
                                sequence={"w0": ["a", "c", "b", "d"]})
    assert default.makespan_s == swapped.makespan_s == 7.0
    assert swapped.tasks.loc["c", "exec_start_s"] == 1.0 and default.tasks.loc["b", "exec_start_s"] == 1.0
