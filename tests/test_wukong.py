"""``wukong``: the predicted dynamic placement and times, hand-computed, and equal to stepping the protocol."""

from __future__ import annotations

import json

import pytest

from experiments.cli import main
from planning import SLA, CostModel, generate, load_catalog
from planning.plan import Plan
from planning.planners import get_planner
from planning.planners.wukong import predict_dynamic
from planning.protocol import WorkerProtocol
from planning.schedule import ScheduleEvaluator
from planning.tasks import Task
from planning.workflow import Workflow

LOCAL = load_catalog("local")
MEAN = SLA.parse("mean")


def workflow(parents: dict[str, list[str]], sizes: dict[tuple[str, str], int] | None = None) -> Workflow:
    return Workflow.from_tasks([Task(t, "k") for t in parents], parents, sizes or {})


def predict(wf: Workflow, exec_s: dict[str, float], **kw):
    kw.setdefault("startup_s", lambda p: 0.5)
    kw.setdefault("invoke_s", 0.1)
    evaluator = ScheduleEvaluator(wf, LOCAL, **kw)
    return predict_dynamic(evaluator, [exec_s[t] for t in evaluator.ids], "small")


def test_diamond_by_hand() -> None:
    wf = workflow({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]},
                  {("a", "b"): 100, ("a", "c"): 200, ("b", "d"): 50, ("c", "d"): 300})
    p = predict(wf, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 1.0}, transfer_s=lambda b, d: b / 100)
    # a: invoked (0.1) + cold start (0.5), runs 1 s, stores 200 B (2 s: it has two children)
    # b: continues on w:a at 3.6, its input is local; stores 50 B (0.5 s: d has another parent)
    # c: a new worker at 3.6 + 0.1 + 0.5, fetches 200 B (2 s), runs 3 s, stores 300 B (3 s)
    # d: c finishes last, so d continues on w:c at 12.2 and fetches b's 50 B (0.5 s)
    assert p.worker_of == {"a": "w:a", "b": "w:a", "c": "w:c", "d": "w:c"}
    assert p.done_s == pytest.approx({"a": 3.6, "b": 6.1, "c": 12.2, "d": 13.7})
    assert p.makespan_s == pytest.approx(13.7)


def test_fan_out_by_hand() -> None:
    wf = workflow({"r": [], "x": ["r"], "y": ["r"], "z": ["r"]})
    p = predict(wf, {"r": 1.0, "x": 1.0, "y": 2.0, "z": 3.0})
    assert p.worker_of == {"r": "w:r", "x": "w:r", "y": "w:y", "z": "w:z"}
    assert p.done_s == pytest.approx({"r": 1.6, "x": 2.6, "y": 4.2, "z": 5.2})


@pytest.mark.parametrize("durations, runner", [((3.0, 1.0, 2.0), "w:p1"), ((1.0, 3.0, 2.0), "w:p2"),
                                               ((2.0, 1.0, 2.0), "w:p3")])   # a tie goes to the later index
def test_fan_in_runs_on_the_last_finishing_parent(durations, runner) -> None:
    wf = workflow({"p1": [], "p2": [], "p3": [], "j": ["p1", "p2", "p3"]})
    exec_s = dict(zip(("p1", "p2", "p3"), durations), j=1.0)
    p = predict(wf, exec_s)
    assert p.worker_of["j"] == runner
    assert p.done_s["j"] == pytest.approx(0.6 + max(durations) + 1.0)


