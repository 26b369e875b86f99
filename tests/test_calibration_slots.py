"""Task slots per recorded core (the ``recorded`` planner's ``slots_per_core``) on a hand-computed replay,
and calibration choosing it from synthetic executions (experiments/calibration/slots.py)."""

from __future__ import annotations

import math

import pytest

from experiments.calibration import Observation, calibrate
from experiments.calibration.fit import fit_platform
from experiments.calibration.slots import can_matter, choose, fit_with_slots
from planning.costs.cost_model import CostModel
from planning.errors import PlanError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
ZERO = Platform.zero()


def fan(width: int, machines: int = 2, cores: int = 4, runtime: float = 100.0) -> Workflow:
    """A recorded fan-out of ``width`` tasks dealt over ``machines`` machines of ``cores`` cores, then a merge."""
    names = [f"t{i}" for i in range(width)]
    tasks = [Task(t, "work", runtime_s=runtime + i % 5, meta={"machines": [f"node-{i % machines}"]})
             for i, t in enumerate(names)]
    tasks.append(Task("merge", "merge", runtime_s=2.0, meta={"machines": ["node-0"]}))
    machine_table = {f"node-{m}": {"cores": cores} for m in range(machines)}
    return Workflow.from_tasks(tasks, {t: [] for t in names} | {"merge": names}, name=f"fan{width}",
                               metadata={"machines": machine_table, "workflow_system": "Makeflow"})


def test_two_slots_per_core_run_twice_the_tasks_at_once() -> None:
    # 4 tasks of 10 s on one machine of 1 core: 40 s one at a time, 20 s two at a time
    tasks = [Task(f"t{i}", "k", runtime_s=10.0, meta={"machines": ["m"]}) for i in range(4)]
    wf = Workflow.from_tasks(tasks, {f"t{i}": [] for i in range(4)}, name="four",
                             metadata={"machines": {"m": {"cores": 1}}})
    for per_core, makespan in ((1.0, 40.0), (2.0, 20.0), (4.0, 10.0)):
        plan = get_planner("recorded", slots_per_core=per_core).plan(wf, load_catalog("local"), FREE, "mean")
        assert plan.tasks["worker"].nunique() == int(per_core)
        assert plan.params == {"slots_per_core": per_core}
        assert simulate(wf, plan, FREE, platform=ZERO).makespan_s == makespan
    with pytest.raises(PlanError, match="slots_per_core must be a number > 0"):
        get_planner("recorded", slots_per_core=0)


def observations(truth: Platform, per_core: float) -> list[Observation]:
    """Synthetic executions whose real makespans are replays on ``per_core`` slots per core with ``truth``."""
    runs = []
    for width, machines in ((6, 1), (16, 2), (24, 2), (40, 4), (12, 3), (30, 3)):
        wf = fan(width, machines)
        plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
        o = Observation(f"fan-chameleon-w{width}m{machines}-001", wf, plan, 1.0, None, "fan", "Makeflow", FREE)
        o.real_makespan_s = o.with_slots_per_core(per_core).simulate(truth)
        runs.append(o)
    return runs


def test_calibration_replays_with_more_slots_only_when_the_runs_say_so() -> None:
    truth = ZERO.with_(dispatch_s=3.0, workflow_start_s=50.0)
    doubled = observations(truth, 2.0)
    result = calibrate(doubled, prior=None)
    assert result.slots_per_core == 2.0 and result.summary()["slots_per_core"] == 2.0
    assert result.platform.dispatch_s == pytest.approx(3.0, rel=0.05)
    assert result.held_out_error < 0.05
    assert result.predict(doubled[0]) == pytest.approx(doubled[0].real_makespan_s, rel=0.05)
    as_recorded = observations(truth, 1.0)
    result = calibrate(as_recorded, prior=None)
    assert result.slots_per_core == 1.0
    assert result.platform.dispatch_s == pytest.approx(3.0, rel=0.05)


def test_another_count_must_fit_clearly_better() -> None:
    assert choose({1.0: 0.20, 2.0: 0.10}) == 2.0
    assert choose({1.0: 0.20, 2.0: 0.17}) == 1.0        # 15 % lower: not clearly
    assert choose({1.0: 0.012, 2.0: 0.004}) == 1.0      # lower by less than a point: noise
    assert choose({1.0: 0.10, 2.0: 0.30}) == 1.0


