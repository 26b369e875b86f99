"""Plan values and the uniform planner: locality, deadlines, validation, JSON, the registry."""

from __future__ import annotations

import pytest

from planning import SLA, CostModel, Task, Workflow, generate, load_catalog
from planning.errors import PlanError
from planning.plan import Plan
from planning.planners import PLANNERS, Planner, get_planner, register_planner
from planning.planners.uniform import locality_workers

CATALOG = load_catalog("local")
MEAN = SLA.parse("mean")


def fan_in_workflow() -> Workflow:
    tasks = [Task(t, "k", runtime_s=1.0) for t in ("a", "b", "c", "join")]
    sizes = {("a", "join"): 10, ("b", "join"): 500, ("c", "join"): 20}
    return Workflow.from_tasks(tasks, {"join": ["a", "b", "c"]}, sizes, name="fan-in")


def test_chain_stays_on_one_worker() -> None:
    assert set(locality_workers(generate("chain", length=5)).values()) == {"w0"}


def test_fan_out_is_split_and_continued_once() -> None:
    wf = generate("fork_join", width=4, depth=1)
    worker_of = locality_workers(wf)
    root = wf.roots()[0]
    children = wf.children(root)
    assert len({worker_of[c] for c in children}) == 4
    assert sum(worker_of[c] == worker_of[root] for c in children) == 1


def test_fan_in_continues_where_most_input_bytes_are() -> None:
    worker_of = locality_workers(fan_in_workflow())
    assert worker_of["join"] == worker_of["b"] != worker_of["a"]


def test_uniform_given_profile_and_plan_views() -> None:
    plan = get_planner("uniform", profile="small").plan(generate("five_branches"), CATALOG, CostModel(), MEAN)
    assert set(plan.tasks["profile"]) == {"small"} and len(plan.workers) == 5
    assert plan.makespan_s >= max(plan.lower_bounds.values()) and plan.slr >= 1
    assert plan.summary()["workers"] == 5 and len(plan.to_frame()) == 16
    assert plan.params == {"profile": "small", "deadline": None, "workers": "locality"}


def test_uniform_deadline_picks_cheapest_meeting_it() -> None:
    wf, model = generate("five_branches"), CostModel()
    by_profile = {p.name: get_planner("uniform", profile=p.name).plan(wf, CATALOG, model, MEAN).makespan_s
                  for p in CATALOG}
    deadline = by_profile["medium"] + 1e-9
    plan = get_planner("uniform", deadline=deadline).plan(wf, CATALOG, model, MEAN)
    assert set(plan.tasks["profile"]) == {"medium"} and plan.feasible
    impossible = get_planner("uniform", deadline=1e-6).plan(wf, CATALOG, model, MEAN)
    assert not impossible.feasible and "deadline" in impossible.notes[0]
    assert impossible.makespan_s == pytest.approx(min(by_profile.values()))


def test_plan_json_round_trip(tmp_path) -> None:
    plan = get_planner("uniform", profile="large").plan(generate("fork_join"), CATALOG, CostModel(), SLA.parse("p95"))
    back = Plan.from_json(plan.to_json(tmp_path / "plan.json") and tmp_path / "plan.json")
    assert back.summary() == plan.summary()
    assert back.worker_of == plan.worker_of and back.sequence() == plan.sequence()


def test_validation_catches_broken_invariants() -> None:
    wf = generate("chain", length=3)
    plan = get_planner("uniform", profile="small").plan(wf, CATALOG, CostModel(), MEAN)
    two_profiles = plan.tasks.copy()
    two_profiles.iloc[0, two_profiles.columns.get_loc("profile")] = "large"
    with pytest.raises(PlanError, match="more than one profile"):
        Plan(**{**plan.__dict__, "tasks": two_profiles}).validate()
    unknown = plan.tasks.assign(profile="huge")
    with pytest.raises(PlanError, match="not in catalog"):
        Plan(**{**plan.__dict__, "tasks": unknown}).validate()
    partial = plan.tasks.iloc[1:]
    with pytest.raises(PlanError, match="not assigned"):
        Plan(**{**plan.__dict__, "tasks": partial}).validate(wf)
    hungry = Workflow.from_tasks([Task(t.id, t.kind, memory_mb=1e9 if t.id == wf.task_ids[1] else None)
                                  for t in wf.tasks], {c: wf.parents(c) for c in wf.task_ids})
    with pytest.raises(PlanError, match=f"task '{wf.task_ids[1]}' needs 1e\\+09 MB but its profile 'small'"):
        plan.validate(hungry)