def test_a_new_worker_starts_warm_on_the_process_a_stopped_worker_freed() -> None:
    wf = workflow({"s": [], "x": ["s"], "y": ["s"], "u": ["x"], "z": ["x"]})
    exec_s = {"s": 1.0, "x": 3.0, "y": 0.5, "u": 1.0, "z": 1.0}
    evaluator = ScheduleEvaluator(wf, LOCAL, startup_s=lambda p: 0.5, warm_startup_s=lambda p: 0.05, invoke_s=0.1)
    pooled = predict_dynamic(evaluator, [exec_s[t] for t in evaluator.ids], "small")
    # s: 0.1 + 0.5 cold + 1 = 1.6; x continues on w:s (4.6); y: a new worker at 1.7, nothing idle: cold,
    # done 2.7, and w:y stops (y has no children).  u continues on w:s (5.6); z: a new worker at 4.7 takes
    # w:y's process, warm: 4.75 + 1 = 5.75 (a cold start would end at 6.2).
    assert pooled.worker_of == {"s": "w:s", "x": "w:s", "y": "w:y", "u": "w:s", "z": "w:z"}
    assert pooled.done_s == pytest.approx({"s": 1.6, "x": 4.6, "y": 2.7, "u": 5.6, "z": 5.75})
    assert pooled.makespan_s == pytest.approx(5.75)
    cold = predict_dynamic(evaluator, [exec_s[t] for t in evaluator.ids], "small", pooled=False)
    assert cold.done_s["z"] == pytest.approx(6.2) and cold.worker_of == pooled.worker_of


def test_the_plan_is_what_its_simulation_does() -> None:
    from simulator import Platform, simulate

    model = CostModel(latency_s=0.0, bandwidth_Bps=float("inf"), cold_start_s=0.25, warm_start_s=0.01)
    for name, kw in (("random_layered", {"tasks": 40, "seed": 3}), ("fork_join", {"width": 4, "depth": 2}),
                     ("gemm", {"blocks": 2})):
        wf = generate(name, **kw)
        plan = get_planner("wukong", profile="large").plan(wf, LOCAL, model, SLA.parse("p95"))
        platform = Platform.zero().with_(cold_start_s=model.startup_s("large", True, "p95"),
                                         warm_start_s=model.startup_s("large", False, "p95"), keep_alive_s=600.0)
        trace = simulate(wf, plan, model, platform=platform)
        assert trace.makespan_s == plan.makespan_s, name
        planned = plan.tasks.loc[trace.tasks["task_id"]]
        assert trace.tasks["done_s"].tolist() == planned["done_s"].tolist(), name
        assert trace.tasks["cold_start"].tolist() == planned["cold_start"].astype(bool).tolist(), name
        assert not planned["cold_start"].all(), name       # some new workers reuse freed processes


def test_a_parent_continues_only_children_it_made_ready() -> None:
    # u (first in order) waits for y, which finishes after x: u goes to y's worker, x continues v
    wf = workflow({"x": [], "y": [], "u": ["x", "y"], "v": ["x"]})
    p = predict(wf, {"x": 1.0, "y": 5.0, "u": 1.0, "v": 1.0})
    assert p.worker_of == {"x": "w:x", "y": "w:y", "u": "w:y", "v": "w:x"}


def step_protocol(wf: Workflow, plan: Plan) -> dict[str, str]:
    """Run the dynamic WorkerProtocol through the plan's finish times: who runs each task."""
    protocol = WorkerProtocol.for_plan(wf, plan)
    index = wf.index()
    placed = {inv.task: inv.worker for inv in protocol.initial_invocations()}
    waiting = {t: len(wf.parents(t)) for t in wf.task_ids}
    for t in sorted(wf.task_ids, key=lambda t: (plan.tasks.at[t, "done_s"], index[t])):
        made_ready = []
        for c in wf.children(t):
            waiting[c] -= 1
            if waiting[c] == 0:
                made_ready.append(c)
        decision = protocol.handle_downstream(t, placed[t], made_ready)
        for c in decision.run_here:
            placed[c] = placed[t]
        for invocation in decision.invocations:
            assert invocation.start
            placed[invocation.task] = invocation.worker
    return placed


@pytest.mark.parametrize("name, kw", [("random_layered", {"tasks": 80, "seed": 2}), ("gemm", {}),
                                      ("tree_reduction", {}), ("five_branches", {}), ("fork_join", {})])