def test_a_count_that_cannot_change_the_replay_is_not_fitted() -> None:
    # fans no wider than their cores never queue, so two slots per core replay them exactly as one: one fit only
    truth = ZERO.with_(dispatch_s=3.0, workflow_start_s=50.0)
    narrow = []
    for width, machines in ((4, 1), (6, 2), (8, 2)):
        wf = fan(width, machines, cores=8)
        plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
        o = Observation(f"fan-chameleon-w{width}m{machines}-001", wf, plan, 1.0, None, "fan", "Pegasus", FREE)
        o.real_makespan_s = o.simulate(truth)
        narrow.append(o)
    assert not can_matter(narrow, 2.0)
    fitted_at = []

    def fit(runs):
        fitted_at.append(runs[0].slots_per_core)
        return fit_platform(runs, ZERO, ("dispatch_s", "workflow_start_s"), select=False, families=False)

    assert fit_with_slots(narrow, fit).slots_per_core == 1.0 and fitted_at == [1.0]
    # Makeflow's runs that cannot tell the counts apart keep its default, one slot per hardware thread
    for o in narrow:
        o.system = "Makeflow"
    fitted_at.clear()
    assert fit_with_slots(narrow, fit).slots_per_core == 2.0 and fitted_at == [2.0]
    # the fans of the tests above queue on their 4 cores: the other count moves their replays, so it is fitted
    doubled = observations(truth, 2.0)
    assert can_matter(doubled, 1.0, default=2.0) and can_matter(doubled, 2.0)
    fitted_at.clear()
    assert fit_with_slots(doubled, fit).slots_per_core == 2.0 and fitted_at == [1.0, 2.0]


def test_each_workflow_system_has_its_default_count() -> None:
    from experiments.calibration.slots import default_slots

    def runs(*systems: str) -> list[Observation]:
        return [Observation("x-001", fan(2), None, 1.0, system=s) for s in systems]
    assert default_slots(runs("Makeflow", "Makeflow")) == 2.0       # Work Queue: a task per logical CPU
    assert default_slots(runs("Pegasus")) == 1.0 and default_slots(runs("")) == 1.0
    assert default_slots(runs("Makeflow", "Pegasus")) == 1.0         # mixed systems: the recorded count
    assert choose({1.0: 0.20, 2.0: 0.19}, default=2.0) == 2.0
    assert choose({1.0: 0.10, 2.0: 0.30}, default=2.0) == 1.0        # the data argue against the default


def test_the_screen_reads_the_replays_list_schedule_which_is_the_zero_platform_simulation() -> None:
    # can_matter reads replay_makespan instead of re-planning and simulating: the two agree exactly, on the hand
    # fans (40 s one at a time / 20 s two at a time above) and on real executions of both systems in the corpus
    from pathlib import Path

    from planning.planners.recorded import replay_makespan

    tasks = [Task(f"t{i}", "k", runtime_s=10.0, meta={"machines": ["m"]}) for i in range(4)]
    four = Workflow.from_tasks(tasks, {f"t{i}": [] for i in range(4)}, name="four",
                               metadata={"machines": {"m": {"cores": 1}}})
    assert replay_makespan(four, 1.0) == 40.0 and replay_makespan(four, 2.0) == 20.0
    corpus = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "wfinstances-corpus"
    files = [corpus / "blast-chameleon-small-003.json.gz", corpus / "seismology-chameleon-100p-001.json.gz",
             corpus / "epigenomics-chameleon-ilmn-1seq-50k-001.json.gz"]
    for wf in [fan(9), fan(6, 2, 8), *(Observation.from_execution(f).workflow for f in files)]:
        for k in (1.0, 2.0):
            plan = get_planner("recorded", slots_per_core=k).plan(wf, load_catalog("local"), FREE, "mean")
            assert replay_makespan(wf, k) == pytest.approx(simulate(wf, plan, FREE, platform=ZERO).makespan_s,
                                                           rel=1e-12)


def test_an_observation_remembers_its_list_schedule_per_count(monkeypatch) -> None:
    # the screen asks every fit's training executions again: an Observation schedules each count once
    from planning.planners import recorded

    wf = fan(9)   # 9 tasks of 100-104 s on 2 machines x 4 cores, then a 2 s merge
    plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
    o = Observation("fan-chameleon-w9-001", wf, plan, 500.0, None, "fan", "Makeflow", FREE)
    calls = []
    real = recorded.replay_makespan
    monkeypatch.setattr(recorded, "replay_makespan", lambda w, k=1.0: calls.append(k) or real(w, k))
    # node-0 runs t0 t2 t4 t6 t8 on 4 cores: two waves (t8, 103 s, after t0's 100 s), then the merge
    assert o.replay_makespan(1.0) == pytest.approx(100.0 + 103.0 + 2.0)
    assert o.replay_makespan(2.0) == pytest.approx(104.0 + 2.0)      # 8 slots: every task at once
    assert can_matter([o], 2.0) and can_matter([o], 2.0)    # a move of 99 s >= 10 % of 500 s
    assert calls == [1.0, 2.0]