def test_memory_minimum_respected() -> None:
    wf = Workflow.from_tasks([Task("big", "k", runtime_s=1.0, memory_mb=1500)], {})
    with pytest.raises(PlanError, match="needs 1500 MB"):
        get_planner("uniform", profile="small").plan(wf, CATALOG, CostModel(), MEAN)
    plan = get_planner("uniform", deadline=100.0).plan(wf, CATALOG, CostModel(), MEAN)
    assert plan.tasks.at["big", "profile"] == "large"


def test_registry_errors_and_custom_planner() -> None:
    with pytest.raises(PlanError, match="unknown planner 'nope'"):
        get_planner("nope")
    with pytest.raises(PlanError, match="valid parameters"):
        get_planner("uniform", colour="red")

    @register_planner("test-one-worker")
    class OneWorker(Planner):
        def plan(self, workflow, catalog, cost_model, sla):
            est = cost_model.estimate_workflow(workflow, catalog, sla)
            return Plan.from_assignment(workflow, catalog, est, cost_model, sla, {t: "w0" for t in workflow.task_ids},
                                        {"w0": catalog.fastest().name}, planner=self.name)
    try:
        plan = get_planner("test-one-worker").plan(generate("fork_join"), CATALOG, CostModel(), MEAN)
        assert plan.planner == "test-one-worker" and len(plan.workers) == 1
    finally:
        PLANNERS.pop("test-one-worker")


@pytest.mark.parametrize("seed", range(4))
def test_lower_bounds_from_index_lists_equal_the_graph_walk(seed: int) -> None:
    from planning.plan import lower_bounds
    from planning.schedule import ScheduleEvaluator

    wf = generate("random_layered", tasks=50 + 20 * seed, seed=seed)
    lam = load_catalog("lambda")
    est = CostModel().estimate_workflow(wf, lam, "p95")
    fast = lower_bounds(wf, lam, est, 7, parents=ScheduleEvaluator(wf, lam).parents)
    assert fast == lower_bounds(wf, lam, est, 7) and fast["critical_path_s"] > 0


def test_a_plan_made_with_the_sla_as_text_holds_an_sla_and_saves(tmp_path):
    from planning import CostModel, SLA, generate, load_catalog
    from planning.plan import Plan
    from planning.planners import get_planner
    plan = get_planner("uniform", profile="small").plan(generate("chain", length=3), load_catalog("local"),
                                                        CostModel(), "p95")
    assert plan.sla == SLA.parse("p95")
    back = Plan.from_json(plan.to_json(tmp_path / "plan.json") and tmp_path / "plan.json")
    assert back.sla == plan.sla and back.makespan_s == plan.makespan_s


def test_a_single_worker_layout_runs_every_task_on_one_worker_in_turn():
    from planning import CostModel, generate, load_catalog
    from planning.planners import get_planner
    wf = generate("fork_join", width=4)
    plan = get_planner("uniform", profile="medium", workers="single").plan(wf, load_catalog("local"), CostModel(), "mean")
    assert set(plan.tasks["worker"]) == {"w0"}
    spans = plan.tasks.sort_values("exec_start_s")
    assert (spans["exec_start_s"].to_numpy()[1:] >= spans["exec_end_s"].to_numpy()[:-1] - 1e-12).all()


def test_an_unknown_worker_layout_is_refused():
    import pytest
    from planning.errors import PlanError
    from planning.planners import get_planner
    with pytest.raises(PlanError, match="workers"):
        get_planner("uniform", profile="small", workers="many")


def test_the_structure_hash_is_computed_when_first_read_and_travels_as_text() -> None:
    import copy
    import pickle

    wf = generate("fork_join", width=3, depth=2)
    plan = get_planner("uniform", profile="large").plan(wf, CATALOG, CostModel(), MEAN)
    assert "shash" not in wf._cache                   # planning alone does not hash the workflow
    sent = pickle.loads(pickle.dumps(plan))
    assert sent._structure_hash == wf.structure_hash()  # a pickle carries the text, not the workflow
    assert plan.structure_hash == wf.structure_hash() == copy.deepcopy(plan)._structure_hash
    assert Plan.from_dict(plan.to_dict()).structure_hash == wf.structure_hash()
    rebuilt = generate("fork_join", width=3, depth=2)       # another object of the same workflow
    assert get_planner("uniform", profile="large").plan(rebuilt, CATALOG, CostModel(), MEAN).structure_hash == plan.structure_hash