def test_prediction_is_what_the_protocol_does(name: str, kw: dict) -> None:
    wf = generate(name, **kw)
    plan = get_planner("wukong", profile="medium").plan(wf, LOCAL, CostModel(), SLA.parse("p95"))
    assert plan.dynamic and plan.validate(wf) is plan
    assert step_protocol(wf, plan) == plan.worker_of
    # the analytical schedule (with the dynamic upload rule) reproduces the prediction's times
    evaluator = ScheduleEvaluator.for_cost_model(wf, LOCAL, CostModel(), SLA.parse("p95"))
    est = CostModel().estimate_workflow(wf, LOCAL, SLA.parse("p95"))
    prediction = predict_dynamic(evaluator, est.column("medium").tolist(), "medium")
    assert plan.tasks["done_s"].to_dict() == prediction.done_s and plan.makespan_s == prediction.makespan_s


def test_uploads_follow_the_dynamic_rule() -> None:
    wf = generate("chain", length=3)
    plan = get_planner("wukong", profile="small").plan(wf, LOCAL, CostModel(), MEAN)
    assert plan.tasks["stored"].tolist() == [False, False, True]        # only the sink's result is stored
    assert plan.workers["worker"].tolist() == [f"w:{wf.task_ids[0]}"]


def test_profile_choice() -> None:
    wf = generate("five_branches")
    model = CostModel()
    fastest = get_planner("wukong").plan(wf, LOCAL, model, MEAN)
    assert set(fastest.tasks["profile"]) == {"large"}
    slow = get_planner("wukong", profile="small").plan(wf, LOCAL, model, MEAN)
    assert slow.makespan_s > fastest.makespan_s
    medium = get_planner("wukong", profile="medium").plan(wf, LOCAL, model, MEAN)
    chosen = get_planner("wukong", deadline=medium.makespan_s).plan(wf, LOCAL, model, MEAN)
    assert chosen.feasible and set(chosen.tasks["profile"]) == {"medium"}
    assert set(get_planner("wukong", deadline=1e9).plan(wf, LOCAL, model, MEAN).tasks["profile"]) == {"small"}
    hopeless = get_planner("wukong", deadline=fastest.makespan_s / 10).plan(wf, LOCAL, model, MEAN)
    assert not hopeless.feasible and hopeless.makespan_s == fastest.makespan_s
    assert "no profile meets the deadline" in hopeless.notes[0]


def test_json_round_trip_keeps_dynamic(tmp_path) -> None:
    plan = get_planner("wukong").plan(generate("fork_join"), LOCAL, CostModel(), MEAN)
    plan.to_json(tmp_path / "p.json")
    again = Plan.from_json(tmp_path / "p.json")
    assert again.dynamic and again.worker_of == plan.worker_of


def test_cli(capsys) -> None:
    assert main(["plan", "gen:five_branches", "--planner", "wukong", "--catalog", "local", "--sla", "p95",
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["planner"] == "wukong" and info["dynamic"] is True and info["workers"] == 5
    assert info["makespan_s"] >= info["lower_bound_s"] > 0


@pytest.mark.parametrize("name, kw", [("random_layered", {"tasks": 80, "seed": 2}), ("gemm", {}), ("fork_join", {})])
def test_the_simulator_places_and_times_tasks_as_predicted(name: str, kw: dict) -> None:
    """The simulator interprets the same protocol: on a platform with the plan's overheads only, it agrees exactly."""
    import math

    from simulator.platform import Platform
    from simulator.simulate import simulate

    wf = generate(name, **kw)
    # a warm start of its own length: with 0, reused and finished workers tie to the float, and ties in time are
    # broken by task index where the simulator's event order may differ (planning.schedule.pooled)
    model = CostModel(latency_s=0.0, bandwidth_Bps=1e30, cold_start_s=0.3, warm_start_s=0.013)
    plan = get_planner("wukong", profile="medium").plan(wf, LOCAL, model, MEAN)
    # the planner's keep-alive (the default): the plan starts new workers warm on freed processes as the simulator does
    platform = Platform.from_cost_model(model, "mean", storage_bandwidth_Bps=math.inf, invoke_s=0.0,
                                        coordination_s=0.0)
    trace = simulate(wf, plan, model, platform=platform)
    simulated = trace.tasks.set_index("task_id")["worker"].to_dict()
    assert simulated == plan.worker_of
    assert trace.makespan_s == pytest.approx(plan.makespan_s, rel=1e-12)
