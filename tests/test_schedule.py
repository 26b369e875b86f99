"""The analytical schedule every planner times its assignment with: hand-computed cases."""

from __future__ import annotations

import random

import pytest

from planning.errors import PlanError
from planning.profiles import load_catalog
from planning.protocol import WorkerProtocol
from planning.schedule import ScheduleEvaluator, evaluate_schedule
from planning.sources.generators import generate
from planning.tasks import Task
from planning.workflow import Workflow

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


# ---------------------------------------------------------------------- fast path vs a plain reference
def reference_schedule(wf: Workflow, worker_of, worker_profile, exec_s, *, transfer_s, startup_s, invoke_s,
                       coordination_s):
    """The recurrence written the obvious way (dicts, one task at a time, default per-worker order): an oracle."""
    index = wf.index()
    seq: dict[str, list[str]] = {}
    for t in wf.task_ids:
        seq.setdefault(worker_of[t], []).append(t)
    prev = {b: a for ts in seq.values() for a, b in zip(ts, ts[1:])}
    rows: dict[str, dict] = {}
    for t in wf.task_ids:    # the default order is topological, so parents and predecessors come first
        w, parents = worker_of[t], wf.parents(t)
        if parents:
            last = max(parents, key=lambda p: (rows[p]["done_s"], index[p]))
            ready = rows[last]["done_s"] + coordination_s
            arrival = ready + (invoke_s if worker_of[last] != w else 0.0)
        else:
            ready, arrival = 0.0, invoke_s
        if t not in prev:
            worker_start, startup = arrival, startup_s(worker_profile[w])
            begin = worker_start + startup
        else:
            worker_start, startup = rows[prev[t]]["done_s"], 0.0
            begin = max(arrival, worker_start)
        download = max((transfer_s(float(wf.edge_bytes(p, t)), "download") for p in parents if worker_of[p] != w),
                       default=0.0)
        end = begin + download + exec_s[t]
        children = wf.children(t)
        store = not children or any(worker_of[c] != w for c in children)
        out = float(max((wf.edge_bytes(t, c) for c in children), default=wf.task(t).output_bytes or 0))
        done = end + (transfer_s(out, "upload") if store else 0.0)
        rows[t] = {"worker": w, "cold_start": t not in prev, "startup_s": startup, "ready_s": ready,
                   "worker_start_s": worker_start, "download_start_s": begin, "exec_start_s": begin + download,
                   "exec_end_s": end, "done_s": done, "stored": store, "output_bytes": out}
    makespan = max(rows[s]["done_s"] + transfer_s(rows[s]["output_bytes"], "download") for s in wf.sinks())
    return rows, makespan


@pytest.mark.parametrize("seed", range(12))
def test_fast_evaluator_matches_the_reference_and_the_dataframes(seed: int) -> None:
    rng = random.Random(seed)
    wf = generate("random_layered", tasks=rng.randint(3, 70), seed=seed)
    n_workers = rng.randint(1, 7)
    worker_of = {t: f"w{rng.randrange(n_workers)}" for t in wf.task_ids}
    profiles = {w: rng.choice(CATALOG.names) for w in set(worker_of.values())}
    exec_s = {t: rng.choice([0.0, rng.uniform(0.0, 5.0)]) for t in wf.task_ids}
    kw = dict(transfer_s=lambda b, d: (b / 1e6 + (0.01 if d == "upload" else 0.02)) if b else 0.0,
              startup_s=lambda p: {"small": 0.3, "medium": 0.2, "large": 0.1}[p],
              invoke_s=rng.choice([0.0, 0.05]), coordination_s=rng.choice([0.0, 0.003]))
    rows, makespan = reference_schedule(wf, worker_of, profiles, exec_s, **kw)
    frame = evaluate_schedule(wf, worker_of, profiles, exec_s, CATALOG, **kw)
    evaluator = ScheduleEvaluator(wf, CATALOG, **kw)
    fast = evaluator.run(evaluator.layout(worker_of), profiles, [exec_s[t] for t in evaluator.ids])
    assert fast.makespan_s == frame.makespan_s == makespan
    for k, t in enumerate(evaluator.ids):
        ref = rows[t]
        got = frame.tasks.loc[t]
        assert (fast.ready[k], fast.worker_start[k], fast.begin[k], fast.download_end[k], fast.exec_end[k],
                fast.done[k]) == (ref["ready_s"], ref["worker_start_s"], ref["download_start_s"],
                                  ref["exec_start_s"], ref["exec_end_s"], ref["done_s"])
        assert [got[c] for c in ("worker", "cold_start", "startup_s", "ready_s", "exec_start_s", "done_s", "stored")] \
            == [ref[c] for c in ("worker", "cold_start", "startup_s", "ready_s", "exec_start_s", "done_s", "stored")]
    # the fast per-worker spans and cost agree with the DataFrame's
    spans = frame.workers.set_index("worker")
    for w, name in enumerate(fast.layout.workers):
        assert (fast.worker_start_s[w], fast.worker_stop_s[w]) == (spans.at[name, "start_s"], spans.at[name, "stop_s"])
        assert fast.busy_s[w] == pytest.approx(spans.at[name, "busy_s"], rel=1e-12, abs=1e-12)
    assert fast.cost(CATALOG) == pytest.approx(frame.cost, rel=1e-12)


def test_static_uploads_are_the_protocols_rule() -> None:
    wf = generate("random_layered", tasks=40, seed=3)
    rng = random.Random(1)
    worker_of = {t: f"w{rng.randrange(4)}" for t in wf.task_ids}
    profiles = {w: "small" for w in set(worker_of.values())}
    seq: dict[str, list[str]] = {}
    for t in wf.task_ids:
        seq.setdefault(worker_of[t], []).append(t)
    protocol = WorkerProtocol(wf, worker_of, profiles, seq)
    evaluator = ScheduleEvaluator(wf, CATALOG)
    assert evaluator.layout(worker_of).store == evaluator.layout(worker_of, protocol=protocol).store


def test_dynamic_protocol_changes_uploads() -> None:
    # chain a -> b on two workers: statically a must upload; the dynamic rule keeps it (b surely runs here)
    wf = Workflow.from_tasks([Task("a", "k"), Task("b", "k")], {"b": ["a"]}, {("a", "b"): 100})
    worker_of, profiles, exec_s = {"a": "w0", "b": "w0"}, {"w0": "small"}, {"a": 1.0, "b": 1.0}
    dynamic = WorkerProtocol(wf, worker_of, profiles, {"w0": ["a", "b"]}, dynamic=True)
    static = evaluate_schedule(wf, {"a": "w0", "b": "w1"}, {"w0": "small", "w1": "small"}, exec_s, CATALOG,
                               transfer_s=lambda b, d: b / 100)
    kept = evaluate_schedule(wf, worker_of, profiles, exec_s, CATALOG, transfer_s=lambda b, d: b / 100,
                             protocol=dynamic)
    assert bool(static.tasks.at["a", "stored"]) and not bool(kept.tasks.at["a", "stored"])
    # a fan-out under the dynamic rule stores even the child that stays on this worker
    fan = Workflow.from_tasks([Task(t, "k") for t in "rxy"], {"x": ["r"], "y": ["r"]}, {("r", "x"): 100, ("r", "y"): 50})
    local = {t: "w0" for t in "rxy"}
    proto = WorkerProtocol(fan, local, {"w0": "small"}, {"w0": ["r", "x", "y"]}, dynamic=True)
    res = evaluate_schedule(fan, local, {"w0": "small"}, {t: 1.0 for t in "rxy"}, CATALOG,
                            transfer_s=lambda b, d: b / 100, protocol=proto)
    assert bool(res.tasks.at["r", "stored"]) and res.tasks.at["r", "done_s"] == 2.0


@pytest.mark.parametrize("seed", range(6))
def test_retimer_equals_a_full_run_after_every_change(seed: int) -> None:
    from planning import CostModel, load_catalog as catalog_named
    from planning.schedule import Retimer

    rng = random.Random(seed)
    lam = catalog_named("lambda")
    wf = generate("random_layered", tasks=rng.randint(20, 120), seed=seed)
    model = CostModel(cold_start_s=rng.choice([0.0, 0.5]))
    est = model.estimate_workflow(wf, lam, "p95")
    evaluator = ScheduleEvaluator.for_cost_model(wf, lam, model, "p95")
    worker_of = {t: f"w{rng.randrange(9)}" for t in wf.task_ids}
    layout = evaluator.layout(worker_of)
    profile = {w: rng.choice(lam.names) for w in layout.workers}
    retimer = Retimer(evaluator, layout, est, profile)
    for step in range(25):
        moved = {w: rng.choice(lam.names) for w in rng.sample(layout.workers, rng.randint(1, 2))}
        makespan = retimer.change(moved)
        trial = {**profile, **moved}
        full = evaluator.run_estimates(layout, trial, est)
        got = retimer.times()
        assert makespan == full.makespan_s == got.makespan_s
        for field in ("exec_s", "startup", "ready", "worker_start", "begin", "download_end", "exec_end", "done",
                      "worker_start_s", "worker_stop_s", "busy_s"):
            assert getattr(got, field) == getattr(full, field), field
        assert retimer.cost(lam) == full.cost(lam)
        if rng.random() < 0.5:
            retimer.commit()
            profile = trial
        else:
            retimer.rollback()
            back = evaluator.run_estimates(layout, profile, est)
            assert retimer.times().done == back.done and retimer.makespan_s == back.makespan_s
            assert retimer.times().busy_s == back.busy_s and list(retimer.profiles) == list(back.profiles)


def test_fetch_download_s_is_the_longest_fetched_input_and_kept_per_layout() -> None:
    from planning.schedule.timing import fetch_download_s

    # task 0 a root; task 1 fetches both inputs (the longer counts: they download in parallel); task 2 fetches
    # only its second (its first is local, however long); task 3 fetches nothing
    remote = [(), (True, True), (False, True), (False,)]
    download_s = [[], [0.5, 2.0], [9.0, 1.5], [4.0]]
    assert fetch_download_s(remote, download_s) == [0.0, 2.0, 1.5, 0.0]
    ev = ScheduleEvaluator(diamond(), CATALOG)
    layout = ev.layout(WORKER_OF)
    first = ev.input_download_s(layout)
    assert ev.input_download_s(layout) is first                 # one computation per layout
    assert first == fetch_download_s(layout.remote, ev.download_s)
    assert ev.input_download_s(ev.layout({t: "w0" for t in "abcd"})) == [0.0] * 4   # one worker: nothing fetched
